// netlab: a network lab in one binary. All the work is in cli::main and lib/.
#include "cli.hpp"

int main(int argc, char** argv) { return netlab::cli::main(argc, argv); }
