// recdistill: the reference command-line app. One binary, one subcommand per workflow step;
// each subcommand lives in its own cmd_*.cpp and is registered in kCommands below.
#include <signal.h>

#include <boost/program_options.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "mpi_world.hpp"
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

static int run(int argc, char** argv);

int main(int argc, char** argv) {
  recdistill::app::mpi_start(argc, argv);
  const int code = run(argc, argv);
  recdistill::app::mpi_finish();
  return code;
}

// Under mpirun with several ranks an error on one rank ends every rank (mpi_abort), naming it.
static int failed(const std::string& message, int code) {
  const auto* w = recdistill::app::mpi_world();
  if (w && w->size() > 1) recdistill::app::mpi_abort(message, code);
  std::cerr << message << "\n";
  return code;
}

static int run(int argc, char** argv) {
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
    if (const auto* w = recdistill::app::mpi_world(); w && w->size() > 1 && cmd != "train" && cmd != "experiment")
      return failed(recdistill::cat("error: recdistill ", cmd, " does not run under mpirun with several ranks (`train` "
                                    "and `experiment` do, docs/distributed.md): run it without mpirun"), 2);
    for (const Command& c : recdistill::app::commands())
      if (c.name == cmd) return c.run(args);
    std::cerr << "recdistill: unknown command '" << cmd << "'\n";
    usage(std::cerr);
    return 2;
  } catch (const recdistill::Interrupted& e) {
    // Data-parallel ranks agree on the epoch to stop after (train/trainer.hpp): rank 0 says how
    // to resume, and every rank leaves MPI in order.
    if (const auto* w = recdistill::app::mpi_world(); w && w->size() > 1) {
      if (w->rank() == 0) std::cerr << e.what() << "\n" << std::flush;
      recdistill::app::mpi_finish();
      return 128 + e.signal;
    }
    std::cerr << e.what() << "\n" << std::flush;
    // Die by the signal, so a calling shell loop stops too (it sees 128 + the signal).
    ::signal(e.signal, SIG_DFL);
    ::raise(e.signal);
    return 128 + e.signal;
  } catch (const recdistill::Error& e) {
    return failed(recdistill::cat("error: ", e.what()), 1);
  } catch (const po::error& e) {
    return failed(recdistill::cat("error: ", e.what(), " (see 'recdistill ", cmd, " --help')"), 2);
  } catch (const std::exception& e) {
    return failed(recdistill::cat("error: ", e.what()), 1);
  }
}
