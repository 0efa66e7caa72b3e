// recdistill/backbones/cloze_batching.hpp: the batching policy of cloze (masked-item) models
// (BERT4Rec's; docs/training.md). A row is a window of up to L consecutive items of a user's
// training sequence; windows are taken from the end of the sequence, one every `stride` items
// (stride L: non-overlapping; stride 1: a window ending at every item, i.e. RecBole's prefix
// rows plus the whole sequence). Each time a row is laid out its masks are drawn again from the
// Philox `masking` stream keyed by (seed; epoch, the row's index, slot), so an epoch's masks do
// not depend on the batch size, the order of rows or the thread count:
//   with probability ft_ratio the row is mask-last: only its newest item becomes [mask];
//   otherwise each item slot becomes [mask] with probability mask_ratio (no 80/10/10 rule).
// With `mask_last_per_batch` the mask-last decision is instead drawn once per step, keyed by
// (seed; epoch, the step), for all of the batch's rows, as RecBole's MaskItemSequence does; an
// epoch's masks then depend on the batch size too.
// Targets are the original items at masked slots, 0 elsewhere. RecBole's quirks, kept for its
// variant, in cloze rows: only the last `max_targets` masked slots carry a target (extra masks
// stay in the input), and a mask in slot 0 carries none (a mask-last row of one item keeps its
// target, which RecBole drops by the same rule). The `hf` seed also masks pad slots (with no
// target); that matters only when attention sees them (`mask_pads`), so it is drawn only then.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "recdistill/backbones/backbone.hpp"
#include "recdistill/core/random.hpp"

namespace recdistill {

class ClozeBatching {
 public:
  struct Window {
    int32_t user;
    int32_t begin;  // index into the user's training sequence of the window's oldest item
    int32_t len;    // items in the window, 1..L
  };
  struct Masking {
    int32_t mask_id = 0;
    double mask_ratio = 0.2;
    double ft_ratio = 0.0;
    int max_targets = 0;                 // > 0: only the last max_targets masked slots are targets
    bool first_slot_untargeted = false;  // a mask in slot 0 carries no target (RecBole)
    bool mask_pads = false;              // pad slots may become [mask] too (hf `nonzero`)
    bool mask_last_per_batch = false;    // one mask-last draw per batch, not per row (RecBole)
  };

  ClozeBatching(int L, int stride, bool left_pad, Masking m)
      : L_(L), stride_(stride <= 0 || stride > L ? L : stride), left_(left_pad), m_(m) {}

  int length() const { return L_; }
  bool left_padded() const { return left_; }

  // The training rows of a split's sequences (index = user id; sequence 0 unused).
  std::vector<Window> rows(const std::vector<std::vector<int32_t>>& train) const {
    std::vector<Window> w;
    for (size_t u = 1; u < train.size(); ++u)
      for (int32_t end = int32_t(train[u].size()); end > 0; end -= stride_) {
        const int32_t begin = std::max<int32_t>(0, end - L_);
        w.push_back({int32_t(u), begin, end - begin});
      }
    return w;
  }

  // Whether row `row` of step `step` of `epoch` is mask-last. Counter (epoch, 1, row, 0) decides
  // a row's kind, (epoch, 2, step, 0) a batch's.
  bool mask_last(uint64_t seed, uint32_t epoch, uint32_t step, uint32_t row) const {
    const auto u = m_.mask_last_per_batch ? uniform4(seed, Stream::masking, epoch, 2, step, 0)
                                          : uniform4(seed, Stream::masking, epoch, 1, row, 0);
    return u[0] < m_.ft_ratio;
  }

  // Lays out window w (row index `row` of the epoch's rows) with masks drawn for `epoch`: only
  // its newest item masked if `last` (mask_last()), else a cloze row.
  void layout(int32_t* seq, int32_t* target, const std::vector<int32_t>& items, const Window& w,
              bool last, uint64_t seed, uint32_t epoch, uint32_t row) const {
    std::fill(seq, seq + L_, 0);
    std::fill(target, target + L_, 0);
    const int off = left_ ? L_ - w.len : 0;
    for (int j = 0; j < w.len; ++j) seq[off + j] = items[size_t(w.begin + j)];
    if (last) {
      const int j = off + w.len - 1;
      target[j] = seq[j];
      seq[j] = m_.mask_id;
      return;
    }
    int targets = 0;  // counter (epoch, 0, row, slot) decides each slot
    for (int j = L_ - 1; j >= 0; --j) {  // newest first, so the cap keeps the last masked slots
      const bool real = j >= off && j < off + w.len;
      if (!real && !m_.mask_pads) continue;
      if (uniform4(seed, Stream::masking, epoch, 0, row, uint32_t(j))[0] >= m_.mask_ratio) continue;
      if (real && (m_.max_targets <= 0 || targets < m_.max_targets) && !(m_.first_slot_untargeted && j == 0)) {
        target[j] = seq[j];
        ++targets;
      }
      seq[j] = m_.mask_id;
    }
  }

  // Fills rows [0, n) of a batch with windows[ids[i]], masked for the step's epoch, and uploads it.
  template <class B>
  void fill(SeqBatch<B>& batch, const std::vector<std::vector<int32_t>>& train,
            const std::vector<Window>& windows, const uint32_t* ids, int n, const StepContext& ctx) const {
    batch.rows = n;
    for (int i = 0; i < n; ++i) {
      const Window& w = windows[ids[i]];
      layout(batch.seq_host.data() + size_t(i) * L_, batch.target_host.data() + size_t(i) * L_,
             train[size_t(w.user)], w, mask_last(ctx.seed, ctx.epoch, ctx.step, ids[i]), ctx.seed, ctx.epoch,
             ids[i]);
    }
    batch.upload();
  }

 private:
  int L_, stride_;
  bool left_;
  Masking m_;
};

}  // namespace recdistill
