// recdistill: the reference command-line app. One binary, one subcommand per workflow step;
// each subcommand lives in its own cmd_*.cpp and is registered in kCommands below.
#include <signal.h>

#include <boost/program_options.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "recdistill/core/error.hpp"
#include "recdistill/core/interrupt.hpp"

namespace {

using recdistill::app::Command;

void usage(std::ostream& os) {
  os << "usage: recdistill <command> [options]\n\ncommands:\n";
  for (const Command& c : recdistill::app::commands())
    os << "  " << c.name << std::string(c.name.size() < 12 ? 12 - c.name.size() : 1, ' ') << c.summary << "\n";
  os << "\n'recdistill <command> --help' shows a command's options.\n";
}

}  // namespace

int main(int argc, char** argv) {
  namespace po = boost::program_options;
  if (argc < 2) {
    usage(std::cerr);
    return 2;
  }
  const std::string cmd = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    usage(std::cout);
    return 0;
  }
  try {
    for (const Command& c : recdistill::app::commands())
      if (c.name == cmd) return c.run(args);
    std::cerr << "recdistill: unknown command '" << cmd << "'\n";
    usage(std::cerr);
    return 2;
  } catch (const recdistill::Interrupted& e) {
    std::cerr << e.what() << "\n" << std::flush;
    // Die by the signal, so a calling shell loop stops too (it sees 128 + the signal).
    ::signal(e.signal, SIG_DFL);
    ::raise(e.signal);
    return 128 + e.signal;
  } catch (const recdistill::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  } catch (const po::error& e) {
    std::cerr << "error: " << e.what() << " (see 'recdistill " << cmd << " --help')\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
