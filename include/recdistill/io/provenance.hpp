// recdistill/io/provenance.hpp: what built and ran a result, for the run folder's
// provenance.json: the commit, build type and flags, compiler, CPU model (name, family/model,
// the SIMD instructions compiled in, the cache sizes Eigen blocks for), threads, and the
// versions of the libraries linked. The app defines the build facts (apps/CMakeLists.txt,
// cmake/BuildInfo.cmake); a program that does not says "unknown".
#pragma once
#include <Eigen/Core>
#include <boost/version.hpp>
#include <simdjson.h>

#include <fstream>
#include <string>
#include <string_view>
#include <thread>

#if defined(__GLIBC__)
#include <gnu/libc-version.h>
#endif

#if defined(RECDISTILL_HAVE_BUILD_INFO)
#include "build_info.hpp"
#endif

#include "recdistill/core/error.hpp"
#include "recdistill/io/log.hpp"

namespace recdistill::io {

#ifndef RECDISTILL_GIT_COMMIT
#define RECDISTILL_GIT_COMMIT "unknown"
#endif
#ifndef RECDISTILL_BUILD_TYPE
#define RECDISTILL_BUILD_TYPE "unknown"
#endif
#ifndef RECDISTILL_CXX_FLAGS
#define RECDISTILL_CXX_FLAGS "unknown"
#endif
#ifndef RECDISTILL_CXX_COMPILER
#define RECDISTILL_CXX_COMPILER "unknown"
#endif
#ifndef RECDISTILL_YAML_CPP_VERSION
#define RECDISTILL_YAML_CPP_VERSION "unknown"
#endif
#ifndef RECDISTILL_VERSION_STRING
#define RECDISTILL_VERSION_STRING "unknown"
#endif

// The value of the first /proc/cpuinfo line whose key (the text before ':', padding removed) is
// `key`, or "unknown".
inline std::string cpuinfo_value(std::string_view key) {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    const auto c = line.find(':');
    if (c == std::string::npos || c == 0) continue;
    const auto last = line.find_last_not_of(" \t", c - 1);
    if (last == std::string::npos || std::string_view(line).substr(0, last + 1) != key) continue;
    const auto v = line.find_first_not_of(" \t", c + 1);
    return v == std::string::npos ? "unknown" : line.substr(v);
  }
  return "unknown";
}

// The CPU's model name, or "unknown".
inline std::string cpu_model() { return cpuinfo_value("model name"); }

// The CPU's family and model numbers as "6/167": a VM often reports a generic model name, and
// these numbers still tell two hosts apart.
inline std::string cpu_family_model() {
  const std::string family = cpuinfo_value("cpu family"), model = cpuinfo_value("model");
  return family == "unknown" || model == "unknown" ? "unknown" : family + "/" + model;
}

inline std::string json_object(const JsonFields& f) { return "{" + (f.body().empty() ? "" : f.body().substr(2)) + "}"; }

// One JSON object; `threads` is the run's runtime.threads, `model_code` where the model's
// code came from (the app: plugin name, version and file).
inline std::string provenance_json(int threads, const std::string& model_code = "") {
  JsonFields lib;
  lib.add("eigen", cat(EIGEN_WORLD_VERSION, ".", EIGEN_MAJOR_VERSION, ".", EIGEN_MINOR_VERSION))
      .add("boost", cat(BOOST_VERSION / 100000, ".", BOOST_VERSION / 100 % 1000, ".", BOOST_VERSION % 100))
      .add("simdjson", cat(simdjson::SIMDJSON_VERSION_MAJOR, ".", simdjson::SIMDJSON_VERSION_MINOR, ".",
                               simdjson::SIMDJSON_VERSION_REVISION))
      .add("yaml-cpp", std::string(RECDISTILL_YAML_CPP_VERSION));
#if defined(__GLIBCXX__)
  lib.add("libstdc++", cat("GCC ", _GLIBCXX_RELEASE, " (", __GLIBCXX__, ")"));
#endif
#if defined(__GLIBC__)
  lib.add("glibc", std::string(gnu_get_libc_version()));
#endif
  // Float results depend on these beyond the code: Eigen sizes its GEMM blocks from the cache
  // sizes it reads from the CPU (a block's depth sets each sum's order) and the instruction set
  // sets the vector width (docs/checkpoints.md, "Not across machines").
  std::ptrdiff_t l1 = 0, l2 = 0, l3 = 0;
  Eigen::internal::manage_caching_sizes(Eigen::GetAction, &l1, &l2, &l3);
  JsonFields caches;
  caches.add("l1", long(l1)).add("l2", long(l2)).add("l3", long(l3));
  JsonFields f;
  f.add("recdistill", std::string(RECDISTILL_VERSION_STRING))
      .add("commit", std::string(RECDISTILL_GIT_COMMIT))
      .add("build_type", std::string(RECDISTILL_BUILD_TYPE))
      .add("cxx_flags", std::string(RECDISTILL_CXX_FLAGS))
      .add("compiler", std::string(RECDISTILL_CXX_COMPILER))
      .add("cpu", cpu_model())
      .add("cpu_family_model", cpu_family_model())
      .add("simd", std::string(Eigen::SimdInstructionSetsInUse()))
      .raw("eigen_cache_sizes", json_object(caches))
      .add("hardware_threads", int(std::thread::hardware_concurrency()))
      .add("threads", threads)
      .add("model_code", model_code)
      .raw("libraries", json_object(lib));
  return json_object(f) + "\n";
}

}  // namespace recdistill::io
