// Placeholder until the udp group lands: registers nothing.
#include "cli.hpp"

namespace netlab::cli {
void register_udp(CLI::App&, action&) {}
}  // namespace netlab::cli
