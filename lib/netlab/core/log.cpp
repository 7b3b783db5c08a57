#include "netlab/core/log.hpp"

#include <cstdio>
#include <mutex>

#include <spdlog/sinks/stdout_sinks.h>

namespace netlab::core {
namespace {

std::shared_ptr<spdlog::logger> make_logger() {
  auto existing = spdlog::get("netlab");
  if (existing) return existing;
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("netlab", sink);
  logger->set_pattern("%H:%M:%S.%e %^%l%$ %v");
  logger->set_level(spdlog::level::info);
  logger->flush_on(spdlog::level::trace);
  spdlog::register_logger(logger);
  return logger;
}

std::shared_ptr<spdlog::logger>& instance() {
  static std::shared_ptr<spdlog::logger> l = make_logger();
  return l;
}

}  // namespace

void init_logging(verbosity v) {
  auto& l = instance();
  switch (v) {
    case verbosity::quiet: l->set_level(spdlog::level::err); break;
    case verbosity::info: l->set_level(spdlog::level::info); break;
    case verbosity::debug: l->set_level(spdlog::level::debug); break;
    case verbosity::trace: l->set_level(spdlog::level::trace); break;
  }
}

spdlog::logger& log() { return *instance(); }

std::string hexdump(const void* data, std::size_t n, std::size_t limit) {
  const auto* p = static_cast<const unsigned char*>(data);
  const std::size_t shown = n < limit ? n : limit;
  std::string out;
  out.reserve((shown / 16 + 1) * 78);
  char line[96];
  for (std::size_t off = 0; off < shown; off += 16) {
    int len = std::snprintf(line, sizeof line, "\n  %08zx  ", off);
    out.append(line, static_cast<std::size_t>(len));
    for (std::size_t i = 0; i < 16; ++i) {
      if (off + i < shown) {
        std::snprintf(line, sizeof line, "%02x ", p[off + i]);
        out.append(line, 3);
      } else {
        out.append("   ");
      }
      if (i == 7) out.push_back(' ');
    }
    out.append(" |");
    for (std::size_t i = 0; i < 16 && off + i < shown; ++i) {
      unsigned char c = p[off + i];
      out.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '.');
    }
    out.push_back('|');
  }
  if (shown < n) out += "\n  ... " + std::to_string(n - shown) + " more bytes";
  return out;
}

std::string human_bytes(double bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 4) {
    bytes /= 1024.0;
    ++u;
  }
  char buf[32];
  if (u == 0) std::snprintf(buf, sizeof buf, "%.0f B", bytes);
  else std::snprintf(buf, sizeof buf, "%.1f %s", bytes, units[u]);
  return buf;
}

}  // namespace netlab::core
