// recdistill/backend/cuda/kernels.hpp: the CUDA backend's ops as algorithms over an executor.
//
// Every op is written once, as per-thread functors (`operator()(i)` with i in [0, n)) and the
// GEMMs between them, in `kern::Ops<X>`. The executor X decides where it runs:
//   - cuda::DeviceExec (backend.cuh): each for_each is a grid-stride kernel launch, GEMMs go to
//     cuBLAS, scratch is device memory. This is what cuda::Backend's ops call.
//   - a host executor (tests/cuda_host/): for_each is a plain loop over i on the CPU.
// So the exact code a kernel runs (index arithmetic, masks, Philox draws, reduction order) is
// also compiled by the host compiler and tested against cpu::Backend on machines with no GPU
// (tests/cuda_host/); only the launch and cuBLAS need a device (tests/parity/).
//
// The executor provides:
//   for_each(n, f)                       f(i) for every i in [0, n), in any order or at once
//   gemm<T>(...), gemm_strided_batched<T>(...)   the backend contract's GEMMs (backend.hpp)
//   scratch(slot, bytes) -> void*        the executor's memory, kept between calls; slots 0..3
//                                        are independent (an op uses distinct slots at once)
//   to_host<T>(host, src, n) / to_device<T>(dst, host, n)   copies between the host and the
//                                        executor's memory
//   Vec<T>                               an owning array of n elements in executor memory
//                                        (Vec<T>(n), data(), size()): the ranking state
//
// Determinism: no atomics. Every sum runs in a fixed order: reductions over rows that write one
// parameter gradient (bias, layer norm's gamma/beta, positions, embedding rows) give one thread
// per output element, which adds the rows in row order, as the CPU loops do; those are then
// bit-identical to the CPU. Sums inside a row are sequential per thread. Whole-tensor reductions
// (dot, sum, sum_squares) add kPartials strided partial sums, then the partials in order.
// Correctness first: one thread per row for the row-wise ops (layer norm, softmax, the CE rows)
// is simple and exact; warp-level versions are a later optimisation, to be measured on a GPU.
#pragma once
#include <math.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <vector>

#include "recdistill/backend/ops.hpp"
#include "recdistill/core/error.hpp"
#include "recdistill/core/random.hpp"
#include "recdistill/eval/case.hpp"

#if defined(__CUDACC__)
#if !defined(__CUDACC_RELAXED_CONSTEXPR__)
#error "recdistill's CUDA kernels call constexpr host functions (core/random.hpp's Philox): compile with nvcc --expt-relaxed-constexpr"
#endif
#define RD_HD __host__ __device__
#else
#define RD_HD
#endif

