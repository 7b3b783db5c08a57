#include "netlab/core/report.hpp"

namespace netlab::core {

std::string reporter::dump(const nlohmann::json& obj) {
  return obj.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void reporter::result(const nlohmann::json& obj, std::string_view text) {
  std::string line = json_ ? dump(obj) : std::string(text);
  line.push_back('\n');
  std::lock_guard<std::mutex> lock(mu_);
  std::fwrite(line.data(), 1, line.size(), out_);
  std::fflush(out_);
}

void reporter::listening(std::string_view proto, const std::string& address, std::uint16_t port) {
  const bool v6 = address.find(':') != std::string::npos;
  std::string text = "listening " + std::string(proto) + " " + (v6 ? "[" + address + "]" : address) + ":" +
                     std::to_string(port);
  result({{"event", "listening"}, {"proto", proto}, {"address", address}, {"port", port}}, text);
}

void reporter::data(const void* p, std::size_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  std::fwrite(p, 1, n, out_);
  std::fflush(out_);
}

}  // namespace netlab::core
