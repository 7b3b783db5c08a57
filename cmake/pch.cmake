# Precompiled third-party headers and unoptimised test code (issue 14 item 6: build time). Each
# target parses the header-only libraries it uses (Asio, spdlog/fmt, nlohmann/json, CLI11, Catch2)
# once into a precompiled header instead of once per translation unit. Measured, clean RelWithDebInfo
# build (-O2 -g1, g++ 12, no ccache), CPU seconds: library 343 -> 305, command line 97 -> 74, unit
# tests 218 -> 95 (with -O0 for the test code, tests/CMakeLists.txt); 721 -> ~474 in all.
# websocketpp stays out: in the library's header it slowed the other units as much as it sped up the
# four that use it. Only third-party and standard headers go in: netlab's own headers stay ordinary
# includes, so an edit to them rebuilds what includes them, not a PCH. -DNETLAB_PCH=OFF builds without.
option(NETLAB_PCH "Precompile the third-party headers each target includes" ON)

set(NETLAB_PCH_STD <algorithm> <atomic> <chrono> <cstdint> <cstring> <deque> <functional> <map> <memory>
    <mutex> <optional> <string> <string_view> <system_error> <thread> <unordered_map> <vector>)
set(NETLAB_PCH_LIB ${NETLAB_PCH_STD} <asio.hpp> <asio/ssl.hpp> <spdlog/spdlog.h> <nlohmann/json.hpp>)

function(netlab_pch target)
  if(NETLAB_PCH)
    target_precompile_headers(${target} PRIVATE ${ARGN})
  endif()
endfunction()