namespace recdistill::cuda::kern {

// ---- math that compiles for both sides (CUDA's math API on the device, libm on the host) --
RD_HD inline float k_exp(float x) { return expf(x); }
RD_HD inline double k_exp(double x) { return exp(x); }
RD_HD inline float k_log(float x) { return logf(x); }
RD_HD inline double k_log(double x) { return log(x); }
RD_HD inline float k_sqrt(float x) { return sqrtf(x); }
RD_HD inline double k_sqrt(double x) { return sqrt(x); }
RD_HD inline float k_erf(float x) { return erff(x); }
RD_HD inline double k_erf(double x) { return erf(x); }
RD_HD inline float k_tanh(float x) { return tanhf(x); }
RD_HD inline double k_tanh(double x) { return tanh(x); }
RD_HD inline double k_pow(double x, double y) { return pow(x, y); }
RD_HD inline float k_fma(float a, float b, float c) { return fmaf(a, b, c); }
RD_HD inline double k_fma(double a, double b, double c) { return fma(a, b, c); }
template <class T>
RD_HD inline T k_inf() {
  return T(INFINITY);
}

// Whole-tensor reductions add this many strided partial sums, then the partials in order.
inline constexpr int kPartials = 4096;

// ---- functors ---------------------------------------------------------------------------
// One struct per kernel body; members are the kernel's arguments (device pointers and sizes).

template <class T>
struct Fill {
  T* x; T v;
  RD_HD void operator()(int64_t i) const { x[i] = v; }
};
template <class T>
struct Add {
  T* y; const T* a; const T* b;
  RD_HD void operator()(int64_t i) const { y[i] = a[i] + b[i]; }
};
struct NonzeroMask {
  uint8_t* valid; const int32_t* ids;
  RD_HD void operator()(int64_t i) const { valid[i] = ids[i] != 0; }
};
template <class T>
struct MaskRows {  // i over R * d
  T* x; const uint8_t* valid; int d;
  RD_HD void operator()(int64_t i) const {
    if (!valid[i / d]) x[i] = T(0);
  }
};
template <class T>
struct GatherRows {  // i over R * d
  T* out; const T* table; const int32_t* ids; int d; T s; bool unscaled;
  RD_HD void operator()(int64_t i) const {
    const T v = table[int64_t(ids[i / d]) * d + i % d];
    out[i] = unscaled ? v : s * v;
  }
};
template <class T>
struct ScatterAddRows {  // c over d: one thread per column adds the rows in order
  T* dtable; const T* g; const int32_t* ids; int R, d; bool skip_pad; T s;
  RD_HD void operator()(int64_t c) const {
    for (int r = 0; r < R; ++r) {
      if (skip_pad && ids[r] == 0) continue;
      dtable[int64_t(ids[r]) * d + c] += s * g[int64_t(r) * d + c];
    }
  }
};
template <class T>
struct AddPosition {  // i over Bn * L * d
  T* x; const T* pos; int L, d;
  RD_HD void operator()(int64_t i) const { x[i] += pos[((i / d) % L) * d + i % d]; }
};
template <class T>
struct PositionGrad {  // j over L * d: sequences added in order
  T* dpos; const T* g; int Bn; int64_t Ld;
  RD_HD void operator()(int64_t j) const {
    for (int b = 0; b < Bn; ++b) dpos[j] += g[int64_t(b) * Ld + j];
  }
};

// Evaluation scores (ops::score_rows): entry (r, j) = q_r . e_j as one thread's fused
// multiply-adds over k in order, so its bits depend only on the two rows (equal item rows tie;
// a target scored alone equals its score in a chunk). cuBLAS promises neither.
template <class T>
struct ScoreRows {  // i over n * w
  T* s; int ld; const T* q; const T* e; int w, dim;
  RD_HD void operator()(int64_t i) const {
    const int64_t r = i / w, j = i % w;
    const T* qr = q + r * dim;
    const T* ej = e + j * dim;
    T acc = T(0);
    for (int k = 0; k < dim; ++k) acc = k_fma(qr[k], ej[k], acc);
    s[r * ld + j] = acc;
  }
};

template <class T>
struct AddBias {  // i over R * n
  T* y; int ldy; const T* b; int n;
  RD_HD void operator()(int64_t i) const { y[(i / n) * ldy + i % n] += b[i % n]; }
};
template <class T>
struct BiasGrad {  // o over n: rows added in order
  T* db; const T* g; int ldg, R;
  RD_HD void operator()(int64_t o) const {
    for (int r = 0; r < R; ++r) db[o] += g[int64_t(r) * ldg + o];
  }
};

// Layer norm, one thread per row (the CPU's row loop; double mean and variance).
template <class T>
struct LayerNormRow {
  T* y; T* xhat; T* rstd; const T* x; const T* gamma; const T* beta; int d; double eps;
  RD_HD void operator()(int64_t r) const {
    const T* xr = x + r * d;
    double mean = 0;
    for (int c = 0; c < d; ++c) mean += xr[c];
    mean /= d;
    double var = 0;
    for (int c = 0; c < d; ++c) var += (xr[c] - mean) * (xr[c] - mean);
    var /= d;
    const T rs = T(1.0 / k_sqrt(var + eps));
    rstd[r] = rs;
    T* hr = xhat + r * d;
    T* yr = y + r * d;
    for (int c = 0; c < d; ++c) {
      hr[c] = (xr[c] - T(mean)) * rs;
      yr[c] = gamma[c] * hr[c] + beta[c];
    }
  }
};
template <class T>
struct LayerNormBackwardRow {  // dx of row r
  T* dx; const T* g; const T* xhat; const T* rstd; const T* gamma; int d; bool accumulate;
  RD_HD void operator()(int64_t r) const {
    const T* gr = g + r * d;
    const T* hr = xhat + r * d;
    double mean_gh = 0, mean_ghx = 0;
    for (int c = 0; c < d; ++c) {
      const double gh = double(gr[c]) * gamma[c];
      mean_gh += gh;
      mean_ghx += gh * hr[c];
    }
    mean_gh /= d;
    mean_ghx /= d;
    T* dr = dx + r * d;
    for (int c = 0; c < d; ++c) {
      const T v = rstd[r] * (gr[c] * gamma[c] - T(mean_gh) - hr[c] * T(mean_ghx));
      dr[c] = accumulate ? dr[c] + v : v;
    }
  }
};
template <class T>
struct LayerNormParamGrad {  // c over d: rows added in order
  T* dgamma; T* dbeta; const T* g; const T* xhat; int R, d;
  RD_HD void operator()(int64_t c) const {
    for (int r = 0; r < R; ++r) {
      const T gv = g[int64_t(r) * d + c];
      dgamma[c] += gv * xhat[int64_t(r) * d + c];
      dbeta[c] += gv;
    }
  }
};

// Up to 4 mask values (count <= 4) of inverted dropout from one Philox draw at (row, slot) of
// the dropout stream: 0 with probability p, else keep_scale. Every dropout kernel draws here.
template <class T>
RD_HD inline void dropout_mask4(T* mask, int count, const DropoutKey& key, uint32_t row, uint32_t slot, float p,
                                T keep_scale) {
  const auto u = uniform4(key.seed, Stream::dropout, key.epoch, key.step, row, slot);
  for (int k = 0; k < count; ++k) mask[k] = u[k] < p ? T(0) : keep_scale;
}

// Inverted dropout, one thread per (row, block of 4 columns): the CPU's Philox counter
// (seed, dropout; epoch, step, row0 + r, site << 20 | block).
template <class T>
struct DropoutBlock {
  T* y; T* mask; const T* x; int n, blocks; float p; T keep_scale; DropoutKey key; uint32_t site, row0;
  RD_HD void operator()(int64_t i) const {
    const int64_t r = i / blocks;
    const int c = int(i % blocks) * 4, count = n - c < 4 ? n - c : 4;
    const int64_t e = r * n + c;
    dropout_mask4(mask + e, count, key, row0 + uint32_t(r), (site << 20) | uint32_t(c / 4), p, keep_scale);
    for (int k = 0; k < count; ++k) y[e + k] = x[e + k] * mask[e + k];
  }
};
template <class T>
struct DropoutOff {
  T* y; T* mask; const T* x;
  RD_HD void operator()(int64_t i) const {
    mask[i] = T(1);
    y[i] = x[i];
  }
};
template <class T>
struct Mul {
  T* y; const T* a; const T* b; bool accumulate;
  RD_HD void operator()(int64_t i) const { y[i] = accumulate ? y[i] + a[i] * b[i] : a[i] * b[i]; }
};

template <class T>
struct Gelu {
  T* y; const T* x;
  RD_HD void operator()(int64_t i) const {
    const T v = x[i];
    y[i] = v * T(0.5) * (T(1) + k_erf(v * T(0.70710678118654752440)));
  }
};
template <class T>
struct GeluGrad {
  T* dx; const T* g; const T* x;
  RD_HD void operator()(int64_t i) const {
    const T v = x[i];
    const T cdf = T(0.5) * (T(1) + k_erf(v * T(0.70710678118654752440)));
    const T pdf = T(0.3989422804014327) * k_exp(T(-0.5) * v * v);
    dx[i] = g[i] * (cdf + v * pdf);
  }
};
template <class T>
struct Relu {
  T* y; const T* x;
  RD_HD void operator()(int64_t i) const { y[i] = x[i] > T(0) ? x[i] : T(0); }
};
template <class T>
struct ReluGrad {
  T* dx; const T* g; const T* y;
  RD_HD void operator()(int64_t i) const { dx[i] = y[i] > T(0) ? g[i] : T(0); }
};

// Attention: the masked softmax of one score row (b, h, i) of P (B, H, L, L), in place.
template <class T>
struct AttentionSoftmaxRow {
  T* P; const uint8_t* key_valid; int H, L; AttentionMask mask;
  RD_HD void operator()(int64_t row) const {
    const int64_t b = row / (int64_t(H) * L);
    const int i = int(row % L);
    const uint8_t* valid = key_valid + b * L;
    T* x = P + row * L;
    T mx = -k_inf<T>();
    for (int j = 0; j < L; ++j) {
      if (mask == AttentionMask::additive_key_padding) {
        if (!(j <= i && valid[j])) x[j] += T(-10000);
      } else if (mask == AttentionMask::bidirectional) {
        if (!valid[j]) x[j] += T(-10000);
      } else if (j > i) {
        x[j] = -k_inf<T>();
      }
      mx = x[j] > mx ? x[j] : mx;
    }
    T total = 0;
    for (int j = 0; j < L; ++j) {
      x[j] = k_exp(x[j] - mx);
      total += x[j];
    }
    const T inv = T(1) / total;
    for (int j = 0; j < L; ++j) x[j] *= inv;
  }
};
// dS of one row from dPd (in place in G): dP = dPd * D; dS = scale P (dP - <dP, P>).
template <class T>
struct AttentionSoftmaxGradRow {
  T* G; const T* P; const T* drop_mask; int L; T scale;
  RD_HD void operator()(int64_t row) const {
    T* g = G + row * L;
    const T* p = P + row * L;
    if (drop_mask)
      for (int j = 0; j < L; ++j) g[j] *= drop_mask[row * L + j];
    T dot = 0;
    for (int j = 0; j < L; ++j) dot += g[j] * p[j];
    for (int j = 0; j < L; ++j) g[j] = scale * p[j] * (g[j] - dot);
  }
};

template <class T>
struct MaskedSoftmaxRow {
  T* p; const T* s; const uint8_t* mask; int n;
  RD_HD void operator()(int64_t r) const {
    const T* sr = s + r * n;
    const uint8_t* mr = mask + r * n;
    T* pr = p + r * n;
    T mx = -k_inf<T>();
    for (int j = 0; j < n; ++j)
      if (mr[j] && sr[j] > mx) mx = sr[j];
    double total = 0;
    for (int j = 0; j < n; ++j) {
      pr[j] = mr[j] ? T(k_exp(double(sr[j] - mx))) : T(0);
      total += pr[j];
    }
    const T inv = total > 0 ? T(1.0 / total) : T(0);
    for (int j = 0; j < n; ++j) pr[j] *= inv;
  }
};
template <class T>
struct MaskedSoftmaxGradRow {
  T* ds; const T* g; const T* p; int n;
  RD_HD void operator()(int64_t r) const {
    const T* gr = g + r * n;
    const T* pr = p + r * n;
    double dot = 0;
    for (int j = 0; j < n; ++j) dot += double(gr[j]) * pr[j];
    T* dr = ds + r * n;
    for (int j = 0; j < n; ++j) dr[j] = pr[j] * (gr[j] - T(dot));
  }
};

template <class T>
struct L2NormaliseRow {  // y_r = x_r / max(||x_r||, eps)
  T* y; T* norm; const T* x; int d; double eps;
  RD_HD void operator()(int64_t r) const {
    const T* xr = x + r * d;
    double sq = 0;
    for (int c = 0; c < d; ++c) sq += double(xr[c]) * xr[c];
    const double root = k_sqrt(sq);
    const double nr = root > eps ? root : eps;
    norm[r] = T(nr);
    for (int c = 0; c < d; ++c) y[r * d + c] = T(xr[c] / nr);
  }
};
template <class T>
struct L2NormaliseGradRow {
  T* dx; const T* g; const T* y; const T* norm; int d; double eps;
  RD_HD void operator()(int64_t r) const {
    const T* gr = g + r * d;
    const T* yr = y + r * d;
    const double nr = norm[r];
    double gy = 0;
    if (nr > eps)
      for (int c = 0; c < d; ++c) gy += double(gr[c]) * yr[c];
    for (int c = 0; c < d; ++c) dx[r * d + c] = T((gr[c] - yr[c] * gy) / nr);
  }
};
// One vector x[o, :, i] (stride `inner`) of l2_normalise_axis: y = x / (||x|| + eps).
template <class T>
struct L2NormaliseAxis {  // v over outer * inner
  T* y; T* norm; const T* x; int n, inner; double eps;
  RD_HD void operator()(int64_t v) const {
    const int64_t o = v / inner, i = v % inner;
    const int64_t base = o * n * inner + i;
    double sq = 0;
    for (int k = 0; k < n; ++k) sq += double(x[base + int64_t(k) * inner]) * double(x[base + int64_t(k) * inner]);
    const double nr = k_sqrt(sq);
    norm[v] = T(nr);
    const T inv = T(1.0 / (nr + eps));
    for (int k = 0; k < n; ++k) y[base + int64_t(k) * inner] = x[base + int64_t(k) * inner] * inv;
  }
};

template <class T>
struct Scale {
  T* x; double c;
  RD_HD void operator()(int64_t i) const { x[i] = T(x[i] * c); }
};
template <class T>
struct AdamElement {  // the CPU's update, scalars precomputed on the host
  T* p; const T* g; T* m; T* v; T b1, b2, lr, wd, step_size, inv_sqrt_bc2, eps; bool decoupled;
  RD_HD void operator()(int64_t i) const {
    T gi = g[i];
    if (decoupled) p[i] -= lr * wd * p[i];
    else if (wd != T(0)) gi += wd * p[i];
    m[i] = b1 * m[i] + (T(1) - b1) * gi;
    v[i] = b2 * v[i] + (T(1) - b2) * gi * gi;
    p[i] -= step_size * m[i] / (k_sqrt(v[i]) * inv_sqrt_bc2 + eps);
  }
};

// Reduction terms (double).
template <class T>
struct DotTerm {
  const T* x; const T* y;
  RD_HD double operator()(int64_t i) const { return double(x[i]) * double(y[i]); }
};
template <class T>
struct SumTerm {
  const T* x;
  RD_HD double operator()(int64_t i) const { return double(x[i]); }
};
template <class T>
struct SquareTerm {
  const T* x;
  RD_HD double operator()(int64_t i) const { return double(x[i]) * double(x[i]); }
};
template <class Term>
struct PartialSums {  // t over P: the terms t, t + P, t + 2P, ...
  Term term; double* part; int64_t n; int P;
  RD_HD void operator()(int64_t t) const {
    double s = 0;
    for (int64_t i = t; i < n; i += P) s += term(i);
    part[t] = s;
  }
};
struct SumPartials {  // one thread: part[P] = sum of part[0..P) in order
  double* part; int P;
  RD_HD void operator()(int64_t) const {
    double s = 0;
    for (int t = 0; t < P; ++t) s += part[t];
    part[P] = s;
  }
};

// ---- cross-entropy over item chunks -----------------------------------------------------
// One thread: the rows whose target is not 0, in order, and their count (rows[R]).
struct CompactTargets {
  int32_t* rows; const int32_t* targets; int R;
  RD_HD void operator()(int64_t) const {
    int count = 0;
    for (int r = 0; r < R; ++r)
      if (targets[r] != 0) rows[count++] = r;
    rows[R] = count;
  }
};
template <class T>
struct GatherListedRows {  // i over C * d: out row k = src row rows[k]
  T* out; const T* src; const int32_t* rows; int d;
  RD_HD void operator()(int64_t i) const { out[i] = src[int64_t(rows[i / d]) * d + i % d]; }
};
template <class T>
struct ScatterListedRows {  // i over C * d: dst row rows[k] = src row k
  T* dst; const T* src; const int32_t* rows; int d;
  RD_HD void operator()(int64_t i) const { dst[int64_t(rows[i / d]) * d + i % d] = src[i]; }
};
// Row i of a chunk: z = logits (+ bias); loss; z becomes dz = (softmax - onehot) / count.
template <class T>
struct CrossEntropyRow {
  T* z; double* row_loss; const int32_t* targets; const int32_t* rows; const T* bias; int N;
  T inv_count;
  RD_HD void operator()(int64_t i) const {
    T* zr = z + i * N;
    if (bias)
      for (int j = 0; j < N; ++j) zr[j] += bias[j];
    const int y = targets[rows[i]];
    const T zy = zr[y];
    T mx = zr[0];
    for (int j = 1; j < N; ++j) mx = zr[j] > mx ? zr[j] : mx;
    T total = 0;
    for (int j = 0; j < N; ++j) {
      zr[j] = k_exp(zr[j] - mx);
      total += zr[j];
    }
    row_loss[i] = double(mx + k_log(total) - zy);
    const T scale = inv_count / total;
    for (int j = 0; j < N; ++j) zr[j] *= scale;
    zr[y] -= inv_count;
  }
};
template <class T>
struct ColumnSumsAdd {  // j over N: dbias[j] += sum of the C rows' column j, rows in order
  T* dbias; const T* z; int C, N;
  RD_HD void operator()(int64_t j) const {
    for (int i = 0; i < C; ++i) dbias[j] += z[int64_t(i) * N + j];
  }
};
struct ListedSum {  // one thread: out[0] += v[0], += v[1], ... (the CPU's order)
  double* out; const double* v; int n;
  RD_HD void operator()(int64_t) const {
    for (int i = 0; i < n; ++i) out[0] += v[i];
  }
};

// ---- sampled BPR (SASRec's bpr objective) ------------------------------------------------
template <class T>
struct BprRow {  // row r: loss term, coefficient, dh row
  T* dh; double* row_loss; T* coef; const T* h; const T* E; const int32_t* targets;
  const int32_t* negatives; int d; double count;
  RD_HD void operator()(int64_t r) const {
    if (targets[r] == 0) {
      row_loss[r] = 0;
      coef[r] = T(0);
      if (dh)
        for (int c = 0; c < d; ++c) dh[r * d + c] = T(0);
      return;
    }
    const T* hr = h + r * d;
    const T* ep = E + int64_t(targets[r]) * d;
    const T* en = E + int64_t(negatives[r]) * d;
    double x = 0;
    for (int c = 0; c < d; ++c) x += double(hr[c]) * (double(ep[c]) - double(en[c]));
    row_loss[r] = x > 0 ? log1p(exp(-x)) : -x + log1p(exp(x));
    const T k = T(-1.0 / (1.0 + exp(x)) / count);
    coef[r] = k;
    if (dh)
      for (int c = 0; c < d; ++c) dh[r * d + c] = k * (ep[c] - en[c]);
  }
};
// dE, column c, rows in order: the CPU's `+= coef h` at the target, `-= coef h` at the negative.
template <class T>
struct BprTableGrad {
  T* dE; const T* coef; const T* h; const int32_t* targets; const int32_t* negatives; int R, d;
  RD_HD void operator()(int64_t c) const {
    for (int r = 0; r < R; ++r) {
      if (targets[r] == 0) continue;
      const T v = coef[r] * h[int64_t(r) * d + c];
      dE[int64_t(targets[r]) * d + c] += v;
      dE[int64_t(negatives[r]) * d + c] -= v;
    }
  }
};
struct CountNonzero {  // one thread: out[0] = #{r : ids[r] != 0}
  double* out; const int32_t* ids; int R;
  RD_HD void operator()(int64_t) const {
    int64_t n = 0;
    for (int r = 0; r < R; ++r) n += ids[r] != 0;
    out[0] = double(n);
  }
};


// ---- session read-outs (STAMP, FPMC) and their losses ----------------------------------------
// The number of real (left-aligned) slots of row b of a (Bn, L) mask.
RD_HD inline int row_len(const uint8_t* valid, int64_t b, int L) {
  int len = 0;
  for (int j = 0; j < L; ++j) len += valid[b * L + j] != 0;
  return len;
}
// The pairwise losses' term, as cpu/vecmath.hpp's neg_log_sigmoid_gamma: l = -log(gamma + s),
// dl = -s (1 - s) / (gamma + s), s = sigmoid(x), from e = exp(-|x|) (no overflow, no 1 - s).
template <class T>
RD_HD inline void neg_log_sigmoid_gamma(T x, T gamma, T& l, T& dl) {
  const T e = k_exp(x < T(0) ? x : -x), r = T(1) / (T(1) + e);
  const T s = x >= T(0) ? r : e * r;
  l = -k_log(gamma + s);
  dl = -(e * r * r) / (gamma + s);
}
template <class T>
struct Sigmoid {
  T* y; const T* x;
  RD_HD void operator()(int64_t i) const { y[i] = T(1) / (T(1) + k_exp(-x[i])); }
};
template <class T>
struct SigmoidGrad {
  T* dx; const T* g; const T* y;
  RD_HD void operator()(int64_t i) const { dx[i] = g[i] * y[i] * (T(1) - y[i]); }
};
template <class T>
struct Tanh {
  T* y; const T* x;
  RD_HD void operator()(int64_t i) const { y[i] = k_tanh(x[i]); }
};
template <class T>
struct TanhGrad {
  T* dx; const T* g; const T* y;
  RD_HD void operator()(int64_t i) const { dx[i] = g[i] * (T(1) - y[i] * y[i]); }
};
template <class T>
struct LengthWeights {  // b over Bn
  T* w; const uint8_t* valid; int L;
  RD_HD void operator()(int64_t b) const {
    const int len = row_len(valid, b, L);
    const T v = len == 0 ? T(0) : T(1) / T(len);
    for (int j = 0; j < L; ++j) w[b * L + j] = v;
  }
};
struct LastSlots {  // b over Bn
  int32_t* idx; const uint8_t* valid; int L;
  RD_HD void operator()(int64_t b) const {
    const int len = row_len(valid, b, L);
    idx[b] = int32_t(b * L + (len > 1 ? len - 1 : 0));
  }
};
template <class T>
struct BroadcastSlots {  // i over Bn * L * d
  T* x; const T* v; int L, d;
  RD_HD void operator()(int64_t i) const { x[i] += v[(i / (int64_t(L) * d)) * d + i % d]; }
};
template <class T>
struct SlotSum {  // i over Bn * d: slots added in order
  T* out; const T* x; const T* w; int L, d;
  RD_HD void operator()(int64_t i) const {
    const int64_t b = i / d, c = i % d;
    T o = T(0);
    for (int j = 0; j < L; ++j) {
      const T wj = w ? w[b * L + j] : T(1);
      o += wj * x[(b * L + j) * d + c];
    }
    out[i] = o;
  }
};
template <class T>
struct SlotSumGradX {  // i over Bn * L * d
  T* dx; const T* g; const T* w; int L, d; bool accumulate;
  RD_HD void operator()(int64_t i) const {
    const int64_t r = i / d;
    const T v = (w ? w[r] : T(1)) * g[(r / L) * d + i % d];
    dx[i] = accumulate ? dx[i] + v : v;
  }
};
template <class T>
struct SlotSumGradW {  // r over Bn * L: <g[b], x[b, j]>
  T* dw; const T* g; const T* x; int L, d;
  RD_HD void operator()(int64_t r) const {
    const T* gb = g + (r / L) * d;
    const T* xr = x + r * d;
    T acc = 0;
    for (int c = 0; c < d; ++c) acc += gb[c] * xr[c];
    dw[r] = acc;
  }
};
template <class T>
struct GatherRowPairs {  // i over R * 2d
  T* out; const T* a; const T* b; const int32_t* ids; int d;
  RD_HD void operator()(int64_t i) const {
    const int64_t r = i / (2 * d);
    const int c = int(i % (2 * d));
    out[i] = c < d ? a[int64_t(ids[2 * r]) * d + c] : b[int64_t(ids[2 * r + 1]) * d + c - d];
  }
};
template <class T>
struct ScatterRowPairs {  // c over d: rows in order, a's column then b's (a and b may be one table)
  T* da; T* db; const T* g; const int32_t* ids; int R, d; bool skip_a, skip_b;
  RD_HD void operator()(int64_t c) const {
    for (int r = 0; r < R; ++r) {
      const int32_t ia = ids[2 * r], ib = ids[2 * r + 1];
      if (!(skip_a && ia == 0)) da[int64_t(ia) * d + c] += g[int64_t(r) * 2 * d + c];
      if (!(skip_b && ib == 0)) db[int64_t(ib) * d + c] += g[int64_t(r) * 2 * d + d + c];
    }
  }
};
template <class T>
struct BprGammaRow {  // RecBole's BPRLoss, row r
  T* dh; double* row_loss; T* coef; const T* h; const T* E; const int32_t* targets;
  const int32_t* negatives; int d; double gamma, count;
  RD_HD void operator()(int64_t r) const {
    if (targets[r] == 0) {
      row_loss[r] = 0;
      coef[r] = T(0);
      if (dh)
        for (int c = 0; c < d; ++c) dh[r * d + c] = T(0);
      return;
    }
    const T* hr = h + r * d;
    const T* ep = E + int64_t(targets[r]) * d;
    const T* en = E + int64_t(negatives[r]) * d;
    double sp = 0, sn = 0;
    for (int c = 0; c < d; ++c) {
      sp += double(hr[c]) * double(ep[c]);
      sn += double(hr[c]) * double(en[c]);
    }
    const double x = sp - sn;
    const double s = 1.0 / (1.0 + exp(-x)), s_neg = 1.0 / (1.0 + exp(x));
    row_loss[r] = -log(gamma + s);
    const T k = T(-s * s_neg / (gamma + s) / count);
    coef[r] = k;
    if (dh)
      for (int c = 0; c < d; ++c) dh[r * d + c] = k * (ep[c] - en[c]);
  }
};
// In-batch BPR, row b of S (R, C), its target in column row0 + b (cpu/vecmath.hpp's
// neg_log_sigmoid_gamma per term: no overflow, no 1 - s cancellation).
template <class T>
struct InBatchBprRow {
  T* dS; double* row_loss; const T* S; int C, row0; T gamma; double inv;
  RD_HD void operator()(int64_t b) const {
    const int p = row0 + int(b);
    const T* row = S + b * C;
    T* drow = dS + b * C;
    T lsum = 0, dlsum = 0;
    const T invT = T(inv);
    for (int j = 0; j < C; ++j) {
      T l, dl;
      neg_log_sigmoid_gamma(row[p] - row[j], gamma, l, dl);
      lsum += l;
      if (j != p) {
        dlsum += dl;
        drow[j] = -dl * invT;
      }
    }
    row_loss[b] = double(lsum);
    drow[p] = T(double(dlsum) * inv);
  }
};

// ---- Atten-Mixer (backbones/attenmixer.hpp), bce_multi, the weighted pairwise loss ---------
struct IntentSlots {  // b over Bn
  int32_t* idx; const uint8_t* valid; int L, K;
  RD_HD void operator()(int64_t b) const {
    const int len = row_len(valid, b, L);
    for (int k = 0; k < K; ++k) {
      const int j = len - 1 - k;
      idx[b * K + k] = j >= 0 ? int32_t(1 + b * L + j) : 0;
    }
  }
};
// One thread per (slot r, block of 4 columns): the mask row is keyed by the slot's id.
template <class T>
struct DropoutByIdBlock {
  T* y; T* mask; const T* x; const int32_t* ids; int L, n, blocks; float p; T keep_scale; DropoutKey key;
  uint32_t site;
  RD_HD void operator()(int64_t i) const {
    const int64_t r = i / blocks;
    const int cb = int(i % blocks), c = cb * 4, count = n - c < 4 ? n - c : 4;
    const uint32_t b = uint32_t(r / L);
    const int64_t e = r * n + c;
    dropout_mask4(mask + e, count, key, uint32_t(ids[r]),
                  (site << 20) | ((key.first_seq + b) * uint32_t(blocks) + uint32_t(cb)), p, keep_scale);
    for (int k = 0; k < count; ++k) y[e + k] = x[e + k] * mask[e + k];
  }
};
template <class T>
struct L2NormaliseAxisGrad {  // v over outer * inner
  T* dx; const T* g; const T* y; const T* norm; int n, inner; double eps;
  RD_HD void operator()(int64_t v) const {
    const int64_t o = v / inner, i = v % inner;
    const int64_t base = o * n * inner + i;
    const double nr = norm[v];
    if (nr == 0) {
      for (int k = 0; k < n; ++k) dx[base + int64_t(k) * inner] = T(0);
      return;
    }
    double gy = 0;
    for (int k = 0; k < n; ++k) gy += double(g[base + int64_t(k) * inner]) * double(y[base + int64_t(k) * inner]);
    const T a = T(1.0 / (nr + eps)), bb = T(gy / nr);
    for (int k = 0; k < n; ++k) {
      const int64_t e = base + int64_t(k) * inner;
      dx[e] = g[e] * a - y[e] * bb;
    }
  }
};
// The read-out of one (row b, head m): G, A1 (K, L), A2, A3 and the dropout row (L), then the
// head's dh output channels.
template <class T>
struct MixerForwardHead {
  T* out; T* G; T* A1; T* A2; T* A3; T* drop; const T* q; const T* k; const T* v; const uint8_t* key_valid;
  MixerAttentionShape s; HeadSplit split; double lp, p_drop; DropoutKey key; uint32_t site;
  RD_HD void operator()(int64_t bm) const {
    const int K = s.K, L = s.L, H = s.H, dh = s.dh, d = s.d();
    const int64_t b = bm / H;
    const int m = int(bm % H);
    const int64_t KL = int64_t(K) * L;
    const uint8_t* valid = key_valid + b * L;
    T* Gm = G + bm * KL;
    T* A1m = A1 + bm * KL;
    T* A2m = A2 + bm * L;
    T* A3m = A3 + bm * L;
    for (int kk = 0; kk < K; ++kk) {
      const T* qr = q + mixer_head_row(split, b, m, kk, K, H, dh);
      T* g = Gm + int64_t(kk) * L;
      T* a = A1m + int64_t(kk) * L;
      for (int l = 0; l < L; ++l) {
        const T* kr = k + mixer_head_row(split, b, m, l, L, H, dh);
        T acc = 0;
        for (int c = 0; c < dh; ++c) acc += qr[c] * kr[c];
        g[l] = T(1) / (T(1) + k_exp(-acc));
      }
      T mx = -k_inf<T>();
      for (int l = 0; l < L; ++l) mx = T(2) * g[l] > mx ? T(2) * g[l] : mx;
      T total = 0;
      for (int l = 0; l < L; ++l) total += (a[l] = k_exp(T(2) * g[l] - mx));
      for (int l = 0; l < L; ++l) a[l] /= total;
    }
    for (int l = 0; l < L; ++l) {
      T acc = 0;
      for (int kk = 0; kk < K; ++kk)
        acc += lp == 1.0 ? A1m[int64_t(kk) * L + l] : T(k_pow(double(A1m[int64_t(kk) * L + l]), lp));
      A2m[l] = lp == 1.0 ? acc : T(k_pow(double(acc), 1.0 / lp));
    }
    T mx = -k_inf<T>();
    for (int l = 0; l < L; ++l)
      if (valid[l] && T(2) * A2m[l] > mx) mx = T(2) * A2m[l];
    T total = 0;
    for (int l = 0; l < L; ++l) total += (A3m[l] = valid[l] ? k_exp(T(2) * A2m[l] - mx) : T(0));
    const T inv = total > 0 ? T(1) / total : T(0);
    for (int l = 0; l < L; ++l) A3m[l] *= inv;
    // Dropout of A3's row: the CPU's call for row b covers rows (first_seq + b) H + m.
    T* Dm = drop + bm * L;
    if (p_drop <= 0) {
      for (int l = 0; l < L; ++l) Dm[l] = T(1);
    } else {
      const T keep = T(1.0 / (1.0 - p_drop));
      const uint32_t row = (key.first_seq + uint32_t(b)) * uint32_t(H) + uint32_t(m);
      for (int c = 0; c < L; c += 4)
        dropout_mask4(Dm + c, L - c < 4 ? L - c : 4, key, row, (site << 20) | uint32_t(c / 4), float(p_drop), keep);
    }
    T* o = out + b * d + int64_t(m) * dh;
    for (int c = 0; c < dh; ++c) o[c] = T(0);
    for (int l = 0; l < L; ++l) {
      if (!valid[l]) continue;
      const T w = A3m[l] * Dm[l];
      const T* vr = v + (b * L + l) * d + int64_t(m) * dh;
      for (int c = 0; c < dh; ++c) o[c] += w * vr[c];
    }
  }
};
// The backward of one (row b, head m); dA, dA2: this head's (L) slices of a scratch.
template <class T>
struct MixerBackwardHead {
  T* dq; T* dk; T* dv; T* P; T* dA_all; const T* g; const T* G; const T* A1; const T* A2; const T* A3;
  const T* drop; const T* q; const T* k; const T* v; const uint8_t* key_valid; MixerAttentionShape s;
  HeadSplit split; double lp;
  RD_HD void operator()(int64_t bm) const {
    const int K = s.K, L = s.L, H = s.H, dh = s.dh, d = s.d();
    const int64_t b = bm / H;
    const int m = int(bm % H);
    const int64_t KL = int64_t(K) * L;
    const uint8_t* valid = key_valid + b * L;
    const T* gb = g + b * d;
    const T* Gm = G + bm * KL;
    const T* A1m = A1 + bm * KL;
    const T* A2m = A2 + bm * L;
    const T* A3m = A3 + bm * L;
    const T* Dm = drop + bm * L;
    T* Pm = P + bm * KL;
    T* dA = dA_all + bm * 2 * L;
    T* dA2 = dA + L;
    for (int l = 0; l < L; ++l) {
      T* dvr = dv + (b * L + l) * d + int64_t(m) * dh;
      const T* vr = v + (b * L + l) * d + int64_t(m) * dh;
      if (!valid[l]) {
        for (int c = 0; c < dh; ++c) dvr[c] = T(0);
        dA[l] = 0;
        continue;
      }
      const T w = A3m[l] * Dm[l];
      T acc = 0;
      for (int c = 0; c < dh; ++c) {
        dvr[c] = w * gb[m * dh + c];
        acc += gb[m * dh + c] * vr[c];
      }
      dA[l] = acc * Dm[l];
    }
    T dot = 0;
    for (int l = 0; l < L; ++l) dot += dA[l] * A3m[l];
    for (int l = 0; l < L; ++l) dA2[l] = T(2) * A3m[l] * (dA[l] - dot);
    for (int kk = 0; kk < K; ++kk) {
      const T* a = A1m + int64_t(kk) * L;
      const T* gr = Gm + int64_t(kk) * L;
      T* pr = Pm + int64_t(kk) * L;
      for (int l = 0; l < L; ++l)
        pr[l] = lp == 1.0 ? dA2[l] : dA2[l] * T(k_pow(double(a[l]), lp - 1.0) * k_pow(double(A2m[l]), 1.0 - lp));
      T d1 = 0;
      for (int l = 0; l < L; ++l) d1 += pr[l] * a[l];
      for (int l = 0; l < L; ++l) pr[l] = T(2) * a[l] * (pr[l] - d1) * gr[l] * (T(1) - gr[l]);
    }
    for (int kk = 0; kk < K; ++kk) {
      T* dqr = dq + mixer_head_row(split, b, m, kk, K, H, dh);
      for (int c = 0; c < dh; ++c) dqr[c] = T(0);
      for (int l = 0; l < L; ++l) {
        const T* kr = k + mixer_head_row(split, b, m, l, L, H, dh);
        const T pv = Pm[int64_t(kk) * L + l];
        for (int c = 0; c < dh; ++c) dqr[c] += pv * kr[c];
      }
    }
    for (int l = 0; l < L; ++l) {
      T* dkr = dk + mixer_head_row(split, b, m, l, L, H, dh);
      for (int c = 0; c < dh; ++c) dkr[c] = T(0);
      for (int kk = 0; kk < K; ++kk) {
        const T* qr = q + mixer_head_row(split, b, m, kk, K, H, dh);
        const T pv = Pm[int64_t(kk) * L + l];
        for (int c = 0; c < dh; ++c) dkr[c] += pv * qr[c];
      }
    }
  }
};
RD_HD inline double k_softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }
// bce_multi, row r: the target (k = -1) then its negatives; dh written, the coefficients kept.
template <class T>
struct BceMultiRow {
  T* dh; double* pos; double* neg; T* coef; const T* h; const T* E; const int32_t* targets;
  const int32_t* negatives; int n_neg, d; double inv_pos, inv_neg;
  RD_HD void operator()(int64_t r) const {
    const T* hr = h + r * d;
    if (dh)
      for (int c = 0; c < d; ++c) dh[r * d + c] = T(0);
    double pr = 0, nr = 0;
    for (int k = -1; k < n_neg; ++k) {
      const int32_t item = k < 0 ? targets[r] : negatives[r * n_neg + k];
      const T* e = E + int64_t(item) * d;
      double x = 0;
      for (int c = 0; c < d; ++c) x += double(hr[c]) * double(e[c]);
      double cf;
      if (k < 0) {
        pr += k_softplus(-x);
        cf = (1.0 / (1.0 + exp(-x)) - 1.0) * inv_pos;
      } else {
        nr += k_softplus(x);
        cf = 1.0 / (1.0 + exp(-x)) * inv_neg;
      }
      coef[r * (n_neg + 1) + (k + 1)] = T(cf);
      if (dh)
        for (int c = 0; c < d; ++c) dh[r * d + c] += T(cf) * e[c];
    }
    pos[r] = pr;
    neg[r] = nr;
  }
};
template <class T>
struct BceMultiTableGrad {  // c over d: rows and their items in order
  T* dE; const T* coef; const T* h; const int32_t* targets; const int32_t* negatives; int R, n_neg, d;
  RD_HD void operator()(int64_t c) const {
    for (int r = 0; r < R; ++r)
      for (int k = -1; k < n_neg; ++k) {
        const int32_t item = k < 0 ? targets[r] : negatives[int64_t(r) * n_neg + k];
        dE[int64_t(item) * d + c] += coef[int64_t(r) * (n_neg + 1) + (k + 1)] * h[int64_t(r) * d + c];
      }
  }
};
// The weighted pairwise loss, row b: first its negative count and weight, then its terms.
template <class T>
struct PairwiseCount {
  int32_t* n_neg; double* w; const int32_t* items; const int32_t* groups; const T* weights; int C, row0;
  RD_HD void operator()(int64_t b) const {
    const int p = row0 + int(b);
    int n = 0;
    for (int j = 0; j < C; ++j) n += (items[j] != items[p]) & (groups[j] != groups[p]);
    n_neg[b] = n;
    w[b] = n > 0 ? double(weights[p]) : 0.0;
  }
};
template <class T>
struct PairwiseRow {
  T* dS; double* row_loss; const T* S; const int32_t* items; const int32_t* groups; const T* weights;
  const int32_t* n_neg; int C, row0; T gamma; double W;
  RD_HD void operator()(int64_t b) const {
    T* drow = dS + b * C;
    if (n_neg[b] == 0) {
      for (int j = 0; j < C; ++j) drow[j] = T(0);
      row_loss[b] = 0;
      return;
    }
    const int p = row0 + int(b);
    const double c = double(weights[p]) / (double(n_neg[b]) * W);
    const T* row = S + b * C;
    const T cT = T(c);
    T lsum = 0, dlsum = 0;
    for (int j = 0; j < C; ++j) {
      if (!((items[j] != items[p]) & (groups[j] != groups[p]))) {
        drow[j] = T(0);
        continue;
      }
      T l, dl;
      neg_log_sigmoid_gamma(row[p] - row[j], gamma, l, dl);
      lsum += l;
      dlsum += dl;
      drow[j] = -dl * cT;
    }
    row_loss[b] = c * double(lsum);
    drow[p] = T(double(dlsum) * c);
  }
};

