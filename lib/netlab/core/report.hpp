#pragma once
/// Results on stdout: text lines, or NDJSON objects with --json. Logs never go here.
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace netlab::core {

/// Writes results to stdout (or another FILE*), one flushed line at a time, thread-safe.
class reporter {
 public:
  explicit reporter(std::FILE* out = stdout, bool json = false) : out_(out), json_(json) {}

  bool json() const noexcept { return json_; }

  /// A result: in JSON mode `obj` as one NDJSON line, otherwise `text` as one line.
  void result(const nlohmann::json& obj, std::string_view text);
  /// The server readiness line: "listening tcp 127.0.0.1:40213" or
  /// {"event":"listening","proto":"tcp","address":"127.0.0.1","port":40213}.
  void listening(std::string_view proto, const std::string& address, std::uint16_t port);
  /// Raw bytes, byte-exact, for text-mode data output (what a peer sent); flushed.
  void data(const void* p, std::size_t n);

  /// Serialises JSON without throwing on invalid UTF-8 (replaced with U+FFFD).
  static std::string dump(const nlohmann::json& obj);

 private:
  std::FILE* out_;
  bool json_;
  std::mutex mu_;
};

}  // namespace netlab::core
