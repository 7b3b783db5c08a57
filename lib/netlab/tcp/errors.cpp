#include "netlab/tcp/errors.hpp"

#include <asio/error.hpp>

namespace netlab::tcp {

std::error_code portable(std::error_code ec) noexcept {
  if (ec && ec.category() == asio::error::get_system_category()) return {ec.value(), std::system_category()};
  return ec;
}

}  // namespace netlab::tcp
