// recdistill/data/load.hpp: the one entry point from the `data.*` config to a filtered Dataset
// and its Split (docs/data.md).
//
//   data.format    atomic   data.path = .inter, data.item_path/.user_path = .item/.user
//                  csv      data.path = interactions.csv, item_path/user_path = items.csv/users.csv
//                  amazon   data.path = reviews (JSON lines), data.item_path = metadata (JSON lines)
//                  sessions data.path = sessions.tsv, data.item_path = items.tsv (default: the
//                           items.tsv beside sessions.tsv)
//   filters        data.min_rating, data.drop_duplicates, data.min_user_interactions,
//                  data.min_item_interactions (data/filter.hpp)
//   data.split     loo | temporal | session | ratio (data/split.hpp)
#pragma once
#include <filesystem>
#include <limits>
#include <string>

#include "recdistill/core/error.hpp"
#include "recdistill/data/amazon.hpp"
#include "recdistill/data/atomic.hpp"
#include "recdistill/data/csv.hpp"
#include "recdistill/data/dataset.hpp"
#include "recdistill/data/filter.hpp"
#include "recdistill/data/sessions.hpp"
#include "recdistill/data/split.hpp"
#include "recdistill/io/config.hpp"

namespace recdistill::data {

inline FilterOptions filter_options(const io::DataConfig& c) {
  FilterOptions o;
  if (c.min_rating > -1e300) o.min_rating = c.min_rating;
  o.min_user_interactions = c.min_user_interactions;
  o.min_item_interactions = c.min_item_interactions;
  o.drop_duplicates = c.drop_duplicates;
  return o;
}

inline SplitOptions split_options(const io::DataConfig& c) {
  SplitOptions o;
  o.protocol = c.split;
  o.temporal_quantile = c.temporal_quantile;
  o.valid_share = c.valid_share;
  o.ratios = c.split_ratios;
  return o;
}

// Imports data.path (and its item/user files) in data.format, without filtering.
inline Interactions import_dataset(const io::DataConfig& c) {
  if (c.format == "atomic")
    return read_atomic(c.path, c.item_path, c.user_path,
                       {c.user_field, c.item_field, c.time_field, c.rating_field});
  if (c.format == "csv")
    return read_csv(c.path, c.item_path, c.user_path, {c.user_field, c.item_field, c.time_field, c.rating_field});
  if (c.format == "amazon") {
    if (!c.user_path.empty()) fail("data.user_path: the amazon format has no user file; found '", c.user_path, "'");
    return read_amazon(c.path, c.item_path);
  }
  if (c.format == "sessions") {
    if (!c.user_path.empty()) fail("data.user_path: the sessions format has no user file; found '", c.user_path, "'");
    std::string items = c.item_path;
    if (items.empty()) items = (std::filesystem::path(c.path).parent_path() / "items.tsv").string();
    return read_sessions(c.path, items);
  }
  fail("data.format: expected atomic, csv, amazon or sessions, found '", c.format, "'");
}

// Imports and filters; `report` (optional) says what the filters removed.
inline Interactions load_dataset(const io::DataConfig& c, FilterReport* report = nullptr) {
  return filter_dataset(import_dataset(c), filter_options(c), report);
}

// The configured split of a loaded dataset; random splits are drawn from `seed`.
inline Split split_dataset(const Interactions& d, const io::DataConfig& c, uint64_t seed) {
  return make_split(d, split_options(c), seed);
}

}  // namespace recdistill::data
