// recdistill/data/filter.hpp: rating threshold, duplicate removal and k-core filtering.
//
// Applied in this order (docs/data.md):
//   1. rating:     rows with rating < min_rating are dropped (needs a rating column);
//   2. duplicates: a row repeating an earlier kept (user, item, timestamp) is dropped;
//   3. k-core:     users with fewer than min_user_interactions rows and items with fewer than
//                  min_item_interactions rows are dropped, repeated until nothing changes (a
//                  fixed point: afterwards every kept user and item meets its minimum).
// When any filter is on, ids are re-compacted: users and items without a kept row go, the
// others keep their relative order (so first-appearance / file order is preserved), and
// metadata rows and session labels follow their ids. Kept rows stay in file order.
#pragma once
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "recdistill/core/error.hpp"
#include "recdistill/data/dataset.hpp"
#include "recdistill/data/text.hpp"

namespace recdistill::data {

struct FilterOptions {
  double min_rating = -std::numeric_limits<double>::infinity();  // -inf = off
  int min_user_interactions = 0;  // <= 1 = off
  int min_item_interactions = 0;  // <= 1 = off
  bool drop_duplicates = false;
  bool active() const {
    return min_rating > -std::numeric_limits<double>::infinity() || min_user_interactions > 1 ||
           min_item_interactions > 1 || drop_duplicates;
  }
};

// What each step removed.
struct FilterReport {
  size_t rows_in = 0, by_rating = 0, by_duplicates = 0, by_kcore = 0;
  int kcore_rounds = 0;  // passes until the fixed point (the last pass removes nothing)
  int32_t users_out = 0, items_out = 0;  // without the pad
};

namespace detail {

// Keeps the rows with keep[r], renumbering users and items that still have rows.
inline Interactions compact(const Interactions& in, const std::vector<char>& keep) {
  std::vector<int32_t> new_user(size_t(in.users.size()), 0), new_item(size_t(in.items.size()), 0);
  for (size_t r = 0; r < in.size(); ++r)
    if (keep[r]) new_user[size_t(in.user[r])] = new_item[size_t(in.item[r])] = 1;
  Interactions out;
  out.source = in.source;
  auto remap = [](const IdMap& from, std::vector<int32_t>& ids, IdMap& to, const Metadata& mf, Metadata& mt) {
    mt.columns = mf.columns;
    if (!mf.columns.empty()) mt.rows.push_back(mf.rows.empty() ? std::vector<std::string>(mf.columns.size()) : mf.rows[0]);
    for (int32_t id = 1; id < from.size(); ++id) {
      if (!ids[size_t(id)]) continue;
      ids[size_t(id)] = to.intern(from.token(id));
      if (!mf.columns.empty()) mt.rows.push_back(mf.rows[size_t(id)]);
    }
  };
  remap(in.users, new_user, out.users, in.user_meta, out.user_meta);
  remap(in.items, new_item, out.items, in.item_meta, out.item_meta);
  if (!in.session_split.empty()) {
    out.session_split.assign(size_t(out.users.size()), std::string());
    for (int32_t id = 1; id < in.users.size(); ++id)
      if (new_user[size_t(id)]) out.session_split[size_t(new_user[size_t(id)])] = in.session_split[size_t(id)];
  }
  for (size_t r = 0; r < in.size(); ++r) {
    if (!keep[r]) continue;
    out.user.push_back(new_user[size_t(in.user[r])]);
    out.item.push_back(new_item[size_t(in.item[r])]);
    out.timestamp.push_back(in.timestamp[r]);
    if (!in.rating.empty()) out.rating.push_back(in.rating[r]);
  }
  out.duplicates = count_duplicates(out);
  return out;
}

}  // namespace detail

inline Interactions filter_dataset(const Interactions& in, const FilterOptions& o, FilterReport* report = nullptr) {
  FilterReport rep;
  rep.rows_in = in.size();
  if (!o.active()) {
    rep.users_out = in.users.size() - 1;
    rep.items_out = in.items.size() - 1;
    if (report) *report = rep;
    return in;
  }
  std::vector<char> keep(in.size(), 1);
  if (o.min_rating > -std::numeric_limits<double>::infinity()) {
    if (in.rating.empty())
      fail(in.source, ": data.min_rating is set (", o.min_rating, "), but the data has no rating column");
    for (size_t r = 0; r < in.size(); ++r)
      if (double(in.rating[r]) < o.min_rating) keep[r] = 0, ++rep.by_rating;
  }
  if (o.drop_duplicates) {
    // The first kept row of each (user, item, timestamp) stays.
    const auto dup = detail::duplicate_rows(in, keep);
    for (size_t r = 0; r < in.size(); ++r)
      if (dup[r]) keep[r] = 0, ++rep.by_duplicates;
  }
  if (o.min_user_interactions > 1 || o.min_item_interactions > 1) {
    std::vector<int64_t> nu(size_t(in.users.size())), ni(size_t(in.items.size()));
    while (true) {
      ++rep.kcore_rounds;
      std::fill(nu.begin(), nu.end(), 0);
      std::fill(ni.begin(), ni.end(), 0);
      for (size_t r = 0; r < in.size(); ++r)
        if (keep[r]) ++nu[size_t(in.user[r])], ++ni[size_t(in.item[r])];
      size_t removed = 0;
      for (size_t r = 0; r < in.size(); ++r)
        if (keep[r] && (nu[size_t(in.user[r])] < o.min_user_interactions ||
                        ni[size_t(in.item[r])] < o.min_item_interactions))
          keep[r] = 0, ++removed;
      rep.by_kcore += removed;
      if (removed == 0) break;
    }
  }
  auto out = detail::compact(in, keep);
  if (out.size() == 0)
    fail(in.source, ": no interactions left after filtering (", rep.rows_in, " rows: ", rep.by_rating,
         " below data.min_rating, ", rep.by_duplicates, " duplicates, ", rep.by_kcore,
         " by data.min_user_interactions / data.min_item_interactions)");
  rep.users_out = out.users.size() - 1;
  rep.items_out = out.items.size() - 1;
  if (report) *report = rep;
  return out;
}

}  // namespace recdistill::data
