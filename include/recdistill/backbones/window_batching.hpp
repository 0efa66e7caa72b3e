// recdistill/backbones/window_batching.hpp: the batching policy of next-item models on windows
// of a user's training sequence (SASRec's; docs/training.md). It owns the window layout and the
// pmixer first-item quirk, which data/ no longer knows about.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "recdistill/backbones/backbone.hpp"

namespace recdistill {

// The batching policy of next-item models on windows of a user's training sequence
// (SASRec's; docs/training.md). A row is a window of up to L consecutive (input -> next item)
// pairs of one user; the pairs from `first_target` on are trained, the ones before give context.
// Windows are taken from the end of each sequence: window k trains the `stride` pairs ending
// k * stride pairs before the last one. Every pair is a target exactly once.
//   stride = L: non-overlapping windows (cheapest; later windows see shorter contexts);
//   stride = 1: every target sees min(t, L) items of context: RecBole's prefix rows exactly.
// `first_item_quirk` reproduces the pmixer seed: in a left-padded window that starts at the
// user's first item, the last pad slot gets that first item as its target (its hidden state is
// last_LN(0), so the term trains a popularity prior; specs/backbones.md §2.3).
class WindowBatching {
 public:
  struct Window {
    int32_t user;
    int32_t begin;         // index into the user's training sequence of the first input
    int32_t pairs;         // number of (input, target) pairs in the window, <= L (0: the quirk's row
                           // of a one-item user)
    int32_t first_target;  // pairs [first_target, pairs) are targets
  };

  // `one_item_rows`: with the quirk, a user of one training item is a row too (ECIR's sample,
  // SASRec's model.seed_window; pmixer's own sampler skips such users).
  WindowBatching(int L, int stride, bool left_pad, bool first_item_quirk, bool one_item_rows = false)
      : L_(L), stride_(stride <= 0 || stride > L ? L : stride), left_(left_pad),
        quirk_(first_item_quirk), one_item_rows_(one_item_rows) {}

  int length() const { return L_; }
  bool left_padded() const { return left_; }

  // The training rows of a split's sequences (index = user id; sequence 0 unused).
  std::vector<Window> rows(const std::vector<std::vector<int32_t>>& train) const {
    std::vector<Window> w;
    for (size_t u = 1; u < train.size(); ++u) {
      // A user of one training item: pads only, and that item the target of the last pad slot
      // (ECIR keeps such users; the spec's n_u = 0 case).
      if (left_ && quirk_ && one_item_rows_ && train[u].size() == 1) w.push_back({int32_t(u), 0, 0, 0});
      int32_t end = int32_t(train[u].size()) - 1;  // pairs not yet assigned: [0, end)
      while (end > 0) {
        const int32_t begin = std::max<int32_t>(0, end - L_);
        const int32_t targets_from = std::max<int32_t>(0, end - stride_);
        w.push_back({int32_t(u), begin, end - begin, targets_from - begin});
        end = targets_from;
      }
    }
    return w;
  }

  // Lays out one window into seq / target rows of length L.
  void layout(int32_t* seq, int32_t* target, const std::vector<int32_t>& items, const Window& w) const {
    std::fill(seq, seq + L_, 0);
    std::fill(target, target + L_, 0);
    const int off = left_ ? L_ - w.pairs : 0;
    for (int j = 0; j < w.pairs; ++j) {
      seq[off + j] = items[size_t(w.begin + j)];
      if (j >= w.first_target) target[off + j] = items[size_t(w.begin + j + 1)];
    }
    if (left_ && quirk_ && w.begin == 0 && w.first_target == 0 && off > 0) target[off - 1] = items[0];
  }

  // Fills rows [0, n) of a batch with windows[ids[i]] and uploads it (nothing is random here,
  // so the step's context is unused).
  template <class B>
  void fill(SeqBatch<B>& batch, const std::vector<std::vector<int32_t>>& train,
            const std::vector<Window>& windows, const uint32_t* ids, int n, const StepContext& = {}) const {
    batch.rows = n;
    for (int i = 0; i < n; ++i) {
      const Window& w = windows[ids[i]];
      layout(batch.seq_host.data() + size_t(i) * L_, batch.target_host.data() + size_t(i) * L_,
             train[size_t(w.user)], w);
    }
    batch.upload();
  }

 private:
  int L_, stride_;
  bool left_, quirk_, one_item_rows_;
};

}  // namespace recdistill