// ---- ranking (eval/ranking.hpp's rank ops) -------------------------------------------------
// One thread per case of a block: the CPU's rank counts (cpu/ranking.hpp) and its top-K list
// (cpu/select.hpp: score descending, then id ascending; NaN never selected; a short list is
// filled with item 0 and -inf), by insertion into the case's (K) output arrays.
template <class T>
RD_HD inline bool k_isnan(T x) {
  return x != x;
}
template <class T>
struct TopK {  // one case's running list
  int32_t* items; T* scores; int K; int32_t* m; uint8_t* full; T* thr;
  RD_HD void consider(T s, int32_t id) const {
    if (!(*full ? s > *thr : s >= *thr)) return;  // also rejects NaN
    int p = *full ? K - 1 : *m;
    while (p > 0 && scores[p - 1] < s) {
      scores[p] = scores[p - 1];
      items[p] = items[p - 1];
      --p;
    }
    scores[p] = s;
    items[p] = id;
    if (!*full && ++*m == K) *full = 1;
    if (*full) *thr = scores[K - 1];
  }
  RD_HD void reset() const {
    *m = 0;
    *full = 0;
    *thr = -k_inf<T>();
  }
  RD_HD void finish() const {
    for (int i = *m; i < K; ++i) {
      items[i] = 0;
      scores[i] = -k_inf<T>();
    }
  }
};

