// Helpers shared by the test binaries: a per-test scratch folder and the synthetic
// sequential dataset of the end-to-end tests.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "recdistill/core/error.hpp"
#include "recdistill/data/dataset.hpp"
#include "recdistill/backend/cpu/ranking.hpp"
#include "recdistill/eval/ranking.hpp"

namespace recdistill::test {

// A fresh folder under the system temp dir, named by prefix, process and test, removed at the end
// (a parameterised test's "Name/Param" becomes "Name_Param": one folder, not two).
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& prefix) {
    std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::replace(test.begin(), test.end(), '/', '_');
    path = std::filesystem::temp_directory_path() / (prefix + "_" + std::to_string(::getpid()) + "_" + test);
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string str(const std::string& name = "") const { return (path / name).string(); }
};

// The message of the recdistill::Error that `f` throws, or "(no error)".
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// Users walk a hidden successor permutation of the items: next = succ[cur] with
// probability 0.8, otherwise a uniformly random item. Popularity cannot see this.
inline data::LeaveOneOut synthetic(int n_users, int n_items, int length, unsigned seed) {
  std::mt19937 g(seed);
  std::vector<int32_t> succ(static_cast<size_t>(n_items) + 1);
  std::vector<int32_t> perm(static_cast<size_t>(n_items));
  for (int i = 0; i < n_items; ++i) perm[size_t(i)] = i + 1;
  std::shuffle(perm.begin(), perm.end(), g);
  for (int i = 0; i < n_items; ++i) succ[size_t(i) + 1] = perm[size_t(i)];
  std::uniform_int_distribution<int> item(1, n_items);
  std::uniform_real_distribution<double> u(0, 1);
  data::UserSequences s;
  s.n_items = n_items + 1;
  s.n_users = n_users + 1;
  s.items.resize(size_t(n_users) + 1);
  for (int user = 1; user <= n_users; ++user) {
    int32_t cur = item(g);
    for (int t = 0; t < length; ++t) {
      s.items[size_t(user)].push_back(cur);
      cur = u(g) < 0.8 ? succ[size_t(cur)] : item(g);
    }
  }
  return data::split_leave_one_out(s);
}

// HR@10 of ranking by training popularity on a leave-one-out split's test targets: the bar
// the learning tests must clear by a wide margin.
inline double popularity_hr10(const data::LeaveOneOut& s) {
  std::vector<double> count(size_t(s.n_items), 0.0);
  for (const auto& seq : s.train)
    for (int32_t i : seq) count[size_t(i)] += 1;
  std::vector<int64_t> ranks;
  for (size_t u = 1; u < s.train.size(); ++u)
    if (s.test[u]) ranks.push_back(eval::rank_of_target(count.data(), s.n_items, s.test[u], eval::Ties::against_model));
  return eval::metrics_from_ranks(ranks, {10}).at("HR@10");
}

// Expects f() to throw a recdistill::Error whose message contains every fragment.
inline void expect_error(const std::function<void()>& f, const std::vector<std::string>& fragments) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one containing " << fragments.at(0);
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& x : fragments)
      EXPECT_NE(msg.find(x), std::string::npos) << "message: " << msg << "\nmissing: " << x;
  }
}

}  // namespace recdistill::test
