#pragma once
/// Man pages and shell completions generated from the CLI definitions (make_app()), so the installed
/// documentation cannot drift from `--help`. The build runs the hidden flags below; they are not
/// part of the user interface (not in --help, not in the completions).
#include <optional>
#include <string>

namespace netlab::cli::docgen {

/// Writes one roff page per command group into `dir` (section 1): netlab.1, netlab-tcp.1, ...
/// Returns false (after a one-line message on stderr) when a file cannot be written.
bool write_man_pages(const std::string& dir);

/// The completion script for `shell` ("bash" or "zsh"), or nullopt for another shell.
std::optional<std::string> completion_script(const std::string& shell);

/// Handles `netlab --generate-man DIR` and `netlab --generate-completion bash|zsh FILE` (used by the
/// build) before normal parsing: returns the exit code when argv is one of them, else nullopt.
std::optional<int> handle(int argc, char** argv);

}  // namespace netlab::cli::docgen
