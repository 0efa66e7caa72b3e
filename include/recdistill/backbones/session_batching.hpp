// recdistill/backbones/session_batching.hpp: the batching policy of session models (STAMP,
// FPMC): one row per (input window -> next item), the window's items left-aligned with the pad
// id 0 after them (specs/active-llm-distillation.md §1.2; RecBole pads the same side), and ONE
// target per row (SeqBatch::targets_per_row = 1), which the model's output (rows, d) predicts.
//
// Two ways to cut a split's training sequences into rows:
//   last      one row per sequence: its last item is the target and the window the last
//             min(n - 1, L) items before it (ALKDRec's instances: a session is one instance,
//             the shipped session's target its last item; no prefix augmentation)
//   prefixes  one row per target t = 1..n-1 of each sequence, the window the min(t, L) items
//             before it (RecBole's sequential data augmentation, its STAMP on ml-100k)
// UserLastItemBatching (FPMC's `recbole` variant) cuts the same rows and lays each out as
// [user id, last item] instead of a window.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "recdistill/backbones/backbone.hpp"
#include "recdistill/core/error.hpp"
#include "recdistill/data/dataset.hpp"
#include "recdistill/eval/case.hpp"

namespace recdistill {

enum class SessionRows { last, prefixes };

class SessionBatching {
 public:
  struct Row {
    int32_t user;  // the sequence's index in the split's training sequences
    int32_t end;   // index of the target in that sequence
    int32_t len;   // window length: items [end - len, end)
  };

  SessionBatching(int L, SessionRows mode) : L_(L), mode_(mode) {}

  int length() const { return L_; }
  bool left_padded() const { return false; }

  // The training rows of a split's sequences (index = user / session id; sequence 0 unused;
  // a sequence of fewer than 2 items has no target and gives no row).
  std::vector<Row> rows(const std::vector<std::vector<int32_t>>& train) const {
    std::vector<Row> out;
    for (size_t u = 1; u < train.size(); ++u) {
      const int32_t n = int32_t(train[u].size());
      if (n < 2) continue;
      if (mode_ == SessionRows::last) {
        out.push_back({int32_t(u), n - 1, std::min<int32_t>(n - 1, L_)});
      } else {
        for (int32_t t = n - 1; t >= 1; --t) out.push_back({int32_t(u), t, std::min<int32_t>(t, L_)});
      }
    }
    return out;
  }

  // Lays out one row: seq (L) left-aligned then pads; returns the target.
  int32_t layout(int32_t* seq, const std::vector<int32_t>& items, const Row& r) const {
    std::fill(seq, seq + L_, 0);
    for (int j = 0; j < r.len; ++j) seq[j] = items[size_t(r.end - r.len + j)];
    return items[size_t(r.end)];
  }

  // Fills rows [0, n) of a batch with rows[ids[i]] and uploads it: targets in target[0..n).
  template <class B>
  void fill(SeqBatch<B>& batch, const std::vector<std::vector<int32_t>>& train, const std::vector<Row>& rows,
            const uint32_t* ids, int n, const StepContext& = {}) const {
    batch.rows = n;
    batch.targets_per_row = 1;
    std::fill(batch.target_host.begin(), batch.target_host.end(), 0);
    for (int i = 0; i < n; ++i) {
      const Row& r = rows[ids[i]];
      batch.row_host[size_t(i)] = r.user;
      batch.target_host[size_t(i)] = layout(batch.seq_host.data() + size_t(i) * L_, train[size_t(r.user)], r);
    }
    batch.upload();
  }

 private:
  int L_;
  SessionRows mode_;
};

// FPMC recbole's batching (backbones/fpmc.hpp): a row is (user, the item before the target)
// -> target, laid out as seq = [user id, last item] (length() = 2, no padding), one target per
// row. The rows are SessionBatching's (`prefixes`: one per target of each training sequence,
// RecBole's augmentation; `last`: one per sequence) with a window of one item. The user is the
// sequence's index in the split's training sequences, so their count must be the model's user
// table: rows() checks it.
class UserLastItemBatching {
 public:
  using Row = SessionBatching::Row;

  UserLastItemBatching(int n_users, SessionRows mode) : n_users_(n_users), inner_(1, mode) {}

  int length() const { return 2; }
  bool left_padded() const { return false; }

  std::vector<Row> rows(const std::vector<std::vector<int32_t>>& train) const {
    if (train.size() != size_t(n_users_))
      fail("FPMC (recbole variant): the data has ", train.empty() ? 0 : train.size() - 1, " users, so model.n_users "
           "must be ", train.size(), " (the users plus the pad id 0), found ", n_users_);
    return inner_.rows(train);
  }

  // Lays out one row: seq (2) = [user, the item before the target]; returns the target.
  int32_t layout(int32_t* seq, const std::vector<int32_t>& items, const Row& r) const {
    seq[0] = r.user;
    seq[1] = items[size_t(r.end - 1)];
    return items[size_t(r.end)];
  }

  template <class B>
  void fill(SeqBatch<B>& batch, const std::vector<std::vector<int32_t>>& train, const std::vector<Row>& rows,
            const uint32_t* ids, int n, const StepContext& = {}) const {
    batch.rows = n;
    batch.targets_per_row = 1;
    std::fill(batch.target_host.begin(), batch.target_host.end(), 0);
    for (int i = 0; i < n; ++i) {
      const Row& r = rows[ids[i]];
      batch.row_host[size_t(i)] = r.user;
      batch.target_host[size_t(i)] = layout(batch.seq_host.data() + size_t(i) * 2, train[size_t(r.user)], r);
    }
    batch.upload();
  }

 private:
  int n_users_;
  SessionBatching inner_;
};

// A session model's evaluation queries: the last min(length, L) history items of each case as
// one row laid out like a training row, forward in eval mode (train: in train mode, dropout on,
// keyed by `key`), out (rows, d) = the rows' states. Rows n..rows-1 repeat case 0 and are
// ignored; `a` must have capacity >= rows.
template <class M>
void session_query(const M& m, CPtr<typename M::BackendType, typename M::Scalar> params, typename M::Activations& a,
                   const eval::Case* cases, size_t n, int rows, Ptr<typename M::BackendType, typename M::Scalar> out,
                   bool train = false, DropoutKey key = {}) {
  using B = typename M::BackendType;
  const int L = m.max_len();
  RD_REQUIRE(rows <= a.capacity && n <= size_t(rows), "query: ", rows, " rows for activations of capacity ",
             a.capacity, " (", n, " cases)");
  a.seq_host.resize(size_t(rows) * L);
  for (size_t i = 0; i < size_t(rows); ++i) {
    const eval::Case& c = cases[i < n ? i : 0];
    data::layout_history(a.seq_host.data() + i * L, c.history, c.length, L, /*left_pad=*/false);
  }
  B::template to_device<int32_t>(a.seq_in.data(), a.seq_host.data(), a.seq_host.size());
  m.forward(params, a, a.seq_in.data(), rows, train, key);
  B::template copy<typename M::Scalar>(out, m.output(a), size_t(rows) * m.hidden_size());
}

}  // namespace recdistill