// The device side of one block: its cases' targets and exclusions (CSR over the cases, each
// case's list sorted), the chunked path's counters, the top-K lists, and the results.
template <class T>
struct RankArrays {
  const int32_t* targets; const int32_t* excl_off; const int32_t* excl; int32_t* pos;
  int64_t* better; uint8_t* miss; T* target_score; int64_t* ranks;
  int32_t* top_items; T* top_scores; int32_t* top_m; uint8_t* top_full; T* top_thr;
  int32_t* error;  // (3): [0] = 1 + a case whose two target scores differ (0: none)
  int K; bool want_ranks; eval::Ties ties;
  RD_HD TopK<T> top(int64_t i) const {
    return TopK<T>{top_items + i * K, top_scores + i * K, K, top_m + i, top_full + i, top_thr + i};
  }
};

template <class T>
struct RankFullRow {  // case i: its whole score row (N,)
  RankArrays<T> a; T* scores; int ld, N; bool mask_pad;
  RD_HD void operator()(int64_t i) const {
    T* row = scores + i * ld;
    for (int32_t k = a.excl_off[i]; k < a.excl_off[i + 1]; ++k) row[a.excl[k]] = T(NAN);
    if (mask_pad) row[0] = T(NAN);
    if (a.want_ranks) {
      const int32_t t = a.targets[i];
      const T st = row[t];
      if (k_isnan(st)) {
        a.ranks[i] = eval::kMissRank;
      } else {
        int64_t better = 0;
        if (a.ties == eval::Ties::against_model) {
          for (int j = 1; j < N; ++j) better += row[j] >= st;
          better -= 1;
        } else {
          for (int j = 1; j < t; ++j) better += row[j] >= st;
          for (int j = t + 1; j < N; ++j) better += row[j] > st;
        }
        a.ranks[i] = better + 1;
      }
    }
    if (a.K > 0) {
      const TopK<T> top = a.top(i);
      top.reset();
      for (int j = 1; j < N; ++j) top.consider(row[j], j);
      top.finish();
    }
  }
};

