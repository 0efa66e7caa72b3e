// The prepared-dataset file (data/prepared.hpp): a round trip gives back the imported
// objects exactly, and a file of another format version, other data settings, changed
// input bytes or damaged bytes is refused with a message saying so.
#include "../common/test_util.hpp"
#include "recdistill/data/prepared.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "recdistill/train/checkpoint.hpp"

namespace RD_TEST_FILE {  // each test file's own names (tests/CMakeLists.txt: unity builds)

using namespace recdistill;
namespace fs = std::filesystem;

namespace {

struct TempDir : test::TempDir {
  TempDir() : test::TempDir("rd_prepared") {}
};

// Six users with 3..6 interactions over five items, with ratings and an item file with
// metadata, in RecBole atomic format.
void write_fixture(const TempDir& d) {
  std::ofstream inter(d.str("toy.inter"));
  inter << "user_id:token\titem_id:token\trating:float\ttimestamp:float\n";
  const char* rows[] = {"u1\ti1\t5\t1", "u1\ti2\t4\t2", "u1\ti3\t3\t3", "u1\ti4\t5\t4",
                        "u2\ti2\t2\t1", "u2\ti3\t5\t2", "u2\ti5\t1\t3",
                        "u3\ti1\t4\t5", "u3\ti5\t3\t6", "u3\ti2\t5\t7", "u3\ti3\t4\t8", "u3\ti4\t4\t9",
                        "u4\ti4\t3\t1", "u4\ti1\t3\t1", "u4\ti2\t5\t2",
                        "u5\ti5\t4\t3", "u5\ti3\t2\t4", "u5\ti1\t1\t5", "u5\ti2\t4\t6",
                        "u6\ti3\t5\t1", "u6\ti2\t5\t2", "u6\ti1\t5\t3", "u6\ti5\t5\t4", "u6\ti4\t5\t5", "u6\ti2\t4\t6"};
  for (const char* r : rows) inter << r << "\n";
  std::ofstream item(d.str("toy.item"));
  item << "item_id:token\ttitle:token_seq\n";
  for (int i = 1; i <= 5; ++i) item << "i" << i << "\tTitle number " << i << "\n";
}

io::ExperimentConfig config(const TempDir& d, const std::string& extra = "") {
  const std::string yaml = "data:\n  path: " + d.str("toy.inter") + "\n  item_path: " + d.str("toy.item") +
                           "\n  prepared: " + d.str("toy.prep") + "\n" + extra;
  return io::parse_config_text(yaml, "test.yaml");
}

using test::error_of;

}  // namespace

TEST(Prepared, RoundTripEqualsTheImport) {
  TempDir d;
  write_fixture(d);
  for (const char* split : {"loo", "temporal"}) {
    const auto cfg = config(d, std::string("  split: ") + split + "\n");
    const auto imported = data::import_data(cfg);
    ASSERT_GT(imported.dataset.size(), 0u);
    ASSERT_FALSE(imported.dataset.rating.empty());
    ASSERT_GT(imported.dataset.item_meta.rows.size(), 1u);
    ASSERT_FALSE(imported.split.valid.empty());
    const auto h = data::prepared_header(cfg);
    data::write_prepared(cfg.data.prepared, imported, h);
    data::PreparedHeader got_h;
    const auto back = data::read_prepared(cfg.data.prepared, &h, &got_h);
    EXPECT_TRUE(back.dataset == imported.dataset) << split;
    EXPECT_TRUE(back.split == imported.split) << split;
    EXPECT_EQ(got_h.settings, h.settings);
    EXPECT_EQ(got_h.inputs, h.inputs);
    ASSERT_EQ(h.inputs.size(), 2u);  // the .inter and the .item file
    // The id maps answer lookups after the rebuild, not just compare equal.
    EXPECT_EQ(back.dataset.items.find("i3"), imported.dataset.items.find("i3"));
    EXPECT_EQ(data::mapping_hash(back.dataset), data::mapping_hash(imported.dataset));
    // The training entry point gives the same objects from the file as from an import.
    const auto loaded = data::load_prepared_or_import(cfg);
    EXPECT_TRUE(loaded.from_prepared);
    EXPECT_TRUE(loaded.dataset == imported.dataset);
    EXPECT_TRUE(loaded.split == imported.split);
    auto no_file = cfg;
    no_file.data.prepared.clear();
    const auto fresh = data::load_prepared_or_import(no_file);
    EXPECT_FALSE(fresh.from_prepared);
    EXPECT_TRUE(fresh.split == loaded.split);
  }
}

// The other formats fill the fields the atomic fixture leaves empty: user metadata (csv) and
// the session split labels (sessions).
TEST(Prepared, RoundTripCoversEveryField) {
  TempDir d;
  const std::string fx = std::string(RECDISTILL_FIXTURE_DIR) + "/import/";
  const std::string configs[] = {
      "data:\n  format: csv\n  path: " + fx + "interactions.csv\n  item_path: " + fx + "items.csv\n  user_path: " +
          fx + "users.csv\n",
      "data:\n  format: sessions\n  path: " + fx + "sessions.tsv\n  item_path: " + fx + "items.tsv\n  split: session\n"};
  for (const auto& yaml : configs) {
    const auto cfg = io::parse_config_text(yaml, "test.yaml");
    const auto imported = data::import_data(cfg);
    const bool sessions = cfg.data.format == "sessions";
    if (sessions) EXPECT_FALSE(imported.dataset.session_split.empty());
    else EXPECT_GT(imported.dataset.user_meta.rows.size(), 1u);
    const auto h = data::prepared_header(cfg);
    data::write_prepared(d.str("x.prep"), imported, h);
    const auto back = data::read_prepared(d.str("x.prep"), &h);
    EXPECT_TRUE(back.dataset == imported.dataset) << cfg.data.format;
    EXPECT_TRUE(back.split == imported.split) << cfg.data.format;
  }
}

TEST(Prepared, RefusesOtherSettingsOrChangedInputs) {
  TempDir d;
  write_fixture(d);
  const auto cfg = config(d);
  data::write_prepared(cfg.data.prepared, data::import_data(cfg), data::prepared_header(cfg));
  ASSERT_NO_THROW(data::load_prepared_or_import(cfg));
  // A filter that the file was not prepared with.
  {
    const auto other = config(d, "  min_user_interactions: 4\n");
    const auto e = error_of([&] { data::load_prepared_or_import(other); });
    EXPECT_NE(e.find(d.str("toy.prep") + ": prepared for settings hash "), std::string::npos) << e;
    EXPECT_NE(e.find("the config gives"), std::string::npos) << e;
    EXPECT_NE(e.find("run recdistill prepare again"), std::string::npos) << e;
    EXPECT_NE(e.find("data.min_user_interactions: file 0, config 4"), std::string::npos) << e;
  }
  // Another split.
  {
    const auto other = config(d, "  split: temporal\n");
    const auto e = error_of([&] { data::load_prepared_or_import(other); });
    EXPECT_NE(e.find("data.split: file loo, config temporal"), std::string::npos) << e;
  }
  // The seed matters only to random splits.
  {
    auto reseeded = config(d, "seed: 99\n");
    EXPECT_NO_THROW(data::load_prepared_or_import(reseeded));
  }
  // The same settings, but the input file's bytes changed since.
  {
    std::ofstream(d.str("toy.inter"), std::ios::app) << "u6\ti1\t1\t9\n";
    const auto e = error_of([&] { data::load_prepared_or_import(cfg); });
    EXPECT_NE(e.find("prepared from input files whose bytes have changed since"), std::string::npos) << e;
    EXPECT_NE(e.find(d.str("toy.inter") + ": now"), std::string::npos) << e;
  }
  // A missing prepared file says how to make it.
  {
    auto missing = cfg;
    missing.data.prepared = d.str("nope.prep");
    const auto e = error_of([&] { data::load_prepared_or_import(missing); });
    EXPECT_NE(e.find("does not exist: run recdistill prepare --config test.yaml first"), std::string::npos) << e;
  }
}

TEST(Prepared, RefusesOtherVersionsAndDamage) {
  TempDir d;
  write_fixture(d);
  const auto cfg = config(d);
  const auto p = data::import_data(cfg);
  const auto h = data::prepared_header(cfg);
  const auto f = cfg.data.prepared;
  // Same bytes under another format version.
  io::FileKind v2 = data::kPreparedFile;
  v2.version = data::kPreparedFile.version + 1;
  io::write_container(f, v2, data::encode_prepared(p, h));
  auto e = error_of([&] { data::read_prepared(f, &h); });
  EXPECT_NE(e.find("prepared dataset written by format version 2, this build reads version 1"), std::string::npos) << e;
  // A checkpoint is not a prepared dataset.
  save_checkpoint(f, Checkpoint<float>{});
  e = error_of([&] { data::read_prepared(f, &h); });
  EXPECT_NE(e.find("not a recdistill prepared dataset (magic bytes 'RDCKPT"), std::string::npos) << e;
  // Flipped byte inside the Boost body, and a truncated file.
  data::write_prepared(f, p, h);
  std::string bytes = io::read_file_bytes(f);
  bytes[bytes.size() - 20] = char(bytes[bytes.size() - 20] ^ 0x40);
  std::ofstream(f, std::ios::binary | std::ios::trunc) << bytes;
  e = error_of([&] { data::read_prepared(f, &h); });
  EXPECT_NE(e.find("prepared dataset is corrupted"), std::string::npos) << e;
  std::ofstream(f, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() / 2);
  e = error_of([&] { data::read_prepared(f, &h); });
  EXPECT_NE(e.find("truncated prepared dataset"), std::string::npos) << e;
}

// A payload that passes the checksum (written by a buggy or hostile writer) but holds a bad
// body is still refused with a message, not a crash.
TEST(Prepared, RefusesAWellFramedButBrokenBody) {
  TempDir d;
  write_fixture(d);
  const auto cfg = config(d);
  const auto h = data::prepared_header(cfg);
  io::ByteWriter w;
  data::put_prepared_header(w, h);  // prepared_header() leaves import_seconds at 0
  w.put(std::string("this is not a boost archive"));
  io::write_container(cfg.data.prepared, data::kPreparedFile, w.bytes());
  const auto e = error_of([&] { data::read_prepared(cfg.data.prepared, &h); });
  EXPECT_NE(e.find("cannot decode the prepared dataset body"), std::string::npos) << e;
  // A body with an item id out of range.
  auto p = data::import_data(cfg);
  p.dataset.item[0] = 77;
  data::write_prepared(cfg.data.prepared, p, h);
  const auto e2 = error_of([&] { data::read_prepared(cfg.data.prepared, &h); });
  EXPECT_NE(e2.find("interaction 0 has an id out of range"), std::string::npos) << e2;
}

}  // namespace RD_TEST_FILE
