// recdistill/dist/comm.hpp: the collectives data-parallel training needs (docs/distributed.md).
//
// A small virtual interface, so the library and the plugins never link MPI: the app makes an
// MpiComm (apps/mpi_world.cpp, built when OpenMPI is found) when launched by mpirun and hands it
// to the trainer through plugin::RunOptions / FitOptions. Without mpirun there is no Comm and
// nothing changes.
//
// Every rank calls the same collectives in the same order. `what` names the collective in the
// message a timeout gives ("step 12's gradient all-reduce"): a rank that dies or hangs ends the
// job with the rank named, never a silent hang.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace recdistill::dist {

class Comm {
 public:
  virtual ~Comm() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // x (n) <- the sum of every rank's x (n); every rank receives the same bits.
  virtual void allreduce_sum(double* x, size_t n, const std::string& what) = 0;
  virtual void allreduce_sum(float* x, size_t n, const std::string& what) = 0;
  // Every rank's x, concatenated in rank order (the ranks' lengths may differ).
  virtual std::vector<int64_t> allgather(const std::vector<int64_t>& x, const std::string& what) = 0;
  // Rank 0's `text` on every rank (the others' argument is ignored).
  virtual std::string broadcast(const std::string& text, const std::string& what) = 0;
  // Ends every rank of the job at once, after printing `message` (prefixed with this rank).
  [[noreturn]] virtual void abort(const std::string& message) = 0;
};

// The contiguous slice [first, last) of n rows that rank r of N holds (the first n % N ranks hold
// one row more), so the ranks' slices, in rank order, are the rows 0..n-1.
struct Slice {
  size_t first = 0, last = 0;
};
inline Slice slice_of(size_t n, int r, int N) {
  const size_t q = n / size_t(N), extra = n % size_t(N), rr = size_t(r);
  const size_t first = rr * q + (rr < extra ? rr : extra);
  return {first, first + q + (rr < extra ? 1 : 0)};
}

inline bool parallel(const Comm* c) { return c != nullptr && c->size() > 1; }

}  // namespace recdistill::dist
