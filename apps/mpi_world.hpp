// apps/mpi_world.hpp: the app's MPI ranks (dist/comm.hpp) when launched by mpirun.
//
// MPI is initialised only when mpirun's environment is present (OMPI_COMM_WORLD_SIZE, PMIX_RANK
// or PMI_RANK), so a plain `recdistill ...` never touches it. Built without MPI (no
// libopenmpi-dev at configure time), a launch by mpirun with more than one rank is refused.
#pragma once
#include <string>

#include "recdistill/dist/comm.hpp"

namespace recdistill::app {

// Called first in main: initialises MPI when launched by mpirun.
void mpi_start(int& argc, char**& argv);
// The world communicator (null when not launched by mpirun).
dist::Comm* mpi_world();
// Seconds a collective waits before the job ends naming the missing rank (runtime.dist_timeout_s).
void mpi_set_timeout(double seconds);
// Ends the job on every rank after `message` (an error on one rank must not leave the others waiting).
[[noreturn]] void mpi_abort(const std::string& message, int code);
// Called last in main on a normal exit.
void mpi_finish();

}  // namespace recdistill::app
