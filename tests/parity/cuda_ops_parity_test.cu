// tests/parity/cuda_ops_parity_test.cu: every op of the CUDA backend (backend/cuda/kernels.hpp)
// on the device against the same kernels run on the host (tests/cuda_host/host_exec.hpp).
//
// The host run is itself checked against cpu::Backend, the reference, by
// tests/cuda_host/cuda_kernels_host_test.cpp on every machine; this test adds what only a GPU
// can show: the launches, the grid-stride loops, device math (expf, erff, exp) and cuBLAS.
// One scenario function calls every op; it runs once with device memory and once with host
// memory, and each named output is compared. Without a device the comparison reports SKIPPED
// (not passed), but the scenario is still instantiated for the device, so every kernel of the
// backend compiles for sm_90 in CI.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <deque>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "../cuda_host/host_exec.hpp"
#include "../cuda_host/random_inputs.hpp"
#include "../cuda_host/sasrec_run.hpp"
#include "recdistill/backend/cuda/backend.cuh"

namespace recdistill::parity {

// Defined in cpu_reference.cpp (cpu::Backend's GEMMs, compiled by the host compiler).
#define RD_PARITY_DECLARE(T)                                                                  \
  void ref_gemm(bool ta, bool tb, int M, int N, int K, T alpha, const T* A, int lda,          \
                const T* B, int ldb, T beta, T* C, int ldc);                                  \
  void ref_gemm_strided_batched(bool ta, bool tb, int M, int N, int K, T alpha, const T* A,   \
                                int lda, long sa, const T* B, int ldb, long sb, T beta, T* C, \
                                int ldc, long sc, int count);
RD_PARITY_DECLARE(float)
RD_PARITY_DECLARE(double)
#undef RD_PARITY_DECLARE
data::Split ref_training_split();
std::pair<std::vector<float>, TrainResult> ref_train_small_sasrec(const data::Split& split);

namespace {

struct RefGemm {
  template <class T>
  static void gemm(bool ta, bool tb, int M, int N, int K, T alpha, const T* A, int lda, const T* B,
                   int ldb, T beta, T* C, int ldc) {
    ref_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
  template <class T>
  static void gemm_strided_batched(bool ta, bool tb, int M, int N, int K, T alpha, const T* A, int lda,
                                   long sa, const T* B, int ldb, long sb, T beta, T* C, int ldc, long sc,
                                   int count) {
    ref_gemm_strided_batched(ta, tb, M, N, K, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, count);
  }
};

// Where a scenario's tensors live: the device (DeviceOps) or the host (the same kernels, looped).
struct DeviceSide {
  using Ops = cuda::DeviceOps;
  std::deque<cuda::DeviceBuffer<unsigned char>> keep;
  template <class T>
  T* put(const std::vector<T>& v) {
    keep.emplace_back(v.size() * sizeof(T) + 1);
    T* p = reinterpret_cast<T*>(keep.back().data());
    cuda::Backend::to_device<T>(p, v.data(), v.size());
    return p;
  }
  template <class T>
  std::vector<double> get(const T* p, size_t n) {
    std::vector<T> h(n);
    cuda::Backend::to_host<T>(h.data(), p, n);
    return std::vector<double>(h.begin(), h.end());
  }
};
struct HostSide {
  using Ops = cuda::kern::Ops<cudahost::HostExec<RefGemm>>;
  std::deque<std::vector<unsigned char>> keep;
  template <class T>
  T* put(const std::vector<T>& v) {
    keep.emplace_back(v.size() * sizeof(T) + 1);
    T* p = reinterpret_cast<T*>(keep.back().data());
    std::memcpy(p, v.data(), v.size() * sizeof(T));
    return p;
  }
  template <class T>
  std::vector<double> get(const T* p, size_t n) {
    return std::vector<double>(p, p + n);
  }
};

using cudahost::ids;
using cudahost::rnd;

using Outputs = std::map<std::string, std::vector<double>>;

// Every op once, on shapes larger than one block (the reductions' partials run), one fill larger
// than a launch's grid (the grid-stride loop steps), and small enough for a quick host run.
template <class T, class Side>
Outputs scenario() {
  using O = typename Side::Ops;
  Side s;
  Outputs out;
  const int R = 700, d = 24, N = 301;
  const auto id = ids(size_t(R), N, 1, 0.2);
  const int32_t* did = s.put(id);
  const auto a = rnd<T>(size_t(R) * d, 2), b = rnd<T>(size_t(R) * d, 3);
  const T* da = s.put(a);
  const T* db = s.put(b);
  T* x = s.put(std::vector<T>(size_t(R) * d));
  const int64_t Rd = int64_t(R) * d;

  O::template fill<T>(x, Rd, 0.5);
  O::template add<T>(x, da, db, Rd);
  O::template mul<T>(x, da, x, Rd, true);
  uint8_t* valid = s.put(std::vector<uint8_t>(size_t(R)));
  O::nonzero_mask(valid, did, R);
  out["nonzero_mask"] = s.get(valid, size_t(R));
  O::template mask_rows<T>(x, valid, R, d);
  out["add_mul_mask"] = s.get(x, size_t(Rd));

  const T* table = s.put(rnd<T>(size_t(N) * d, 4));
  O::template gather_rows<T>(x, table, did, R, d, 1.0);
  out["gather"] = s.get(x, size_t(Rd));
  O::template gather_rows<T>(x, table, did, R, d, 8.0);
  out["gather_scaled"] = s.get(x, size_t(Rd));
  T* dtable = s.put(rnd<T>(size_t(N) * d, 5));
  O::template scatter_add_rows<T>(dtable, da, did, R, d, true, 1.0);
  O::template scatter_add_rows<T>(dtable, db, did, R, d, false, 0.5);
  out["scatter_add"] = s.get(dtable, size_t(N) * d);

  const int Bn = 14, L = 50;  // Bn * L = R
  const T* pos = s.put(rnd<T>(size_t(L) * d, 6));
  T* y = s.put(a);
  O::template add_position<T>(y, pos, Bn, L, d);
  out["add_position"] = s.get(y, size_t(Rd));
  T* dpos = s.put(rnd<T>(size_t(L) * d, 7));
  O::template position_grad<T>(dpos, db, Bn, L, d);
  out["position_grad"] = s.get(dpos, size_t(L) * d);
  const T* bias = s.put(rnd<T>(size_t(d - 4), 8));
  O::template add_bias<T>(y, d, bias, R, d - 4);
  out["add_bias"] = s.get(y, size_t(Rd));
  T* dbias = s.put(rnd<T>(size_t(d - 4), 9));
  O::template bias_grad<T>(dbias, y, d, R, d - 4);
  out["bias_grad"] = s.get(dbias, size_t(d - 4));
  T* scores = s.put(std::vector<T>(size_t(R) * (N + 3)));
  O::template score_rows<T>(scores, N + 3, da, R, table, N, d);
  out["score_rows"] = s.get(scores, size_t(R) * (N + 3));

  const T* gamma = s.put(rnd<T>(size_t(d), 10));
  const T* beta = s.put(rnd<T>(size_t(d), 11));
  T* ln = s.put(std::vector<T>(size_t(Rd)));
  T* xhat = s.put(std::vector<T>(size_t(Rd)));
  T* rstd = s.put(std::vector<T>(size_t(R)));
  O::template layer_norm_forward<T>(ln, xhat, rstd, da, gamma, beta, R, d, 1e-12);
  out["layer_norm"] = s.get(ln, size_t(Rd));
  out["layer_norm_rstd"] = s.get(rstd, size_t(R));
  T* dx = s.put(a);
  T* dgamma = s.put(std::vector<T>(size_t(d)));
  T* dbeta = s.put(std::vector<T>(size_t(d)));
  O::template layer_norm_backward<T>(dx, dgamma, dbeta, db, xhat, rstd, gamma, R, d, true);
  out["layer_norm_dx"] = s.get(dx, size_t(Rd));
  out["layer_norm_dgamma"] = s.get(dgamma, size_t(d));
  out["layer_norm_dbeta"] = s.get(dbeta, size_t(d));

  T* mask = s.put(std::vector<T>(size_t(Rd)));
  const DropoutKey key{2020, 4, 9, 3};
  O::template dropout_forward<T>(y, mask, da, R, d - 1, 0.3, key, 5u, 11u);
  out["dropout_mask"] = s.get(mask, size_t(R) * (d - 1));
  out["dropout_y"] = s.get(y, size_t(R) * (d - 1));
  O::template dropout_backward<T>(y, db, mask, int64_t(R) * (d - 1));
  out["dropout_backward"] = s.get(y, size_t(R) * (d - 1));

  O::template gelu_forward<T>(y, da, Rd);
  out["gelu"] = s.get(y, size_t(Rd));
  O::template gelu_backward<T>(y, db, da, Rd);
  out["gelu_backward"] = s.get(y, size_t(Rd));
  O::template relu_forward<T>(y, da, Rd);
  O::template relu_backward<T>(y, db, y, Rd);
  out["relu"] = s.get(y, size_t(Rd));

  // Attention with packed Q | K | V, as layers/attention.hpp, every mask, with dropout.
  const AttentionShape sh{6, 12, 2, 4};
  const int ad = sh.d(), ld = 3 * ad, BL = sh.B * sh.L;
  const T* qkv = s.put(rnd<T>(size_t(BL) * ld, 12));
  const T* dout = s.put(rnd<T>(size_t(BL) * ad, 13));
  std::vector<uint8_t> kv(static_cast<size_t>(BL));
  for (int i = 0; i < BL; ++i) kv[size_t(i)] = (i % sh.L) >= (i / sh.L) % 4;  // left padding
  const uint8_t* key_valid = s.put(kv);
  const size_t PS = size_t(sh.probs_size());
  for (AttentionMask m : {AttentionMask::additive_key_padding, AttentionMask::causal, AttentionMask::bidirectional}) {
    const std::string tag = "attention" + std::to_string(int(m));
    T* ao = s.put(std::vector<T>(size_t(BL) * ad));
    T* P = s.put(std::vector<T>(PS));
    T* Dp = s.put(std::vector<T>(PS));
    T* Dm = s.put(std::vector<T>(PS));
    O::template attention_forward<T>(ao, P, Dp, Dm, qkv, ld, qkv + ad, ld, qkv + 2 * ad, ld, key_valid, sh, m,
                                     0.2, key, 6u);
    out[tag + "_out"] = s.get(ao, size_t(BL) * ad);
    out[tag + "_probs"] = s.get(P, PS);
    out[tag + "_drop_mask"] = s.get(Dm, PS);
    T* g3 = s.put(std::vector<T>(size_t(BL) * ld));
    T* scr = s.put(std::vector<T>(PS));
    O::template attention_backward<T>(g3, ld, g3 + ad, ld, g3 + 2 * ad, ld, scr, dout, P, Dp, Dm, qkv, ld,
                                      qkv + ad, ld, qkv + 2 * ad, ld, sh, 0.2);
    out[tag + "_grads"] = s.get(g3, size_t(BL) * ld);
  }

  std::vector<uint8_t> smask(static_cast<size_t>(Rd));
  for (size_t i = 0; i < smask.size(); ++i) smask[i] = (i * 5 + i / d) % 4 != 0;
  const uint8_t* dsm = s.put(smask);
  O::template masked_softmax_forward<T>(y, da, dsm, R, d);
  out["masked_softmax"] = s.get(y, size_t(Rd));
  O::template masked_softmax_backward<T>(x, db, y, R, d);
  out["masked_softmax_backward"] = s.get(x, size_t(Rd));
  T* nrm = s.put(std::vector<T>(size_t(R)));
  O::template l2_normalise_forward<T>(y, nrm, da, R, d, 1e-8);
  out["l2_normalise"] = s.get(y, size_t(Rd));
  O::template l2_normalise_backward<T>(x, db, y, nrm, R, d, 1e-8);
  out["l2_normalise_backward"] = s.get(x, size_t(Rd));
  T* cn = s.put(std::vector<T>(size_t(d)));
  O::template l2_normalise_axis_forward<T>(y, cn, da, 1, R, d, 1e-12);
  out["l2_normalise_axis"] = s.get(y, size_t(Rd));

  // Whole-tensor sums, accumulated in double on both sides (compared at 1e-12 even for float).
  out["r_dot"] = {O::template dot<T>(da, db, Rd)};
  out["r_sum"] = {O::template sum<T>(da, Rd)};
  out["r_sum_squares"] = {O::template sum_squares<T>(da, Rd)};
  // More threads than one launch's grid (65,535 blocks of 256): the grid-stride loops step.
  const int64_t big_n = int64_t(65535) * 256 + 1001;
  T* big = s.put(std::vector<T>(size_t(big_n)));
  O::template fill<T>(big, big_n, 0.5);
  out["r_big_sum"] = {O::template sum<T>(big, big_n)};
  T* sc = s.put(a);
  O::template scale<T>(sc, Rd, -0.7);
  out["scale"] = s.get(sc, size_t(Rd));

  AdamStep st;
  st.lr = 1e-3;
  st.t = 5;
  st.weight_decay = 0.1;
  T* p = s.put(a);
  T* m1 = s.put(rnd<T>(size_t(Rd), 14));
  T* v1 = s.put(rnd<T>(size_t(Rd), 15, 0, 1));
  O::template adam_step<T>(p, db, m1, v1, Rd, st);
  st.decoupled = true;
  st.t = 6;
  O::template adam_step<T>(p, db, m1, v1, Rd, st);
  out["adam"] = s.get(p, size_t(Rd));

  // Losses: CE over item chunks (with and without an output bias), sampled BPR.
  const auto tg = ids(size_t(R), N, 16, 0.3), ng = ids(size_t(R), N, 17, 0.0);
  const int32_t* dtg = s.put(tg);
  const int32_t* dng = s.put(ng);
  const int chunk = 128;
  T* wh = s.put(std::vector<T>(size_t(chunk) * d));
  T* wz = s.put(std::vector<T>(size_t(chunk) * N));
  T* wdh = s.put(std::vector<T>(size_t(chunk) * d));
  T* dh = s.put(std::vector<T>(size_t(Rd)));
  T* dE = s.put(std::vector<T>(size_t(N) * d));
  const T* ob = s.put(rnd<T>(size_t(N), 18));
  T* dob = s.put(std::vector<T>(size_t(N)));
  int64_t n_ce = 0, n_bpr = 0;
  const double ce = O::template softmax_cross_entropy<T>(dh, dE, da, table, dtg, R, d, N, chunk, wh, wz, wdh,
                                                         &n_ce, ob, dob);
  out["ce"] = {ce};
  out["n_ce"] = {double(n_ce)};
  out["ce_dh"] = s.get(dh, size_t(Rd));
  out["ce_dE"] = s.get(dE, size_t(N) * d);
  out["ce_dbias"] = s.get(dob, size_t(N));
  const double bpr = O::template bpr_loss<T>(dh, dE, da, table, dtg, dng, R, d, &n_bpr);
  out["bpr"] = {bpr};
  out["n_bpr"] = {double(n_bpr)};
  out["bpr_dh"] = s.get(dh, size_t(Rd));
  out["bpr_dE"] = s.get(dE, size_t(N) * d);
  int64_t n_bg = 0;
  const double bg = O::template bpr_gamma_loss<T>(dh, dE, da, table, dtg, dng, R, d, 1e-10, &n_bg);
  out["bpr_gamma"] = {bg};
  out["n_bpr_gamma"] = {double(n_bg)};
  out["bpr_gamma_dh"] = s.get(dh, size_t(Rd));
  out["bpr_gamma_dE"] = s.get(dE, size_t(N) * d);

  // Session read-outs: Bn = 14 rows of L = 50 slots, left-aligned (the ids' pads are holes,
  // which the ops do not mind), with a gate of sigmoid and tanh.
  O::template sigmoid_forward<T>(y, da, Rd);
  O::template sigmoid_backward<T>(x, db, y, Rd);
  out["sigmoid"] = s.get(x, size_t(Rd));
  O::template tanh_forward<T>(y, da, Rd);
  O::template tanh_backward<T>(x, db, y, Rd);
  out["tanh"] = s.get(x, size_t(Rd));
  T* lw = s.put(std::vector<T>(size_t(R)));
  O::template length_weights<T>(lw, valid, Bn, L);
  out["length_weights"] = s.get(lw, size_t(R));
  int32_t* last = s.put(std::vector<int32_t>(size_t(Bn)));
  O::last_slots(last, valid, Bn, L);
  out["last_slots"] = s.get(last, size_t(Bn));
  T* sums = s.put(std::vector<T>(size_t(Bn) * d));
  O::template slot_sum<T>(sums, da, lw, Bn, L, d);
  out["slot_sum"] = s.get(sums, size_t(Bn) * d);
  T* sx = s.put(a);
  T* sw = s.put(std::vector<T>(size_t(R)));
  O::template slot_sum_backward<T>(sx, sw, sums, da, lw, Bn, L, d, true);
  O::template broadcast_slots<T>(sx, sums, Bn, L, d);
  out["slot_sum_backward"] = s.get(sx, size_t(Rd));
  out["slot_sum_dw"] = s.get(sw, size_t(R));
  T* pairs = s.put(std::vector<T>(size_t(R / 2) * 2 * d));
  O::template gather_row_pairs<T>(pairs, table, table, did, R / 2, d);
  out["gather_row_pairs"] = s.get(pairs, size_t(R / 2) * 2 * d);
  T* pa = s.put(rnd<T>(size_t(N) * d, 19));
  O::template scatter_row_pairs<T>(pa, pa, pairs, did, R / 2, d, true, false);
  out["scatter_row_pairs"] = s.get(pa, size_t(N) * d);
  const int C = 2 * Bn;
  const T* S = s.put(rnd<T>(size_t(Bn) * C, 20, -20, 20));
  T* dS = s.put(std::vector<T>(size_t(Bn) * C));
  out["inbatch_bpr"] = {O::template inbatch_bpr_loss<T>(dS, S, Bn, C, 5, 1e-10)};
  out["inbatch_bpr_dS"] = s.get(dS, size_t(Bn) * C);

  // Atten-Mixer's read-out (both head splits, LP pooling, dropout), per-id dropout, intent
  // slots, axis normalisation backward; bce_multi; the weighted pairwise loss.
  int32_t* islots = s.put(std::vector<int32_t>(size_t(Bn) * 4));
  O::intent_slots(islots, valid, Bn, L, 4);
  out["n_intent_slots"] = s.get(islots, size_t(Bn) * 4);
  T* bid = s.put(std::vector<T>(size_t(Rd)));
  T* bmask = s.put(std::vector<T>(size_t(Rd)));
  O::template dropout_by_id_forward<T>(bid, bmask, da, did, Bn, L, d, 0.3, key, 8u);
  out["id_drop_mask"] = s.get(bmask, size_t(Rd));
  out["dropout_by_id"] = s.get(bid, size_t(Rd));
  T* anorm = s.put(std::vector<T>(size_t(R)));
  O::template l2_normalise_axis_forward<T>(y, anorm, da, R, d, 1, 1e-12);
  O::template l2_normalise_axis_backward<T>(x, db, y, anorm, R, d, 1, 1e-12);
  out["l2_normalise_axis_backward"] = s.get(x, size_t(Rd));
  const MixerAttentionShape ms{Bn, 4, L, 4, d / 4};
  for (HeadSplit split : {HeadSplit::official_reshape, HeadSplit::standard}) {
    const std::string tag = std::string("mixer") + (split == HeadSplit::standard ? "_standard" : "_official");
    const double lp = split == HeadSplit::standard ? 4.0 : 1.0;
    const size_t KLs = size_t(Bn) * 4 * 4 * L, Ls = size_t(Bn) * 4 * L;
    const T* mq = s.put(rnd<T>(size_t(Bn) * 4 * d, 21));
    T* mo = s.put(std::vector<T>(size_t(Bn) * d));
    T* G = s.put(std::vector<T>(KLs));
    T* A1 = s.put(std::vector<T>(KLs));
    T* A2 = s.put(std::vector<T>(Ls));
    T* A3 = s.put(std::vector<T>(Ls));
    T* Dr = s.put(std::vector<T>(Ls));
    O::template mixer_attention_forward<T>(mo, G, A1, A2, A3, Dr, mq, da, db, valid, ms, split, lp, 0.3, key, 7u);
    out[tag + "_out"] = s.get(mo, size_t(Bn) * d);
    out[tag + "_A3"] = s.get(A3, Ls);
    out[tag + "_drop_mask"] = s.get(Dr, Ls);
    T* dq = s.put(std::vector<T>(size_t(Bn) * 4 * d));
    T* dkk = s.put(std::vector<T>(size_t(Rd)));
    T* dvv = s.put(std::vector<T>(size_t(Rd)));
    T* scp = s.put(std::vector<T>(KLs));
    O::template mixer_attention_backward<T>(dq, dkk, dvv, scp, sums, G, A1, A2, A3, Dr, mq, da, db, valid, ms, split, lp);
    out[tag + "_dq"] = s.get(dq, size_t(Bn) * 4 * d);
    out[tag + "_dk"] = s.get(dkk, size_t(Rd));
    out[tag + "_dv"] = s.get(dvv, size_t(Rd));
  }
  const auto bneg = ids(size_t(R) * 3, N, 22, 0.0);
  const double bce = O::template bce_multi_loss<T>(dh, dE, da, table, dtg, s.put(bneg), R, 3, d);
  out["bce_multi"] = {bce};
  out["bce_multi_dh"] = s.get(dh, size_t(Rd));
  out["bce_multi_dE"] = s.get(dE, size_t(N) * d);
  std::vector<int32_t> groups(static_cast<size_t>(C));
  for (int j = 0; j < C; ++j) groups[size_t(j)] = j / 3;
  const int32_t* pitems = s.put(ids(size_t(C), 6, 23, 0.0));
  double W = 0;
  const double wp = O::template weighted_pairwise_loss<T>(dS, S, pitems, s.put(groups), s.put(rnd<T>(size_t(C), 24, 0.1, 2)),
                                                          Bn, C, 5, 1e-10, &W);
  out["weighted_pairwise"] = {wp};
  out["r_weight_sum"] = {W};
  out["weighted_pairwise_dS"] = s.get(dS, size_t(Bn) * C);

  // Ranking (exact): score rows with many ties, each exclusion rule and tie rule, top-K lists
  // short and beyond 64, on the one-GEMM path and the chunked path (9 cases, a part block).
  const int nc = 9, NI = 230, CH = 64;
  std::mt19937_64 g(90);
  std::uniform_int_distribution<int> item(1, NI - 1), level(0, 40);
  std::vector<T> F(size_t(nc) * NI);
  for (auto& v : F) v = T(level(g)) / T(8);
  std::vector<std::vector<int32_t>> hist(nc), seen(nc);
  std::vector<eval::Case> cases(static_cast<size_t>(nc));
  for (int i = 0; i < nc; ++i) {
    for (int k = 0; k < 3 + i; ++k) hist[size_t(i)].push_back(item(g));
    for (int k = 0; k < i % 4; ++k) seen[size_t(i)].push_back(item(g));
    cases[size_t(i)] = eval::Case{hist[size_t(i)].data(), hist[size_t(i)].size(), i == 2 ? hist[2][0] : item(g), i,
                                  seen[size_t(i)].data(), seen[size_t(i)].size()};
  }
  for (eval::Exclude ex : {eval::Exclude::none, eval::Exclude::history, eval::Exclude::seen, eval::Exclude::listed})
    for (eval::Ties ties : {eval::Ties::against_model, eval::Ties::index})
      for (int K : {0, 5, 70})
        for (bool chunked : {false, true}) {
          const std::string tag = "rank_" + std::to_string(int(ex)) + std::to_string(int(ties)) + "_" +
                                  std::to_string(K) + (chunked ? "_chunked" : "_rows");
          std::vector<int64_t> ranks(size_t(nc), -1);
          std::vector<int32_t> top_items(size_t(nc) * size_t(K) + 1, -1);
          std::vector<T> top_scores(size_t(nc) * size_t(K) + 1, T(-1));
          eval::RankBlock<T> b;
          b.cases = cases.data();
          b.o.exclude = ex;
          b.o.ties = ties;
          b.want_ranks = !(K == 70 && ex == eval::Exclude::listed);  // recommend's case: top-K only
          b.K = K;
          b.ranks = ranks.data();
          b.top_items = top_items.data();
          b.top_scores = top_scores.data();
          if (!chunked) {
            O::template rank_rows<T>(b, s.put(F), NI, size_t(nc), NI);
          } else {
            const T never = std::numeric_limits<T>::infinity();  // scores the ops must not read
            std::vector<T> ts(size_t(nc) * CH, never);
            for (int i = 0; i < nc; ++i) ts[size_t(i) * CH + size_t(i)] = F[size_t(i) * NI + size_t(cases[size_t(i)].target)];
            O::template rank_targets<T>(b, s.put(ts), CH, size_t(nc));
            for (int c0 = 0; c0 < NI; c0 += CH) {
              const int w = std::min(CH, NI - c0);
              std::vector<T> chunk(size_t(nc) * CH, never);
              for (int i = 0; i < nc; ++i)
                for (int t = 0; t < w; ++t) chunk[size_t(i) * CH + size_t(t)] = F[size_t(i) * NI + size_t(c0 + t)];
              O::template rank_chunk<T>(b, s.put(chunk), CH, size_t(nc), c0, w, c0 + CH >= NI);
            }
          }
          out[tag + "_ranks"] = std::vector<double>(ranks.begin(), ranks.end());
          out[tag + "_items"] = std::vector<double>(top_items.begin(), top_items.end());
          out[tag + "_scores"] = std::vector<double>(top_scores.begin(), top_scores.end());
        }
  return out;
}

// Exact: masks and counts. Otherwise max |gpu - host| / max(1, max |host|) below the tolerance:
// device expf/erff/exp are within a few ulp of libm, and cuBLAS sums in its own order.
bool exact(const std::string& name) {
  return name == "nonzero_mask" || name == "dropout_mask" || name == "last_slots" || name.rfind("n_", 0) == 0 ||
         name.rfind("rank_", 0) == 0 || name.find("_drop_mask") != std::string::npos;
}

template <class T>
class CudaOpsParity : public ::testing::Test {};
using Scalars = ::testing::Types<float, double>;
TYPED_TEST_SUITE(CudaOpsParity, Scalars);

TYPED_TEST(CudaOpsParity, EveryOpOnTheDeviceEqualsItsHostRun) {
  using T = TypeParam;
  // Instantiated for the device on every machine, so the kernels compile in CI.
  auto device_run = &scenario<T, DeviceSide>;
  if (!cuda::device_available())
    GTEST_SKIP() << "no CUDA device present: CPU-vs-GPU parity not checked";
  const Outputs gpu = device_run();
  const Outputs host = scenario<T, HostSide>();
  const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-12;
  ASSERT_EQ(gpu.size(), host.size());
  for (const auto& [name, ref] : host) {
    SCOPED_TRACE(name);
    const auto& got = gpu.at(name);
    ASSERT_EQ(got.size(), ref.size());
    if (exact(name)) {
      EXPECT_EQ(got, ref);
      continue;
    }
    // Sums accumulated in double: 1e-12 for either type. Scalars (losses): relative error.
    // Tensors: the largest difference against max(1, the largest value).
    const double t = name.rfind("r_", 0) == 0 ? 1e-12 : tol;
    double diff = 0, scale = ref.size() == 1 ? std::abs(ref[0]) : 1;
    for (size_t i = 0; i < ref.size(); ++i) {
      ASSERT_FALSE(std::isnan(got[i])) << "element " << i;
      diff = std::max(diff, std::abs(got[i] - ref[i]));
      scale = std::max(scale, std::abs(ref[i]));
    }
    EXPECT_LT(diff / scale, t);
  }
}

// The scenario itself, on the host alone (runs everywhere): every output is finite and the
// losses counted their targets, so a GPU run compares real values, not a broken setup.
TYPED_TEST(CudaOpsParity, HostScenarioIsWellFormed) {
  const Outputs host = scenario<TypeParam, HostSide>();
  EXPECT_EQ(host.size(), 212u + 22u);
  for (const auto& [name, v] : host) {
    SCOPED_TRACE(name);
    ASSERT_FALSE(v.empty());
    for (double e : v) ASSERT_TRUE(std::isfinite(e));
  }
  EXPECT_GT(host.at("n_ce")[0], 0);
  EXPECT_EQ(host.at("n_ce"), host.at("n_bpr"));
  EXPECT_EQ(host.at("r_big_sum")[0], 0.5 * double(int64_t(65535) * 256 + 1001));
}

// The whole model on the GPU: SASRec (2 layers, dropout, clipping) trains 3 epochs with the
// generic trainer and is evaluated by full ranking on the device, against the same run on
// cpu::Backend. Dropout draws and sample order are the CPU's, so only float rounding separates
// them (on the host-run kernels the weights agree within 1e-4, cuda_kernels_host_test.cpp).
TEST(CudaModelParity, SASRecTrainsOnTheGpuLikeOnTheCpu) {
  // Instantiated for the device on every machine: the trainer, SASRec, CE and the evaluator
  // compile on cuda::Backend.
  auto gpu_run = &cudahost::train_small_sasrec<cuda::Backend>;
  if (!cuda::device_available()) GTEST_SKIP() << "no CUDA device present: GPU training not checked";
  const data::Split split = ref_training_split();
  const auto [w_cpu, r_cpu] = ref_train_small_sasrec(split);
  const auto [w_gpu, r_gpu] = gpu_run(split);
  ASSERT_EQ(w_gpu.size(), w_cpu.size());
  double diff = 0, scale = 1;
  for (size_t i = 0; i < w_cpu.size(); ++i) {
    ASSERT_TRUE(std::isfinite(w_gpu[i]));
    diff = std::max(diff, std::abs(double(w_gpu[i]) - double(w_cpu[i])));
    scale = std::max(scale, std::abs(double(w_cpu[i])));
  }
  EXPECT_LT(diff / scale, 1e-3);
  EXPECT_NEAR(r_gpu.test.at("NDCG@10"), r_cpu.test.at("NDCG@10"), 2e-3);
  EXPECT_NEAR(r_gpu.test.at("HR@10"), r_cpu.test.at("HR@10"), 5e-3);
  EXPECT_EQ(r_gpu.epochs_run, r_cpu.epochs_run);
}

}  // namespace
}  // namespace recdistill::parity
