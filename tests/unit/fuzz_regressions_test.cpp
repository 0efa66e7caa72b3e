// Fuzzing findings kept as tests: every file in tests/fuzz/regressions/ is fed to the parser
// its name starts with: a prepared file must give recdistill::Error (not a crash, not
// std::bad_alloc); a checkpoint or config input is run as its fuzz target runs it
// (tests/fuzz/checkpoint_input.hpp, config_input.hpp: Error or acceptance, with the targets'
// checks). And the bounded Boost archive that fixed the prepared-reader findings.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/archive/binary_oarchive.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/vector.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../fuzz/checkpoint_input.hpp"
#include "../fuzz/config_input.hpp"
#include "recdistill/data/prepared.hpp"
#include "recdistill/io/bounded_archive.hpp"

namespace {

namespace fs = std::filesystem;
using namespace recdistill;

const fs::path kRegressions = fs::path(RECDISTILL_FIXTURE_DIR) / ".." / "fuzz" / "regressions";

std::string read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// As tests/fuzz/prepared_fuzz.cpp: a whole file when it starts with the magic, else a payload.
void read_as_prepared(const std::string& input, const fs::path& tmp) {
  const bool whole = input.compare(0, 8, data::kPreparedFile.magic.data(), 8) == 0;
  std::ofstream(tmp, std::ios::binary) << (whole ? input : io::frame(data::kPreparedFile, input));
  (void)data::read_prepared(tmp.string());
}

TEST(FuzzRegressions, EveryReproducerGivesAnError) {
  ASSERT_TRUE(fs::is_directory(kRegressions)) << kRegressions;
  const fs::path tmp = fs::temp_directory_path() / ("recdistill_regression_" + std::to_string(::getpid()));
  int n = 0;
  for (const auto& e : fs::directory_iterator(kRegressions)) {
    const std::string name = e.path().filename().string();
    SCOPED_TRACE(name);
    const std::string bytes = read_bytes(e.path());
    if (name.rfind("prepared_", 0) == 0) {
      // Refused by the length check, before any large allocation.
      try {
        read_as_prepared(bytes, tmp);
        ADD_FAILURE() << "no error";
      } catch (const Error& err) {
        EXPECT_NE(std::string(err.what()).find("larger than the rest of the input"), std::string::npos)
            << err.what();
      }
      ++n;
    } else if (name.rfind("checkpoint_", 0) == 0) {
      EXPECT_NO_THROW(fuzz::run_checkpoint_input(bytes));
      ++n;
    } else if (name.rfind("config_", 0) == 0) {
      EXPECT_NO_THROW(fuzz::run_config_input(bytes));
      ++n;
    } else {
      ADD_FAILURE() << "no parser for regression file " << name << " (name it <target>_...)";
    }
  }
  fs::remove(tmp);
  EXPECT_GE(n, 2);
}

struct Sample {
  std::vector<std::string> tokens = {"[PAD]", "a", "bb", ""};
  std::vector<std::vector<int32_t>> rows = {{1, 2}, {}, {3}};
  std::string text = "hello";
};

std::string write_sample(const Sample& s) {
  std::ostringstream os(std::ios::binary);
  {
    boost::archive::binary_oarchive ar(os);
    ar << s.tokens << s.rows << s.text;
  }
  return os.str();
}

void read_sample(const std::string& body, Sample& s) {
  std::istringstream is(body, std::ios::binary);
  io::BoundedBinaryIArchive ar(is);
  ar >> s.tokens >> s.rows >> s.text;
}

TEST(BoundedArchive, ReadsWhatBinaryOarchiveWrote) {
  const Sample in;
  Sample out;
  out.tokens.clear();
  out.rows.clear();
  out.text.clear();
  read_sample(write_sample(in), out);
  EXPECT_EQ(out.tokens, in.tokens);
  EXPECT_EQ(out.rows, in.rows);
  EXPECT_EQ(out.text, in.text);
}

TEST(BoundedArchive, RefusesLengthsBeyondTheInput) {
  const std::string body = write_sample(Sample{});
  // The token vector's count is the first 8-byte field whose value is 4, right after the
  // archive header; announce 2^40 elements instead.
  const uint64_t four = 4;
  const size_t pos = body.find(std::string(reinterpret_cast<const char*>(&four), 8));
  ASSERT_NE(pos, std::string::npos);
  std::string big = body;
  const uint64_t huge = uint64_t(1) << 40;
  std::memcpy(big.data() + pos, &huge, 8);
  Sample s;
  EXPECT_THROW(read_sample(big, s), boost::archive::archive_exception);
  // A string length: "hello" is the last field, its 8-byte length right before it.
  std::string longer = body;
  const size_t hello = longer.rfind("hello");
  ASSERT_NE(hello, std::string::npos);
  const uint64_t len = uint64_t(1) << 62;  // binary_iarchive would throw length_error
  std::memcpy(longer.data() + hello - 8, &len, 8);
  EXPECT_THROW(read_sample(longer, s), boost::archive::archive_exception);
  // Every single-byte change either reads or throws archive_exception, nothing else.
  for (size_t i = 0; i < body.size(); ++i) {
    std::string b = body;
    b[i] = char(0xff);
    try {
      read_sample(b, s);
    } catch (const boost::archive::archive_exception&) {
    }
  }
}

}  // namespace
