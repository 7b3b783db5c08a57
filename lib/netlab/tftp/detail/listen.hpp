#pragma once
/// Shared start-up of both udp-file servers (TFTP and raw): the served root and the bound socket.
#include <filesystem>

#include <asio/ip/udp.hpp>

#include "netlab/core/error.hpp"
#include "netlab/tftp/server.hpp"

namespace netlab::tftp::detail {

/// Resolves opt.root (canonical, must be a directory: else a usage error) and binds `sock` on
/// opt.listen; fills `root` and `local` (the real address and port).
core::outcome open_server(const serve_options& opt, asio::ip::udp::socket& sock, std::filesystem::path& root,
                          asio::ip::udp::endpoint& local);

}  // namespace netlab::tftp::detail
