#pragma once
// The real command line, parsed in-process, for CLI tests (CLI11's TApp fixture in miniature).
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "cli.hpp"

namespace netlab::test {

/// Builds netlab's whole CLI; parse() records the chosen action, options() reads its lib options.
struct parsed_cli {
  cli::globals g;
  cli::action chosen;
  std::unique_ptr<CLI::App> app = cli::make_app(g, chosen);

  void parse(std::vector<std::string> args) {
    std::reverse(args.begin(), args.end());  // CLI11 takes the arguments reversed
    app->parse(args);
  }
  /// The lib options struct the chosen subcommand recorded.
  template <class Options>
  Options options() const {
    return std::any_cast<Options>(chosen.options);
  }
};

}  // namespace netlab::test
