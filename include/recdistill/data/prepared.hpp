// recdistill/data/prepared.hpp: the prepared-dataset file. `recdistill prepare` imports,
// filters and splits the data once (data/load.hpp) and writes the Dataset (id mappings,
// interactions, metadata) and its Split to one binary file; training reads it back in a
// fraction of the import time (docs/data.md, "Prepared datasets").
//
// File: the verified container of io/container.hpp (magic "RDPREP\0\1", format version,
// payload length, FNV-1a 64 checksum, all checked before anything is deserialised), whose
// payload is
//   header  (ByteWriter)  settings hash and text, input-files hash with each file's path,
//                         size and hash, import seconds
//   body    (Boost.Serialization binary_oarchive)  Dataset, then Split
// Reading compares the header with the current config before the body is touched: a file
// prepared under other data settings, or from input files whose bytes changed since, is
// refused with a message that says what differs and to run `recdistill prepare` again.
//
// Users of this header link Boost::serialization (libboost-serialization-dev).
#pragma once
#include <yaml-cpp/yaml.h>

#include <boost/archive/archive_exception.hpp>
#include <boost/archive/binary_iarchive.hpp>
#include <boost/archive/binary_oarchive.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/vector.hpp>
#include <chrono>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "recdistill/core/error.hpp"
#include "recdistill/data/dataset.hpp"
#include "recdistill/data/interchange.hpp"
#include "recdistill/data/load.hpp"
#include "recdistill/io/config.hpp"
#include "recdistill/io/container.hpp"
#include "recdistill/io/bounded_archive.hpp"

// Boost.Serialization of the dataset types. Non-intrusive so that dataset.hpp stays free of
// Boost; every field is listed here (a round-trip test compares whole objects with ==).
namespace boost::serialization {

template <class Ar>
void serialize(Ar& ar, recdistill::data::SplitCase& c, const unsigned) {
  ar & c.user & c.history & c.target;
}
template <class Ar>
void serialize(Ar& ar, recdistill::data::Metadata& m, const unsigned) {
  ar & m.columns & m.rows;
}

}  // namespace boost::serialization

