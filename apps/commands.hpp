// apps/commands.hpp: the recdistill subcommands. Each is `int run(args)` returning the exit
// status; errors are thrown as recdistill::Error (exit 1) or boost::program_options errors
// (exit 2) and reported by main().
#pragma once
#include <string>
#include <vector>

namespace recdistill::app {

using Args = std::vector<std::string>;

int cmd_train(const Args& args);

struct Command {
  std::string name, summary;
  int (*run)(const Args&);
};

// In the order `recdistill --help` lists them.
inline const std::vector<Command>& commands() {
  static const std::vector<Command> list = {
      {"train", "train, validate and test a model (--config FILE.yaml [--set key=value ...])", cmd_train},
  };
  return list;
}

}  // namespace recdistill::app
