// Helpers shared by the test binaries: a per-test scratch folder and the synthetic
// sequential dataset of the end-to-end tests.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "recdistill/data/dataset.hpp"

namespace recdistill::test {

// A fresh folder under the system temp dir, named by prefix, process and test, removed at the end.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& prefix) {
    path = std::filesystem::temp_directory_path() /
           (prefix + "_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string str(const std::string& name = "") const { return (path / name).string(); }
};

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

}  // namespace recdistill::test
