#include "netlab/tcp/limits.hpp"

#include <sys/resource.h>

#include "netlab/core/log.hpp"

namespace netlab::tcp {

std::uint64_t raise_open_files_limit() noexcept {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  if (rl.rlim_cur < rl.rlim_max) {
    const rlim_t before = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &rl) == 0) {
      core::log().debug("open files limit raised from {} to {}", static_cast<std::uint64_t>(before),
                        static_cast<std::uint64_t>(rl.rlim_cur));
    } else {
      rl.rlim_cur = before;
    }
  }
  return rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : static_cast<std::uint64_t>(rl.rlim_cur);
}

}  // namespace netlab::tcp