template <class T>
struct RankStartCase {  // case i of a chunked block: its target's score, miss flag, counters
  RankArrays<T> a; const T* scores; int ld;
  RD_HD void operator()(int64_t i) const {
    const T ts = a.want_ranks ? scores[i * ld + i] : T(0);
    a.target_score[i] = ts;
    a.pos[i] = a.excl_off[i];
    a.better[i] = 0;
    bool excluded = false;
    for (int32_t k = a.excl_off[i]; k < a.excl_off[i + 1]; ++k) excluded = excluded || a.excl[k] == a.targets[i];
    a.miss[i] = a.want_ranks && (k_isnan(ts) || excluded);
    if (a.K > 0) a.top(i).reset();
  }
};

template <class T>
struct RankChunkCase {  // case i, items c0 .. c0 + w of its row
  RankArrays<T> a; T* scores; int ld, c0, w; bool last;
  RD_HD void operator()(int64_t i) const {
    T* row = scores + i * ld;
    const int tt = a.targets[i] - c0;
    const T ts = a.target_score[i];
    const bool in_chunk = tt >= 0 && tt < w;
    if (a.want_ranks && in_chunk && !(row[tt] == ts) && !k_isnan(ts) && a.error[0] == 0)
      a.error[0] = int32_t(i) + 1;  // reported by the host after the launch
    if (c0 == 0) row[0] = T(NAN);
    int32_t p = a.pos[i];
    while (p < a.excl_off[i + 1] && a.excl[p] < c0 + w) row[a.excl[p++] - c0] = T(NAN);
    a.pos[i] = p;
    if (a.want_ranks && !a.miss[i]) {
      int64_t n = 0;
      if (a.ties == eval::Ties::against_model) {
        for (int t = 0; t < w; ++t) n += row[t] >= ts;
        n -= in_chunk;
      } else {  // lower ids win ties
        const int split = tt < 0 ? 0 : tt > w ? w : tt;
        for (int t = 0; t < split; ++t) n += row[t] >= ts;
        const int from = split + in_chunk < w ? split + in_chunk : w;
        for (int t = from; t < w; ++t) n += row[t] > ts;
      }
      a.better[i] += n;
    }
    if (a.K > 0) {
      const TopK<T> top = a.top(i);
      for (int t = c0 == 0 ? 1 : 0; t < w; ++t) top.consider(row[t], c0 + t);
      if (last) top.finish();
    }
    if (last && a.want_ranks) a.ranks[i] = a.miss[i] ? eval::kMissRank : a.better[i] + 1;
  }
};

