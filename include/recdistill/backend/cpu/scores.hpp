// recdistill/backend/cpu/scores.hpp: evaluation scores, scores (n, w) = queries (n, dim) x
// items (w, dim)^T, where every entry is computed by the same instructions: a multiply-add per k
// = 0 .. dim-1, in order, in one vector lane (Eigen's pmadd, one FMA where the build has FMA).
// An entry's bits then depend only on its query row and item row: not on where it sits in the
// output, on n, w or ld, or on the thread count.
//
// Why not Eigen's GEMM: it does not promise that. Its AVX2 kernels (Eigen 3.4) sum the entries
// at the edges of their register blocks in another order than those inside, so two items with
// equal rows did not tie, and a target's score from the targets-only product differed from its
// score in its chunk (ranking needs both equal; docs/metrics.md). Its AVX-512 kernels happened
// to agree, which is why this showed first on an AVX2 machine.
//
// Layout: items are packed a panel of kCols at a time into (dim, kCols), the panel's missing
// items as zero rows, and the queries go kRows at a time (a short last group padded with zero
// rows), so no entry is ever computed by a different tail path. The panel stays in L1 while
// every query group passes over it.
#pragma once
#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <vector>

namespace recdistill::cpu {

namespace score_detail {

template <class T>
using Packet = typename Eigen::internal::packet_traits<T>::type;
template <class T>
constexpr int kLanes = Eigen::internal::unpacket_traits<Packet<T>>::size;
constexpr int kRows = 4;     // queries per tile
constexpr int kPackets = 3;  // packets of items per tile: 12 accumulators fit 16 vector registers
template <class T>
constexpr int kCols = kPackets * kLanes<T>;

// out (kRows, kCols; row stride ldo) = q (kRows rows of stride dim) x panel (dim, kCols). One instance per T,
// never inlined or cloned (GCC's noipa), so that every entry of every call runs this one
// machine code. (A binary must not mix translation units built with different -m flags: the
// panel width follows the packet size.)
#if defined(__clang__)
#define RD_SCORES_ONE_COPY [[gnu::noinline]]
#else
#define RD_SCORES_ONE_COPY [[gnu::noipa]]
#endif
template <class T>
RD_SCORES_ONE_COPY void tile(T* out, int ldo, const T* q, const T* panel, int dim) {
  using namespace Eigen::internal;
  using P = Packet<T>;
  constexpr int W = kLanes<T>, C = kCols<T>;
  P acc[kRows][kPackets];
  for (auto& row : acc)
    for (auto& a : row) a = pset1<P>(T(0));
  for (int k = 0; k < dim; ++k) {
    const T* e = panel + size_t(k) * C;
    P ek[kPackets];
    for (int j = 0; j < kPackets; ++j) ek[j] = ploadu<P>(e + j * W);
    for (int r = 0; r < kRows; ++r) {
      const P b = pset1<P>(q[size_t(r) * dim + k]);
      for (int j = 0; j < kPackets; ++j) acc[r][j] = pmadd(b, ek[j], acc[r][j]);
    }
  }
  for (int r = 0; r < kRows; ++r)
    for (int j = 0; j < kPackets; ++j) pstoreu(out + size_t(r) * ldo + j * W, acc[r][j]);
}

#undef RD_SCORES_ONE_COPY

}  // namespace score_detail

// scores (n, w; row stride ld) = queries (n, dim) x items (w, dim)^T.
template <class T>
void score_rows(T* scores, int ld, const T* queries, int n, const T* items, int w, int dim) {
  using namespace score_detail;
  constexpr int C = kCols<T>;
  const int panels = (w + C - 1) / C;
  const bool parallel = int64_t(n) * w * dim >= (int64_t(1) << 20);
#pragma omp parallel if (parallel)
  {
    std::vector<T> panel(size_t(dim) * C), tail(size_t(kRows) * dim, T(0)), out(size_t(kRows) * C);
    const int full = n - n % kRows;  // queries in whole groups; the rest, zero-padded, in tail
    std::copy(queries + size_t(full) * dim, queries + size_t(n) * dim, tail.begin());
#pragma omp for schedule(static)
    for (int p = 0; p < panels; ++p) {
      const int j0 = p * C, cw = std::min(C, w - j0);
      if (cw < C) std::fill(panel.begin(), panel.end(), T(0));
      for (int j = 0; j < cw; ++j) {  // item rows are read in order, the panel is in L1
        const T* src = items + size_t(j0 + j) * dim;
        for (int k = 0; k < dim; ++k) panel[size_t(k) * C + j] = src[k];
      }
      for (int i0 = 0; i0 < n; i0 += kRows) {
        const int rn = std::min(kRows, n - i0);
        const T* q = i0 < full ? queries + size_t(i0) * dim : tail.data();
        if (rn == kRows && cw == C) {  // a whole tile: stored in place
          tile(scores + size_t(i0) * ld + j0, ld, q, panel.data(), dim);
          continue;
        }
        tile(out.data(), C, q, panel.data(), dim);
        for (int r = 0; r < rn; ++r)
          std::copy(out.begin() + r * C, out.begin() + r * C + cw, scores + size_t(i0 + r) * ld + j0);
      }
    }
  }
}

}  // namespace recdistill::cpu
