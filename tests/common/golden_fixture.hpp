// The golden-fixture reader the tier-2 tests share: a folder of tests/fixtures/ with its
// manifest.json (format_version, config) and .npy arrays, and an element-wise comparison that
// names the worst element.
#pragma once
#include <gtest/gtest.h>

#include <simdjson.h>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "recdistill/io/npy.hpp"

namespace rdtest {

constexpr int64_t kFixtureFormat = 1;

struct Fixture {
  std::string dir;
  simdjson::dom::parser parser;
  simdjson::dom::element manifest;
  // `regenerate`: the command that writes this fixture (named when the version differs).
  Fixture(const std::string& name, const std::string& regenerate)
      : dir(std::string(RECDISTILL_FIXTURE_DIR) + "/" + name) {
    manifest = parser.load(dir + "/manifest.json");
    const int64_t version = int64_t(manifest["format_version"]);
    if (version != kFixtureFormat)
      throw std::runtime_error("fixture " + dir + " has format_version " + std::to_string(version) +
                               ", this test reads " + std::to_string(kFixtureFormat) + ": regenerate with `" +
                               regenerate + "`");
  }
  std::vector<double> f64(const std::string& stem) const {
    return recdistill::io::read_npy(dir + "/" + stem + ".npy").as<double>();
  }
  std::vector<int32_t> i32(const std::string& stem) const {
    return recdistill::io::read_npy(dir + "/" + stem + ".npy").as<int32_t>();
  }
  int64_t cfg(const char* key) { return int64_t(manifest["config"][key]); }
  double cfgd(const char* key) { return double(manifest["config"][key]); }
};

inline void expect_close(const std::vector<double>& got, const std::vector<double>& want, double tol,
                         const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    double e = std::abs(got[i] - want[i]);
    if (!std::isfinite(e)) e = INFINITY;  // a NaN or Inf never passes
    if (e > worst) worst = e, at = i;
  }
  EXPECT_LE(worst, tol) << what << ": max abs error " << worst << " at element " << at << " (got " << got[at]
                        << ", want " << want[at] << ")";
}

}  // namespace rdtest