// ---- the ops ------------------------------------------------------------------------------
// Same names, arguments and meaning as backend/ops.hpp (pointers are executor memory; the
// documented host arguments, such as n_targets, are host memory).
template <class X>
struct Ops {
  template <class T>
  static T* scratch(int slot, int64_t n) {
    return static_cast<T*>(X::scratch(slot, size_t(n < 1 ? 1 : n) * sizeof(T)));
  }
  template <class Term>
  static double reduce(int64_t n, Term term) {
    if (n <= 0) return 0.0;
    const int P = int(n < kPartials ? n : kPartials);
    double* part = scratch<double>(0, P + 1);
    X::for_each(P, PartialSums<Term>{term, part, n, P});
    X::for_each(1, SumPartials{part, P});
    double r = 0;
    X::template to_host<double>(&r, part + P, 1);
    return r;
  }

  // ---- ranking: the block's state lives in RankBlock::backend_state ----
  template <class T>
  struct RankState {
    typename X::template Vec<int32_t> targets, excl_off, excl, pos, top_items, top_m, error;
    typename X::template Vec<int64_t> better, ranks;
    typename X::template Vec<uint8_t> miss, top_full;
    typename X::template Vec<T> target_score, top_scores, top_thr;
    int K = -1;
    RankState()
        : targets(size_t(eval::kEvalBlock)), excl_off(size_t(eval::kEvalBlock) + 1), excl(1),
          pos(size_t(eval::kEvalBlock)), error(3), better(size_t(eval::kEvalBlock)),
          ranks(size_t(eval::kEvalBlock)), miss(size_t(eval::kEvalBlock)), top_full(size_t(eval::kEvalBlock)),
          target_score(size_t(eval::kEvalBlock)), top_thr(size_t(eval::kEvalBlock)) {}
  };
  // Uploads the block's targets and exclusion lists (sorted per case, as the CPU's); sizes the
  // top-K arrays. The lists are those of eval::mask_excluded.
  template <class T>
  static RankArrays<T> rank_setup(eval::RankBlock<T>& b, size_t n) {
    if (!b.backend_state) b.backend_state = std::make_shared<RankState<T>>();
    auto& st = *static_cast<RankState<T>*>(b.backend_state.get());
    RD_REQUIRE(n <= size_t(eval::kEvalBlock), "rank block of ", n, " cases (at most ", eval::kEvalBlock, ")");
    const int K = b.K > 0 ? b.K : 0;
    if (st.K != K) {
      st.K = K;
      st.top_items = typename X::template Vec<int32_t>(size_t(eval::kEvalBlock) * size_t(K > 0 ? K : 1));
      st.top_scores = typename X::template Vec<T>(size_t(eval::kEvalBlock) * size_t(K > 0 ? K : 1));
      st.top_m = typename X::template Vec<int32_t>(size_t(eval::kEvalBlock));
    }
    std::vector<int32_t> targets(n), off(n + 1, 0), excl;
    const eval::Exclude ex = b.o.exclude;
    for (size_t i = 0; i < n; ++i) {
      const eval::Case& c = b.cases[i];
      targets[i] = c.target;
      const size_t first = excl.size();
      if (ex == eval::Exclude::history || ex == eval::Exclude::seen)
        excl.insert(excl.end(), c.history, c.history + c.length);
      if (ex == eval::Exclude::seen || ex == eval::Exclude::listed) excl.insert(excl.end(), c.seen, c.seen + c.n_seen);
      std::sort(excl.begin() + ptrdiff_t(first), excl.end());
      RD_REQUIRE(excl.size() < size_t(INT32_MAX), "rank block: too many exclusions");
      off[i + 1] = int32_t(excl.size());
    }
    if (st.excl.size() < excl.size()) st.excl = typename X::template Vec<int32_t>(excl.size());
    X::template to_device<int32_t>(st.targets.data(), targets.data(), n);
    X::template to_device<int32_t>(st.excl_off.data(), off.data(), n + 1);
    X::template to_device<int32_t>(st.excl.data(), excl.data(), excl.size());
    const int32_t zero[3] = {0, 0, 0};
    X::template to_device<int32_t>(st.error.data(), zero, 3);
    return RankArrays<T>{st.targets.data(), st.excl_off.data(), st.excl.data(), st.pos.data(),
                         st.better.data(), st.miss.data(), st.target_score.data(), st.ranks.data(),
                         st.top_items.data(), st.top_scores.data(), st.top_m.data(), st.top_full.data(),
                         st.top_thr.data(), st.error.data(), K, b.want_ranks, b.o.ties};
  }
  template <class T>
  static RankArrays<T> rank_arrays(eval::RankBlock<T>& b) {
    auto& st = *static_cast<RankState<T>*>(b.backend_state.get());
    return RankArrays<T>{st.targets.data(), st.excl_off.data(), st.excl.data(), st.pos.data(),
                         st.better.data(), st.miss.data(), st.target_score.data(), st.ranks.data(),
                         st.top_items.data(), st.top_scores.data(), st.top_m.data(), st.top_full.data(),
                         st.top_thr.data(), st.error.data(), st.K, b.want_ranks, b.o.ties};
  }
  template <class T>
  static void rank_results(eval::RankBlock<T>& b, const RankArrays<T>& a, size_t n) {
    if (b.want_ranks) X::template to_host<int64_t>(b.ranks, a.ranks, n);
    if (b.K > 0) {
      X::template to_host<int32_t>(b.top_items, a.top_items, n * size_t(b.K));
      X::template to_host<T>(b.top_scores, a.top_scores, n * size_t(b.K));
    }
  }

  template <class T>
  static void score_rows(T* scores, int ld, const T* q, int n, const T* items, int w, int dim) {
    X::for_each(int64_t(n) * w, ScoreRows<T>{scores, ld, q, items, w, dim});
  }
  template <class T>
  static void rank_rows(eval::RankBlock<T>& b, T* scores, int ld, size_t n, int N) {
    if (n == 0) return;
    const RankArrays<T> a = rank_setup(b, n);
    X::for_each(int64_t(n), RankFullRow<T>{a, scores, ld, N, b.o.exclude != eval::Exclude::none});
    rank_results(b, a, n);
  }
  template <class T>
  static void rank_targets(eval::RankBlock<T>& b, const T* scores, int ld, size_t n) {
    const RankArrays<T> a = rank_setup(b, n);
    if (n > 0) X::for_each(int64_t(n), RankStartCase<T>{a, scores, ld});
  }
  template <class T>
  static void rank_chunk(eval::RankBlock<T>& b, T* scores, int ld, size_t n, int c0, int w, bool last) {
    if (n == 0) return;
    const RankArrays<T> a = rank_arrays(b);
    X::for_each(int64_t(n), RankChunkCase<T>{a, scores, ld, c0, w, last});
    int32_t err = 0;
    X::template to_host<int32_t>(&err, a.error, 1);
    if (err != 0)
      fail("internal error: the target score of evaluation case ", err - 1,
           " of a block differs between its targets-only score and its chunk's (score_rows must not depend on position)");
    if (last) rank_results(b, a, n);
  }

  // ---- session read-outs and losses ----
  template <class T>
  static void sigmoid_forward(T* y, const T* x, int64_t n) { X::for_each(n, Sigmoid<T>{y, x}); }
  template <class T>
  static void sigmoid_backward(T* dx, const T* g, const T* y, int64_t n) { X::for_each(n, SigmoidGrad<T>{dx, g, y}); }
  template <class T>
  static void tanh_forward(T* y, const T* x, int64_t n) { X::for_each(n, Tanh<T>{y, x}); }
  template <class T>
  static void tanh_backward(T* dx, const T* g, const T* y, int64_t n) { X::for_each(n, TanhGrad<T>{dx, g, y}); }
  template <class T>
  static void length_weights(T* w, const uint8_t* valid, int Bn, int L) {
    X::for_each(Bn, LengthWeights<T>{w, valid, L});
  }
  static void last_slots(int32_t* idx, const uint8_t* valid, int Bn, int L) {
    X::for_each(Bn, LastSlots{idx, valid, L});
  }
  template <class T>
  static void broadcast_slots(T* x, const T* v, int Bn, int L, int d) {
    X::for_each(int64_t(Bn) * L * d, BroadcastSlots<T>{x, v, L, d});
  }
  template <class T>
  static void slot_sum(T* out, const T* x, const T* w, int Bn, int L, int d) {
    X::for_each(int64_t(Bn) * d, SlotSum<T>{out, x, w, L, d});
  }
  template <class T>
  static void slot_sum_backward(T* dx, T* dw, const T* g, const T* x, const T* w, int Bn, int L, int d,
                                bool accumulate_dx) {
    if (dx) X::for_each(int64_t(Bn) * L * d, SlotSumGradX<T>{dx, g, w, L, d, accumulate_dx});
    if (dw) X::for_each(int64_t(Bn) * L, SlotSumGradW<T>{dw, g, x, L, d});
  }
  template <class T>
  static void gather_row_pairs(T* out, const T* a, const T* b, const int32_t* ids, int R, int d) {
    X::for_each(int64_t(R) * 2 * d, GatherRowPairs<T>{out, a, b, ids, d});
  }
  template <class T>
  static void scatter_row_pairs(T* da, T* db, const T* g, const int32_t* ids, int R, int d, bool skip_pad_a,
                                bool skip_pad_b) {
    X::for_each(d, ScatterRowPairs<T>{da, db, g, ids, R, d, skip_pad_a, skip_pad_b});
  }
  template <class T>
  static double bpr_gamma_loss(T* dh, T* dE, const T* hidden, const T* table, const int32_t* targets,
                               const int32_t* negatives, int R, int d, double gamma, int64_t* n_targets = nullptr) {
    return target_negative_loss<T>(dh, dE, hidden, table, targets, negatives, R, d, n_targets,
                                   [&](double* row_loss, T* coef, double count) {
                                     return BprGammaRow<T>{dh, row_loss, coef, hidden, table, targets, negatives,
                                                           d, gamma, count};
                                   });
  }
  template <class T>
  static double inbatch_bpr_loss(T* dS, const T* S, int R, int C, int row0, double gamma) {
    if (R == 0) return 0.0;
    const double inv = 1.0 / (double(R) * double(C));
    double* row_loss = scratch<double>(1, R);
    X::for_each(R, InBatchBprRow<T>{dS, row_loss, S, C, row0, T(gamma), inv});
    return reduce(R, SumTerm<double>{row_loss}) * inv;
  }

