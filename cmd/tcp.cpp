// Placeholder until the tcp group lands: registers nothing.
#include "cli.hpp"

namespace netlab::cli {
void register_tcp(CLI::App&, action&) {}
}  // namespace netlab::cli
