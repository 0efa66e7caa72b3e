// recdistill/data/dataset.hpp: interactions with id mappings, and per-user sequences.
//
// Ids are 1-based inside the library; 0 is padding (DESIGN.md, Decisions: Ids). Raw tokens
// are mapped in order of first appearance. Sequences are ordered by timestamp with a stable
// sort, so interactions sharing (user, timestamp) keep file order, as RecBole does
// (specs/backbones.md §10: 25,211 of ml-100k's rows share such a pair).
#pragma once
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "recdistill/core/error.hpp"

namespace recdistill::data {

// Raw token <-> internal id; id 0 is the pad ("[PAD]"). Importers intern the rows of an item
// (or user) file first, in file order, then the tokens of the interactions in order of first
// appearance (docs/data.md).
class IdMap {
 public:
  IdMap() : tokens_{"[PAD]"} {}
  int32_t intern(std::string_view token) {
    const uint64_t h = hash(token);
    size_t i = slot_of(token, h);
    if (slots_.size() && slots_[i].id != 0) return slots_[i].id;
    const int32_t id = int32_t(tokens_.size());
    tokens_.emplace_back(token);
    if (2 * size_t(id) >= slots_.size()) {
      grow();
      i = slot_of(token, h);
    }
    slots_[i] = {id, uint32_t(h >> 32)};
    return id;
  }
  int32_t find(std::string_view token) const {
    if (slots_.empty()) return -1;
    const size_t i = slot_of(token, hash(token));
    return slots_[i].id != 0 ? slots_[i].id : -1;
  }
  const std::string& token(int32_t id) const { return tokens_.at(size_t(id)); }
  int32_t size() const { return int32_t(tokens_.size()); }  // including the pad
  const std::vector<std::string>& tokens() const { return tokens_; }
  bool operator==(const IdMap& o) const { return tokens_ == o.tokens_; }

 private:
  // Open addressing with linear probing over a power-of-two table kept at most half full:
  // importers intern every row, and a flat table costs about one cache miss per lookup where
  // a node-based map costs a chain of them. A slot holds the id (0 = empty: the pad is never
  // looked up) and the hash's high half, compared before the token itself.
  struct Slot {
    int32_t id = 0;
    uint32_t tag = 0;
  };
  static uint64_t hash(std::string_view s) { return std::hash<std::string_view>()(s) * 0x9E3779B97F4A7C15ull; }
  // The slot holding `token`, or the empty slot where it would go. Needs a non-empty table.
  size_t slot_of(std::string_view token, uint64_t h) const {
    if (slots_.empty()) return 0;
    const size_t mask = slots_.size() - 1;
    for (size_t i = size_t(h) & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (s.id == 0 || (s.tag == uint32_t(h >> 32) && tokens_[size_t(s.id)] == token)) return i;
    }
  }
  void grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(std::max<size_t>(16, 2 * old.size()), Slot{});
    const size_t mask = slots_.size() - 1;
    for (int32_t id = 1; id < int32_t(tokens_.size()); ++id) {
      const uint64_t h = hash(tokens_[size_t(id)]);
      size_t i = size_t(h) & mask;
      while (slots_[i].id != 0) i = (i + 1) & mask;
      slots_[i] = {id, uint32_t(h >> 32)};
    }
  }
  std::vector<std::string> tokens_;
  std::vector<Slot> slots_;
};

// Optional metadata of users or items (titles, categories, ...): named string columns,
// one row per internal id (row 0, the pad, is empty).
struct Metadata {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;  // rows[id][column]
  bool operator==(const Metadata&) const = default;
};

// The in-memory dataset every importer produces (docs/data.md): interactions in file order
// with 1-based internal user/item ids, timestamps, optional ratings and metadata. Session
// data stores one "user" per session (see data/sessions.hpp).
struct Interactions {
  std::string source;  // file it came from, for messages
  IdMap users, items;
  std::vector<int32_t> user, item;  // internal ids, file order
  std::vector<double> timestamp;
  std::vector<float> rating;        // empty when the source has no rating column
  Metadata user_meta, item_meta;
  // Rows repeating an earlier (user, item, timestamp) triple; counted at import, kept unless
  // data.drop_duplicates (docs/data.md).
  size_t duplicates = 0;
  // Session data only: the shipped split label ("train", "valid", "test") per internal user
  // (= session) id, [0] empty; empty for other formats.
  std::vector<std::string> session_split;
  size_t size() const { return user.size(); }
  bool operator==(const Interactions&) const = default;
};
using Dataset = Interactions;

