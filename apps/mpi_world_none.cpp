// apps/mpi_world_none.cpp: the app built without MPI (apps/mpi_world.hpp). Launched by mpirun
// with more than one rank, it refuses rather than run N copies that overwrite each other.
#include <cstdlib>
#include <iostream>

#include "mpi_world.hpp"

namespace recdistill::app {

void mpi_start(int&, char**&) {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
    if (const char* n = std::getenv(v); n && std::atoi(n) > 1) {
      std::cerr << "error: launched by mpirun with " << n << " ranks, but this recdistill was built without MPI "
                << "(install libopenmpi-dev and configure again; docs/distributed.md)\n";
      std::exit(1);
    }
}
dist::Comm* mpi_world() { return nullptr; }
void mpi_set_timeout(double) {}
void mpi_abort(const std::string& message, int code) {
  std::cerr << message << "\n";
  std::exit(code);
}
void mpi_finish() {}

}  // namespace recdistill::app
