// Placeholder until the udp_file group lands: registers nothing.
#include "cli.hpp"

namespace netlab::cli {
void register_udp_file(CLI::App&, action&) {}
}  // namespace netlab::cli