// One chronological item sequence per user; index 0 (the pad user) is empty.
struct UserSequences {
  std::vector<std::vector<int32_t>> items;
  int32_t n_items = 0;  // N: item ids including the pad
  int32_t n_users = 0;  // including the pad
  bool operator==(const UserSequences&) const = default;
};

// Groups by user and orders each user's items by timestamp, keeping file order on ties.
inline UserSequences to_sequences(const Interactions& in) {
  std::vector<size_t> order(in.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (in.user[a] != in.user[b]) return in.user[a] < in.user[b];
    return in.timestamp[a] < in.timestamp[b];
  });
  UserSequences s;
  s.n_items = in.items.size();
  s.n_users = in.users.size();
  s.items.resize(size_t(s.n_users));
  for (size_t i : order) s.items[size_t(in.user[i])].push_back(in.item[i]);
  return s;
}

// Leave-one-out by time (RecBole `LS: valid_and_test`, order TO): the last item of each user
// is the test target, the one before the validation target, the rest is training history.
// A user with n < 3 items gives up validation first, then test (RecBole keeps >= 1 train).
struct LeaveOneOut {
  std::vector<std::vector<int32_t>> train;  // per user
  std::vector<int32_t> valid, test;         // per user target, 0 = none
  int32_t n_items = 0, n_users = 0;
  bool operator==(const LeaveOneOut&) const = default;
};

inline LeaveOneOut split_leave_one_out(const UserSequences& s) {
  LeaveOneOut out;
  out.n_items = s.n_items;
  out.n_users = s.n_users;
  out.train.resize(s.items.size());
  out.valid.assign(s.items.size(), 0);
  out.test.assign(s.items.size(), 0);
  for (size_t u = 1; u < s.items.size(); ++u) {
    const auto& seq = s.items[u];
    const size_t n = seq.size();
    if (n == 0) continue;
    const size_t held = std::min<size_t>(2, n - 1);
    out.train[u].assign(seq.begin(), seq.end() - long(held));
    if (held == 2) {
      out.valid[u] = seq[n - 2];
      out.test[u] = seq[n - 1];
    } else if (held == 1) {
      out.test[u] = seq[n - 1];
    }
  }
  return out;
}

// A protocol-independent split (docs/data.md lists the protocols): per-user (or per-session)
// training sequences, and validation/test cases of (history, held-out target). Models train
// on `train` and are evaluated on the cases; every importer and split produces this shape.
struct SplitCase {
  int32_t user = 0;               // internal user (or session) id
  std::vector<int32_t> history;   // oldest first, the items the model sees
  int32_t target = 0;             // held-out item
  bool operator==(const SplitCase&) const = default;
};

struct Split {
  std::string protocol;                     // "loo", "temporal", "session", ...
  std::vector<std::vector<int32_t>> train;  // indexed by internal user id; [0] is empty
  std::vector<SplitCase> valid, test;
  int32_t n_items = 0, n_users = 0;         // including the pad
  // Optional annotations of the training sequences, indexed like `train` (empty = none): a
  // weight and a group per sequence, read by objectives that weight rows (active distillation's
  // rows: the LLM rank's weight and the session, losses/weighted_pairwise.hpp).
  std::vector<float> train_weight;
  std::vector<int32_t> train_group;
  bool operator==(const Split&) const = default;
};

// The leave-one-out split as a protocol-independent Split: validation histories are the
// training items, test histories add the validation item.
inline Split to_split(const LeaveOneOut& s) {
  Split out;
  out.protocol = "loo";
  out.train = s.train;
  out.n_items = s.n_items;
  out.n_users = s.n_users;
  for (size_t u = 1; u < s.train.size(); ++u) {
    if (s.train[u].empty()) continue;
    if (s.valid[u] != 0) out.valid.push_back({int32_t(u), s.train[u], s.valid[u]});
    if (s.test[u] != 0) {
      SplitCase c{int32_t(u), s.train[u], s.test[u]};
      if (s.valid[u] != 0) c.history.push_back(s.valid[u]);
      out.test.push_back(std::move(c));
    }
  }
  return out;
}

// Lays out the last (up to L) items of `history` as one input row.
inline void layout_history(int32_t* seq, const int32_t* history, size_t n, int L, bool left_pad) {
  std::fill(seq, seq + L, 0);
  const int k = int(std::min<size_t>(n, size_t(L)));
  const int32_t* from = history + (n - size_t(k));
  const int off = left_pad ? L - k : 0;
  std::copy(from, from + k, seq + off);
}

}  // namespace recdistill::data
