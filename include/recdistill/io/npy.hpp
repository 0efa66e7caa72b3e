// recdistill/io/npy.hpp: strict reader and writer for NumPy .npy arrays (format 1.0 / 2.0).
//
// Only little-endian float32/float64/int32/int64 in C order are accepted; anything else is
// an error naming the file and what was found. The header is parsed field by field and the
// payload size is checked against the shape before any data is read; an array has at most
// io::kMaxTensorElements elements (docs/limits.md).
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <new>
#include <string>
#include <vector>

#include "recdistill/core/error.hpp"
#include "recdistill/io/alloc_limits.hpp"

namespace recdistill::io {

struct NpyArray {
  std::string dtype;         // "<f4", "<f8", "<i4", "<i8"
  std::vector<int64_t> shape;
  std::vector<char> bytes;   // raw little-endian payload
  // The element count. A shape with a 0 holds nothing, whatever its other entries (parse_npy
  // bounds those only when the product is not 0: a fuzz finding overflowed (1e12, 1e12, 0));
  // any other overflow is an error, never undefined behaviour.
  int64_t count() const {
    if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
    int64_t n = 1;
    for (auto s : shape)
      if (__builtin_mul_overflow(n, s, &n)) fail("npy: the shape's element count overflows 64 bits");
    return n;
  }
  // Converts to T element by element (the dtype is one of the four parse_npy accepts).
  template <class T>
  std::vector<T> as() const {
    if (dtype == "<f8") return convert<double, T>();
    if (dtype == "<f4") return convert<float, T>();
    if (dtype == "<i8") return convert<int64_t, T>();
    return convert<int32_t, T>();
  }

 private:
  template <class Src, class T>
  std::vector<T> convert() const {
    std::vector<T> out(static_cast<size_t>(count()));
    for (size_t i = 0; i < out.size(); ++i) {
      Src v;
      std::memcpy(&v, bytes.data() + sizeof(Src) * i, sizeof(Src));
      out[i] = T(v);
    }
    return out;
  }
};

inline NpyArray parse_npy(const std::string& data, const std::string& path) {
  auto bad = [&](const std::string& what) -> NpyArray {
    fail(path, ": not a valid .npy file: ", what);
  };
  if (data.size() < 10 || data.compare(0, 6, "\x93NUMPY") != 0) return bad("missing magic \\x93NUMPY");
  const int major = uint8_t(data[6]);
  size_t header_len = 0, pos = 0;
  if (major == 1) {
    header_len = uint8_t(data[8]) | (size_t(uint8_t(data[9])) << 8);
    pos = 10;
  } else if (major == 2 || major == 3) {
    if (data.size() < 12) return bad("truncated header");
    header_len = uint8_t(data[8]) | (size_t(uint8_t(data[9])) << 8) |
                 (size_t(uint8_t(data[10])) << 16) | (size_t(uint8_t(data[11])) << 24);
    pos = 12;
  } else {
    return bad(cat("unsupported format version ", major));
  }
  if (header_len > data.size() - pos) return bad("header longer than the file");
  const std::string h = data.substr(pos, header_len);
  pos += header_len;
  auto field = [&](const std::string& key) -> std::string {
    const auto k = h.find("'" + key + "'");
    if (k == std::string::npos) bad(cat("header has no '", key, "' field"));
    auto v = h.find(':', k);
    if (v == std::string::npos) bad(cat("header field '", key, "' has no value"));
    ++v;
    while (v < h.size() && h[v] == ' ') ++v;
    return h.substr(v);
  };
  NpyArray a;
  std::string d = field("descr");
  if (d.size() < 5 || d[0] != '\'') return bad("descr is not a string");
  a.dtype = d.substr(1, d.find('\'', 1) - 1);
  if (a.dtype == "|i1" || a.dtype == "<f2") return bad(cat("unsupported dtype ", a.dtype));
  if (a.dtype != "<f4" && a.dtype != "<f8" && a.dtype != "<i4" && a.dtype != "<i8")
    return bad(cat("expected dtype <f4, <f8, <i4 or <i8, found ", a.dtype));
  if (field("fortran_order").rfind("False", 0) != 0) return bad("fortran_order arrays are not supported");
  std::string s = field("shape");
  if (s.empty() || s[0] != '(') return bad("shape is not a tuple");
  const auto close = s.find(')');
  if (close == std::string::npos) return bad("shape tuple is not closed");
  std::string inner = s.substr(1, close - 1);
  size_t i = 0;
  while (i < inner.size()) {
    while (i < inner.size() && (inner[i] == ' ' || inner[i] == ',')) ++i;
    if (i >= inner.size()) break;
    size_t j = i;
    while (j < inner.size() && inner[j] >= '0' && inner[j] <= '9') ++j;
    if (j == i || j - i > 12) return bad(cat("bad shape entry in '", s.substr(0, close + 1), "'"));
    a.shape.push_back(std::stoll(inner.substr(i, j - i)));
    i = j;
  }
  const int64_t elem = (a.dtype == "<f8" || a.dtype == "<i8") ? 8 : 4;
  int64_t n = 1;
  if (std::find(a.shape.begin(), a.shape.end(), 0) != a.shape.end()) n = 0;
  for (auto v : a.shape) {
    if (n != 0 && uint64_t(v) > kMaxTensorElements / uint64_t(n))
      return bad(cat("shape ", s.substr(0, close + 1), " has more than ", kMaxTensorElements,
                     " elements, the limit of one array (docs/limits.md)"));
    if (n != 0) n *= v;
  }
  if (int64_t(data.size() - pos) != n * elem)
    return bad(cat("payload has ", data.size() - pos, " bytes, shape needs ", n * elem));
  a.bytes.assign(data.begin() + pos, data.end());
  return a;
}

inline NpyArray read_npy(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail(path, ": is a directory, expected a file");
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) fail(path, ": cannot open file");
  // One read of the known size (an istreambuf_iterator copy runs at a few hundred MB/s); the
  // size is checked against what this process can hold first (io/alloc_limits.hpp).
  const std::streamoff size = f.tellg();
  if (size < 0) fail(path, ": cannot determine the file size");
  check_file_read(uint64_t(size), path);
  std::string data;
  try {
    data.assign(size_t(size), '\0');
  } catch (const std::bad_alloc&) {
    fail(path, ": cannot allocate ", human_bytes(uint64_t(size)), " to read the file");
  }
  f.seekg(0);
  if (!f.read(data.data(), size)) fail(path, ": read error");
  return parse_npy(data, path);
}

}  // namespace recdistill::io
