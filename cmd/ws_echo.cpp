// Placeholder until the ws_echo group lands: registers nothing.
#include "cli.hpp"

namespace netlab::cli {
void register_ws_echo(CLI::App&, action&) {}
}  // namespace netlab::cli
