// Profile loading speed: reads a profile file (JSON or .npy + ids) REPEATS times into a
// ProfileTable whose users are the file's own keys, and prints MB/s per repeat.
//
// usage: profile_load_bench FILE [REPEATS]   (make a file with bench/micro/make_profile_json.py)
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "recdistill/data/profiles.hpp"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: profile_load_bench FILE [REPEATS]\n";
    return 2;
  }
  const std::string path = argv[1];
  const int repeats = argc > 2 ? std::atoi(argv[2]) : 3;
  try {
    // The dataset's users: the file's own keys, so every row is mapped and copied.
    recdistill::data::IdMap users;
    for (const auto& k : recdistill::data::read_profile_file(path).keys) users.intern(k);
    const double mb = double(std::filesystem::file_size(path)) / 1e6;
    for (int r = 0; r < repeats; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      const auto t = recdistill::data::load_profiles({path}, users);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("repeat %d: %.1f MB in %.3f s = %.0f MB/s (%d users x %lld dims)\n", r, mb, s, mb / s,
                  t.summary.users_with_profile, static_cast<long long>(t.dim));
    }
  } catch (const recdistill::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