  // ---- Atten-Mixer, bce_multi, the weighted pairwise loss ----
  static void intent_slots(int32_t* idx, const uint8_t* valid, int Bn, int L, int K) {
    X::for_each(Bn, IntentSlots{idx, valid, L, K});
  }
  template <class T>
  static void dropout_by_id_forward(T* y, T* mask, const T* x, const int32_t* ids, int Bn, int L, int n, double p,
                                    DropoutKey key, uint32_t site) {
    const int64_t R = int64_t(Bn) * L;
    if (p <= 0) return X::for_each(R * n, DropoutOff<T>{y, mask, x});
    const int blocks = (n + 3) / 4;
    X::for_each(R * blocks, DropoutByIdBlock<T>{y, mask, x, ids, L, n, blocks, float(p), T(1.0 / (1.0 - p)), key, site});
  }
  template <class T>
  static void l2_normalise_axis_backward(T* dx, const T* g, const T* y, const T* norm, int outer, int n, int inner,
                                         double eps) {
    X::for_each(int64_t(outer) * inner, L2NormaliseAxisGrad<T>{dx, g, y, norm, n, inner, eps});
  }
  template <class T>
  static void mixer_attention_forward(T* out, T* G, T* A1, T* A2, T* A3, T* drop, const T* q, const T* k, const T* v,
                                      const uint8_t* key_valid, MixerAttentionShape s, HeadSplit split, double lp,
                                      double p_drop, DropoutKey key, uint32_t site) {
    X::for_each(int64_t(s.B) * s.H,
                MixerForwardHead<T>{out, G, A1, A2, A3, drop, q, k, v, key_valid, s, split, lp, p_drop, key, site});
  }
  template <class T>
  static void mixer_attention_backward(T* dq, T* dk, T* dv, T* scratch_p, const T* g, const T* G, const T* A1,
                                       const T* A2, const T* A3, const T* drop, const T* q, const T* k, const T* v,
                                       const uint8_t* key_valid, MixerAttentionShape s, HeadSplit split, double lp) {
    T* dA = scratch<T>(1, int64_t(s.B) * s.H * 2 * s.L);
    X::for_each(int64_t(s.B) * s.H, MixerBackwardHead<T>{dq, dk, dv, scratch_p, dA, g, G, A1, A2, A3, drop, q, k, v,
                                                         key_valid, s, split, lp});
  }
  template <class T>
  static double bce_multi_loss(T* dh, T* dE, const T* hidden, const T* table, const int32_t* targets,
                               const int32_t* negatives, int R, int n_neg, int d) {
    if (R == 0) return 0.0;
    const double inv_pos = 1.0 / double(R), inv_neg = n_neg > 0 ? 1.0 / (double(R) * n_neg) : 0.0;
    double* pos = scratch<double>(1, 2 * int64_t(R));
    double* neg = pos + R;
    T* coef = scratch<T>(2, int64_t(R) * (n_neg + 1));
    X::for_each(R, BceMultiRow<T>{dh, pos, neg, coef, hidden, table, targets, negatives, n_neg, d, inv_pos, inv_neg});
    if (dE) X::for_each(d, BceMultiTableGrad<T>{dE, coef, hidden, targets, negatives, R, n_neg, d});
    return reduce(R, SumTerm<double>{pos}) * inv_pos + reduce(R, SumTerm<double>{neg}) * inv_neg;
  }
  template <class T>
  static double weighted_pairwise_loss(T* dS, const T* S, const int32_t* items, const int32_t* groups,
                                       const T* weights, int R, int C, int row0, double gamma, double* weight_sum) {
    if (weight_sum) *weight_sum = 0;
    if (R == 0) return 0.0;
    int32_t* n_neg = scratch<int32_t>(1, R);
    double* w = scratch<double>(2, R);
    X::for_each(R, PairwiseCount<T>{n_neg, w, items, groups, weights, C, row0});
    const double W = reduce(R, SumTerm<double>{w});
    if (weight_sum) *weight_sum = W;
    if (!(W > 0)) {
      fill<T>(dS, int64_t(R) * C, 0.0);
      return 0.0;
    }
    double* row_loss = scratch<double>(3, R);
    X::for_each(R, PairwiseRow<T>{dS, row_loss, S, items, groups, weights, n_neg, C, row0, T(gamma), W});
    return reduce(R, SumTerm<double>{row_loss});
  }

  template <class T>
  static void fill(T* x, int64_t n, double v) { X::for_each(n, Fill<T>{x, T(v)}); }
  template <class T>
  static void add(T* y, const T* a, const T* b, int64_t n) { X::for_each(n, Add<T>{y, a, b}); }
  static void nonzero_mask(uint8_t* valid, const int32_t* ids, int64_t n) {
    X::for_each(n, NonzeroMask{valid, ids});
  }
  template <class T>
  static void mask_rows(T* x, const uint8_t* valid, int R, int d) {
    X::for_each(int64_t(R) * d, MaskRows<T>{x, valid, d});
  }
  template <class T>
  static void gather_rows(T* out, const T* table, const int32_t* ids, int R, int d, double scale = 1.0) {
    X::for_each(int64_t(R) * d, GatherRows<T>{out, table, ids, d, T(scale), scale == 1.0});
  }
  template <class T>
  static void scatter_add_rows(T* dtable, const T* g, const int32_t* ids, int R, int d, bool skip_pad,
                               double scale = 1.0) {
    X::for_each(d, ScatterAddRows<T>{dtable, g, ids, R, d, skip_pad, T(scale)});
  }
  template <class T>
  static void add_position(T* x, const T* pos, int Bn, int L, int d) {
    X::for_each(int64_t(Bn) * L * d, AddPosition<T>{x, pos, L, d});
  }
  template <class T>
  static void position_grad(T* dpos, const T* g, int Bn, int L, int d) {
    X::for_each(int64_t(L) * d, PositionGrad<T>{dpos, g, Bn, int64_t(L) * d});
  }
  template <class T>
  static void add_bias(T* y, int ldy, const T* b, int R, int n) {
    X::for_each(int64_t(R) * n, AddBias<T>{y, ldy, b, n});
  }
  template <class T>
  static void bias_grad(T* db, const T* g, int ldg, int R, int n) {
    X::for_each(n, BiasGrad<T>{db, g, ldg, R});
  }
  template <class T>
  static void layer_norm_forward(T* y, T* xhat, T* rstd, const T* x, const T* gamma, const T* beta,
                                 int R, int d, double eps) {
    X::for_each(R, LayerNormRow<T>{y, xhat, rstd, x, gamma, beta, d, eps});
  }
  template <class T>
  static void layer_norm_backward(T* dx, T* dgamma, T* dbeta, const T* g, const T* xhat,
                                  const T* rstd, const T* gamma, int R, int d,
                                  bool accumulate_dx = false) {
    X::for_each(d, LayerNormParamGrad<T>{dgamma, dbeta, g, xhat, R, d});
    X::for_each(R, LayerNormBackwardRow<T>{dx, g, xhat, rstd, gamma, d, accumulate_dx});
  }
  template <class T>
  static void dropout_forward(T* y, T* mask, const T* x, int R, int n, double p, DropoutKey key,
                              uint32_t site, uint32_t row0 = 0) {
    if (p <= 0) return X::for_each(int64_t(R) * n, DropoutOff<T>{y, mask, x});
    const int blocks = (n + 3) / 4;
    X::for_each(int64_t(R) * blocks, DropoutBlock<T>{y, mask, x, n, blocks, float(p),
                                                     T(1.0 / (1.0 - p)), key, site, row0});
  }
  template <class T>
  static void dropout_backward(T* dx, const T* g, const T* mask, int64_t n) {
    X::for_each(n, Mul<T>{dx, g, mask, false});
  }
  template <class T>
  static void mul(T* y, const T* a, const T* b, int64_t n, bool accumulate = false) {
    X::for_each(n, Mul<T>{y, a, b, accumulate});
  }
  template <class T>
  static void gelu_forward(T* y, const T* x, int64_t n) { X::for_each(n, Gelu<T>{y, x}); }
  template <class T>
  static void gelu_backward(T* dx, const T* g, const T* x, int64_t n) { X::for_each(n, GeluGrad<T>{dx, g, x}); }
  template <class T>
  static void relu_forward(T* y, const T* x, int64_t n) { X::for_each(n, Relu<T>{y, x}); }
  template <class T>
  static void relu_backward(T* dx, const T* g, const T* y, int64_t n) { X::for_each(n, ReluGrad<T>{dx, g, y}); }