namespace recdistill::data {

// Every field of these types is written below; a new field changes their size and stops the
// build here until it is added to encode_prepared/read_prepared (and the version raised).
#if defined(__x86_64__) && defined(__GLIBCXX__)
// (Split::train_weight / train_group are run-time annotations, never saved: encode refuses them.)
static_assert(sizeof(Dataset) == 352 && sizeof(Split) == 160 && sizeof(SplitCase) == 40 && sizeof(Metadata) == 48,
              "data::Dataset, Split, SplitCase or Metadata changed: serialise the new field in "
              "data/prepared.hpp, raise kPreparedFile's version, then update these sizes");
#endif

// Version 1: header + Boost binary archive of (Dataset, Split) as below. Bump it whenever the
// layout or the meaning of an import setting changes.
inline constexpr io::FileKind kPreparedFile{std::string_view("RDPREP\0\1", 8), 1, "prepared dataset"};

struct PreparedInput {
  std::string path;
  uint64_t bytes = 0, hash = 0;  // size and FNV-1a 64 of the file's bytes
  bool operator==(const PreparedInput&) const = default;
};

// What a prepared file was made from.
struct PreparedHeader {
  std::string settings;  // prepared_settings(cfg): the canonical data settings
  uint64_t settings_hash = 0;
  std::vector<PreparedInput> inputs;
  uint64_t input_hash = 0;  // over every input's hash
  double import_seconds = 0;
};

struct PreparedData {
  Dataset dataset;
  Split split;
};

// The data settings a prepared file depends on, one "key=value" per line, sorted: every key
// declared with keys::kPrepared (io/config.hpp DataConfig: format, paths, fields, filters,
// split), and the seed when the split draws random numbers (every split but loo, session and ratio).
inline std::string prepared_settings(const io::CommonConfig& cfg) {
  auto s = io::compat_settings(cfg, keys::kPrepared);
  const auto& d = cfg.data;
  if (d.split != "loo" && d.split != "session" && d.split != "ratio") s["seed"] = std::to_string(cfg.seed);
  std::string out;
  for (const auto& [k, v] : s) out += k + "=" + v + "\n";
  return out;
}

// The files the import reads (data/load.hpp), each with its size and hash.
inline std::vector<PreparedInput> prepared_inputs(const io::DataConfig& d) {
  std::vector<std::string> paths;
  if (const auto ip = interchange_paths(d); ip.any()) {
    check_interchange_paths(ip);
    paths = interchange_files(ip);
  } else {
    paths.push_back(d.path);
    if (!d.item_path.empty()) paths.push_back(d.item_path);
    else if (d.format == "sessions")
      paths.push_back((std::filesystem::path(d.path).parent_path() / "items.tsv").string());
    if (!d.user_path.empty()) paths.push_back(d.user_path);
  }
  std::vector<PreparedInput> out;
  for (const auto& p : paths) {
    const std::string bytes = io::read_file_bytes(p);
    out.push_back({p, bytes.size(), io::fnv1a64(bytes)});
  }
  return out;
}

inline uint64_t inputs_hash(const std::vector<PreparedInput>& in) {
  uint64_t h = io::kFnvOffset;
  for (const auto& f : in) h = io::fnv1a64_bytes(&f.hash, sizeof f.hash, h);
  return h;
}

// The header for `cfg` as it is now (hashes the input files).
inline PreparedHeader prepared_header(const io::CommonConfig& cfg) {
  PreparedHeader h;
  h.settings = prepared_settings(cfg);
  h.settings_hash = io::fnv1a64(h.settings);
  h.inputs = prepared_inputs(cfg.data);
  h.input_hash = inputs_hash(h.inputs);
  return h;
}

// Import, filter and split as configured (what `prepare` stores and what training does
// without a prepared file).
inline PreparedData import_data(const io::CommonConfig& cfg, FilterReport* report = nullptr) {
  PreparedData p;
  if (const auto ip = interchange_paths(cfg.data); ip.any()) {  // the seed's files: already split
    const auto& d = cfg.data;
    const bool filtered = d.min_rating > -1e300 || d.min_user_interactions > 1 || d.min_item_interactions > 1 ||
                          d.drop_duplicates;
    if (filtered)
      fail("data.min_rating, data.min_user_interactions, data.min_item_interactions and data.drop_duplicates do not "
           "apply to the seed's JSON files (data.profile_train_sequences ...), which are already filtered and split; "
           "remove them, or filter when exporting (prepare --export-json)");
    auto x = read_interchange(ip);
    p.dataset = std::move(x.dataset);
    p.split = std::move(x.split);
    if (report) report->rows_in = p.dataset.size();
    return p;
  }
  p.dataset = load_dataset(cfg.data, report);
  p.split = split_dataset(p.dataset, cfg.data, cfg.seed);
  return p;
}

// The header part of a prepared file's payload (what read_prepared checks before the body).
inline void put_prepared_header(io::ByteWriter& w, const PreparedHeader& h) {
  w.put(h.settings);
  w.put<uint64_t>(h.settings_hash);
  w.put<uint64_t>(h.inputs.size());
  for (const auto& f : h.inputs) {
    w.put(f.path);
    w.put<uint64_t>(f.bytes);
    w.put<uint64_t>(f.hash);
  }
  w.put<uint64_t>(h.input_hash);
  w.put<double>(h.import_seconds);
}

// The payload bytes of a prepared file.
inline std::string encode_prepared(const PreparedData& p, const PreparedHeader& h) {
  io::ByteWriter w;
  put_prepared_header(w, h);
  std::ostringstream os(std::ios::binary);
  {
    boost::archive::binary_oarchive ar(os);
    const Dataset& d = p.dataset;
    const uint64_t duplicates = d.duplicates;
    ar << d.source << d.users.tokens() << d.items.tokens() << d.user << d.item << d.timestamp
       << d.rating << d.user_meta << d.item_meta << duplicates << d.session_split;
    const Split& s = p.split;
    if (!s.train_weight.empty() || !s.train_group.empty())
      fail("a prepared file holds a dataset's split, not a method's annotated training rows (Split::train_weight / "
           "train_group are set)");
    ar << s.protocol << s.train << s.valid << s.test << s.n_items << s.n_users;
  }
  w.put(os.str());
  return w.take();
}

inline void write_prepared(const std::string& path, const PreparedData& p, const PreparedHeader& h) {
  io::write_container(path, kPreparedFile, encode_prepared(p, h));
}

// Reads the header of a verified payload (positions `r` at the body).
inline PreparedHeader read_prepared_header(io::ByteReader& r) {
  PreparedHeader h;
  h.settings = r.get_string("settings");
  h.settings_hash = r.get<uint64_t>("settings hash");
  const auto n = r.get<uint64_t>("input count");
  if (n > 1024) fail(r.path(), ": implausible input file count ", n);
  for (uint64_t i = 0; i < n; ++i) {
    PreparedInput f;
    f.path = r.get_string("input path");
    f.bytes = r.get<uint64_t>("input size");
    f.hash = r.get<uint64_t>("input hash");
    h.inputs.push_back(std::move(f));
  }
  h.input_hash = r.get<uint64_t>("input hash");
  h.import_seconds = r.get<double>("import seconds");
  return h;
}

// Refuses a file prepared under other settings or from other input bytes than `now`.
inline void check_prepared(const PreparedHeader& file, const PreparedHeader& now, const std::string& path) {
  if (file.settings_hash != now.settings_hash) {
    // Name the first differing lines.
    std::istringstream a(file.settings), b(now.settings);
    std::map<std::string, std::string> fa, fb;
    for (std::string l; std::getline(a, l);) fa[l.substr(0, l.find('='))] = l.substr(l.find('=') + 1);
    for (std::string l; std::getline(b, l);) fb[l.substr(0, l.find('='))] = l.substr(l.find('=') + 1);
    std::string diffs;
    for (const auto& [k, v] : fa)
      if (!fb.count(k) || fb[k] != v) diffs += cat("\n  ", k, ": file ", v, ", config ", fb.count(k) ? fb[k] : "(not set)");
    for (const auto& [k, v] : fb)
      if (!fa.count(k)) diffs += cat("\n  ", k, ": file (not set), config ", v);
    fail(path, ": prepared for settings hash ", io::hex64(file.settings_hash), ", the config gives ",
         io::hex64(now.settings_hash), ": run recdistill prepare again. Differences:", diffs);
  }
  if (file.input_hash != now.input_hash) {
    std::string diffs;
    for (size_t i = 0; i < std::max(file.inputs.size(), now.inputs.size()); ++i) {
      if (i < file.inputs.size() && i < now.inputs.size() && file.inputs[i] == now.inputs[i]) continue;
      if (i < now.inputs.size())
        diffs += cat("\n  ", now.inputs[i].path, ": now ", now.inputs[i].bytes, " bytes, hash ",
                     io::hex64(now.inputs[i].hash));
      if (i < file.inputs.size())
        diffs += cat("; prepared from ", file.inputs[i].bytes, " bytes, hash ", io::hex64(file.inputs[i].hash));
    }
    fail(path, ": prepared from input files whose bytes have changed since (input hash ",
         io::hex64(file.input_hash), ", now ", io::hex64(now.input_hash), "): run recdistill prepare again.",
         diffs);
  }
}

// Reads a prepared file. With `expect` (the current header, prepared_header(cfg)), a file
// made under other settings or inputs is refused before its body is deserialised.
inline PreparedData read_prepared(const std::string& path, const PreparedHeader* expect = nullptr,
                                  PreparedHeader* header_out = nullptr) {
  const std::string bytes = io::read_file_bytes(path);
  io::ByteReader r(io::unframe(bytes, kPreparedFile, path), path);
  PreparedHeader h = read_prepared_header(r);
  if (expect) check_prepared(h, *expect, path);
  const std::string body = r.get_string("body");
  r.expect_end();
  PreparedData p;
  try {
    std::istringstream is(body, std::ios::binary);
    // Length fields checked against the body (fuzzing found 4 GB allocations), vectors' sizes
    // against what this process can hold (io/alloc_limits.hpp; the Error names `path`).
    io::BoundedBinaryIArchive ar(is, 0, path);
    Dataset& d = p.dataset;
    std::vector<std::string> users, items;
    uint64_t duplicates = 0;
    ar >> d.source >> users >> items >> d.user >> d.item >> d.timestamp >> d.rating >> d.user_meta >>
        d.item_meta >> duplicates >> d.session_split;
    d.duplicates = size_t(duplicates);
    // Rebuild the maps by interning in id order; the pad must come first and tokens be unique.
    for (auto* pair : {&users, &items}) {
      auto& map = pair == &users ? d.users : d.items;
      if (pair->empty() || (*pair)[0] != map.token(0))
        fail(path, ": the ", pair == &users ? "user" : "item", " id mapping does not start with the pad token");
      for (size_t i = 1; i < pair->size(); ++i)
        if (map.intern((*pair)[i]) != int32_t(i))
          fail(path, ": the ", pair == &users ? "user" : "item", " id mapping repeats token '", (*pair)[i], "'");
    }
    Split& s = p.split;
    ar >> s.protocol >> s.train >> s.valid >> s.test >> s.n_items >> s.n_users;
  } catch (const boost::archive::archive_exception& e) {
    fail(path, ": cannot decode the prepared dataset body: ", e.what());
  } catch (const std::bad_alloc&) {
    fail(path, ": cannot decode the prepared dataset body: it announces more data than fits in memory");
  } catch (const std::length_error& e) {
    fail(path, ": cannot decode the prepared dataset body: ", e.what());
  }
  // Ids must be in range, so nothing downstream indexes out of bounds.
  const auto& d = p.dataset;
  const auto& s = p.split;
  if (d.user.size() != d.item.size() || d.timestamp.size() != d.user.size() ||
      (!d.rating.empty() && d.rating.size() != d.user.size()))
    fail(path, ": inconsistent prepared dataset: column lengths differ");
  for (size_t i = 0; i < d.user.size(); ++i)
    if (d.user[i] <= 0 || d.user[i] >= d.users.size() || d.item[i] <= 0 || d.item[i] >= d.items.size())
      fail(path, ": inconsistent prepared dataset: interaction ", i, " has an id out of range");
  if (s.n_items < 1 || s.n_users < 1 || s.train.size() > size_t(s.n_users))
    fail(path, ": inconsistent prepared split sizes");
  // Every split is made with n_items = items.size(), n_users = users.size(); models size their
  // tables from these, so a count the id mappings do not back is refused here.
  if (s.n_items != d.items.size() || s.n_users != d.users.size())
    fail(path, ": inconsistent prepared split: ", s.n_items, " items and ", s.n_users, " users, but the id mappings hold ",
         d.items.size(), " and ", d.users.size());
  auto ok_items = [&](const std::vector<int32_t>& v) {
    for (int32_t x : v)
      if (x <= 0 || x >= s.n_items) return false;
    return true;
  };
  for (const auto& t : s.train)
    if (!ok_items(t)) fail(path, ": inconsistent prepared split: a training item id is out of range");
  for (const auto* cases : {&s.valid, &s.test})
    for (const auto& c : *cases)
      if (!ok_items(c.history) || c.target <= 0 || c.target >= s.n_items || c.user < 0 || c.user >= s.n_users)
        fail(path, ": inconsistent prepared split: an evaluation case has an id out of range");
  if (header_out) *header_out = std::move(h);
  return p;
}

// What training uses: the prepared file named by data.prepared (verified against the config
// and the input files), or else a fresh import.
struct LoadedData {
  Dataset dataset;
  Split split;
  bool from_prepared = false;
  double seconds = 0;  // load time (read + verify, or import + filter + split)
  std::string source;  // the prepared file, or data.path
};

inline LoadedData load_prepared_or_import(const io::CommonConfig& cfg) {
  const auto t0 = std::chrono::steady_clock::now();
  LoadedData out;
  if (!cfg.data.prepared.empty()) {
    if (!std::filesystem::exists(cfg.data.prepared))
      fail(cfg.data.prepared, ": data.prepared names a file that does not exist: run recdistill prepare --config ",
           cfg.source.empty() ? std::string("CONFIG.yaml") : cfg.source, " first");
    const PreparedHeader now = prepared_header(cfg);
    auto p = read_prepared(cfg.data.prepared, &now);
    out.dataset = std::move(p.dataset);
    out.split = std::move(p.split);
    out.from_prepared = true;
    out.source = cfg.data.prepared;
  } else {
    auto p = import_data(cfg);
    out.dataset = std::move(p.dataset);
    out.split = std::move(p.split);
    out.source = interchange_paths(cfg.data).any() ? cfg.data.profile_train_sequences : cfg.data.path;
  }
  check_expected_counts(cfg.data.expected_counts, out.dataset, out.split, out.source);
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace recdistill::data