  // Attention: the CPU's per-sequence GEMMs, batched over the sequences one head at a time
  // (for a fixed head, every operand of sequence b sits a fixed stride after sequence b - 1).
  template <class T>
  static void attention_forward(T* out, T* probs, T* dropped, T* drop_mask, const T* q, int ldq,
                                const T* k, int ldk, const T* v, int ldv, const uint8_t* key_valid,
                                AttentionShape s, AttentionMask mask, double p_drop, DropoutKey key,
                                uint32_t site) {
    const int B = s.B, L = s.L, H = s.H, dh = s.dh, d = s.d();
    if (B == 0) return;
    const T scale = T(1.0 / sqrt(double(dh)));
    const long LL = long(L) * L, HLL = long(H) * LL;
    for (int h = 0; h < H; ++h)
      X::template gemm_strided_batched<T>(false, true, L, L, dh, scale, q + h * dh, ldq, long(L) * ldq,
                                          k + h * dh, ldk, long(L) * ldk, T(0), probs + h * LL, L, HLL, B);
    X::for_each(int64_t(B) * H * L, AttentionSoftmaxRow<T>{probs, key_valid, H, L, mask});
    const T* used = probs;
    if (p_drop > 0) {
      // Row (b, h, i) is the CPU's row h L + i of sequence b's call, global row
      // (first_seq + b) H L + h L + i = first_seq H L + (b H L + h L + i).
      dropout_forward<T>(dropped, drop_mask, probs, B * H * L, L, p_drop, key, site,
                         key.first_seq * uint32_t(H * L));
      used = dropped;
    }
    for (int h = 0; h < H; ++h)
      X::template gemm_strided_batched<T>(false, false, L, dh, L, T(1), used + h * LL, L, HLL,
                                          v + h * dh, ldv, long(L) * ldv, T(0), out + h * dh, d,
                                          long(L) * d, B);
  }
  template <class T>
  static void attention_backward(T* dq, int lddq, T* dk, int lddk, T* dv, int lddv, T* scratch_s,
                                 const T* dout, const T* probs, const T* dropped, const T* drop_mask,
                                 const T* q, int ldq, const T* k, int ldk, const T* v, int ldv,
                                 AttentionShape s, double p_drop) {
    const int B = s.B, L = s.L, H = s.H, dh = s.dh, d = s.d();
    if (B == 0) return;
    const T scale = T(1.0 / sqrt(double(dh)));
    const long LL = long(L) * L, HLL = long(H) * LL;
    const T* used = p_drop > 0 ? dropped : probs;
    for (int h = 0; h < H; ++h) {
      // dV_h = Pd_h^T dO_h ; dPd_h = dO_h V_h^T
      X::template gemm_strided_batched<T>(true, false, L, dh, L, T(1), used + h * LL, L, HLL,
                                          dout + h * dh, d, long(L) * d, T(0), dv + h * dh, lddv,
                                          long(L) * lddv, B);
      X::template gemm_strided_batched<T>(false, true, L, L, dh, T(1), dout + h * dh, d, long(L) * d,
                                          v + h * dh, ldv, long(L) * ldv, T(0), scratch_s + h * LL, L,
                                          HLL, B);
    }
    X::for_each(int64_t(B) * H * L,
                AttentionSoftmaxGradRow<T>{scratch_s, probs, p_drop > 0 ? drop_mask : nullptr, L, scale});
    for (int h = 0; h < H; ++h) {
      // dQ_h = dS_h K_h ; dK_h = dS_h^T Q_h (scale folded into dS)
      X::template gemm_strided_batched<T>(false, false, L, dh, L, T(1), scratch_s + h * LL, L, HLL,
                                          k + h * dh, ldk, long(L) * ldk, T(0), dq + h * dh, lddq,
                                          long(L) * lddq, B);
      X::template gemm_strided_batched<T>(true, false, L, dh, L, T(1), scratch_s + h * LL, L, HLL,
                                          q + h * dh, ldq, long(L) * ldq, T(0), dk + h * dh, lddk,
                                          long(L) * lddk, B);
    }
  }

  template <class T>
  static void masked_softmax_forward(T* p, const T* s, const uint8_t* mask, int R, int n) {
    X::for_each(R, MaskedSoftmaxRow<T>{p, s, mask, n});
  }
  template <class T>
  static void masked_softmax_backward(T* ds, const T* g, const T* p, int R, int n) {
    X::for_each(R, MaskedSoftmaxGradRow<T>{ds, g, p, n});
  }
  template <class T>
  static void l2_normalise_forward(T* y, T* norm, const T* x, int R, int d, double eps) {
    X::for_each(R, L2NormaliseRow<T>{y, norm, x, d, eps});
  }
  template <class T>
  static void l2_normalise_backward(T* dx, const T* g, const T* y, const T* norm, int R, int d, double eps) {
    X::for_each(R, L2NormaliseGradRow<T>{dx, g, y, norm, d, eps});
  }
  template <class T>
  static void l2_normalise_axis_forward(T* y, T* norm, const T* x, int outer, int n, int inner, double eps) {
    X::for_each(int64_t(outer) * inner, L2NormaliseAxis<T>{y, norm, x, n, inner, eps});
  }

  template <class T>
  static double dot(const T* x, const T* y, int64_t n) { return reduce(n, DotTerm<T>{x, y}); }
  template <class T>
  static double sum(const T* x, int64_t n) { return reduce(n, SumTerm<T>{x}); }
  template <class T>
  static double sum_squares(const T* x, int64_t n) { return reduce(n, SquareTerm<T>{x}); }
  template <class T>
  static void scale(T* x, int64_t n, double c) { X::for_each(n, Scale<T>{x, c}); }
  template <class T>
  static void adam_step(T* p, const T* g, T* m, T* v, int64_t n, const AdamStep& s) {
    const double bc1 = 1.0 - pow(s.beta1, double(s.t));
    const double bc2 = 1.0 - pow(s.beta2, double(s.t));
    X::for_each(n, AdamElement<T>{p, g, m, v, T(s.beta1), T(s.beta2), T(s.lr), T(s.weight_decay),
                                  T(s.lr / bc1), T(1.0 / sqrt(bc2)), T(s.eps), s.decoupled});
  }

  // Full-softmax CE (backend/ops.hpp): the rows with a target are listed on the device, then
  // processed `chunk` at a time through the workspace: gather h, z = h E^T, the row kernel,
  // dh = dz E scattered back, dE += dz^T h. wh, wz, wdh: the workspace's (chunk, d), (chunk, N),
  // (chunk, d) buffers. Scratch slots: 1 the row list, 2 the row losses, 3 the running sum.
  template <class T>
  static double softmax_cross_entropy(T* dh, T* dE, const T* hidden, const T* table,
                                      const int32_t* targets, int R, int d, int N, int chunk, T* wh,
                                      T* wz, T* wdh, int64_t* n_targets = nullptr,
                                      const T* bias = nullptr, T* dbias = nullptr) {
    if (n_targets) *n_targets = 0;
    if (dh) fill<T>(dh, int64_t(R) * d, 0.0);
    if (R == 0) return 0.0;
    int32_t* rows = scratch<int32_t>(1, int64_t(R) + 1);
    X::for_each(1, CompactTargets{rows, targets, R});
    int32_t count = 0;
    X::template to_host<int32_t>(&count, rows + R, 1);
    if (n_targets) *n_targets = count;
    if (count == 0) return 0.0;
    const T inv_count = T(1) / T(count);
    double* row_loss = scratch<double>(2, chunk);
    double* total = scratch<double>(3, 1);
    X::for_each(1, Fill<double>{total, 0.0});
    for (int start = 0; start < count; start += chunk) {
      const int C = count - start < chunk ? count - start : chunk;
      const int32_t* rs = rows + start;
      X::for_each(int64_t(C) * d, GatherListedRows<T>{wh, hidden, rs, d});
      X::template gemm<T>(false, true, C, N, d, T(1), wh, d, table, d, T(0), wz, N);
      X::for_each(C, CrossEntropyRow<T>{wz, row_loss, targets, rs, bias, N, inv_count});
      X::for_each(1, ListedSum{total, row_loss, C});
      if (dbias) X::for_each(N, ColumnSumsAdd<T>{dbias, wz, C, N});
      if (dh) {
        X::template gemm<T>(false, false, C, d, N, T(1), wz, N, table, d, T(0), wdh, d);
        X::for_each(int64_t(C) * d, ScatterListedRows<T>{dh, wdh, rs, d});
      }
      if (dE) X::template gemm<T>(true, false, N, d, C, T(1), wz, N, wh, d, T(1), dE, d);
    }
    double loss = 0;
    X::template to_host<double>(&loss, total, 1);
    return loss / count;
  }

  template <class T>
  static double bpr_loss(T* dh, T* dE, const T* hidden, const T* table, const int32_t* targets,
                         const int32_t* negatives, int R, int d, int64_t* n_targets = nullptr) {
    return target_negative_loss<T>(dh, dE, hidden, table, targets, negatives, R, d, n_targets,
                                   [&](double* row_loss, T* coef, double count) {
                                     return BprRow<T>{dh, row_loss, coef, hidden, table, targets, negatives, d, count};
                                   });
  }

  // A loss over (target, negative) pairs of rows (sampled BPR, RecBole's BPR): the rows with a
  // target are counted, make_row(row_loss, coef, count) gives the row kernel (loss term, the
  // coefficient of h in dE, the dh row), then dE column by column, rows in order.
  template <class T, class MakeRow>
  static double target_negative_loss(T* dh, T* dE, const T* hidden, const T* table, const int32_t* targets,
                                     const int32_t* negatives, int R, int d, int64_t* n_targets, MakeRow make_row) {
    if (n_targets) *n_targets = 0;
    if (R == 0) return 0.0;
    double* cnt = scratch<double>(3, 1);
    X::for_each(1, CountNonzero{cnt, targets, R});
    double count = 0;
    X::template to_host<double>(&count, cnt, 1);
    if (n_targets) *n_targets = int64_t(count);
    if (count == 0) {
      if (dh) fill<T>(dh, int64_t(R) * d, 0.0);
      return 0.0;
    }
    double* row_loss = scratch<double>(1, R);
    T* coef = scratch<T>(2, R);
    X::for_each(R, make_row(row_loss, coef, count));
    if (dE) X::for_each(d, BprTableGrad<T>{dE, coef, hidden, targets, negatives, R, d});
    return reduce(R, SumTerm<double>{row_loss}) / count;
  }
};

}  // namespace recdistill::cuda::kern
