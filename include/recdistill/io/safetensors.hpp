// recdistill/io/safetensors.hpp: model weights in the safetensors layout
// (https://github.com/huggingface/safetensors), float32 only.
//
// A file is: 8 bytes, little-endian u64 N; N bytes of JSON header
//   {"__metadata__": {"key": "value", ...},
//    "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
// padded with spaces; then the data buffer, offsets relative to its start.
//
// Files come from elsewhere (PyTorch, Hugging Face tools), so the reader checks the structure
// before it reads or allocates anything from the data: the header length against 100 MB and
// the file size; the header as JSON (simdjson); unique names; dtype F32; shapes of non-negative
// integers of at most io::kMaxTensorElements elements; data_offsets matching the shape; offsets
// that tile the data buffer exactly (no hole, no overlap); the total size; the file's size
// against what this process can hold (docs/limits.md). Every error names the file, the tensor
// and what was expected and found (docs/weights.md).
//
// The writer emits what the Python library writes for float32 tensors (compact JSON,
// `__metadata__` first, each entry's keys in the order dtype, shape, data_offsets, the header
// padded with spaces to a multiple of 8), in the order the tensors are given. Python's
// save_file orders tensors by name, so sorted input gives byte-identical files.
#pragma once
#include <simdjson.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "recdistill/core/error.hpp"
#include "recdistill/io/alloc_limits.hpp"
#include "recdistill/io/atomic_file.hpp"
#include "recdistill/io/container.hpp"  // read_file_bytes

namespace recdistill::io {

// Tensor bytes are copied as they are: both the format and the hosts we build for are little-endian.
static_assert(std::endian::native == std::endian::little, "safetensors.hpp assumes a little-endian host");

struct SafeTensor {
  std::string name;
  std::vector<int64_t> shape;  // [] = a scalar
  std::vector<float> data;     // row-major, product(shape) values
};

struct SafeTensors {
  std::map<std::string, std::string> metadata;  // `__metadata__` (string -> string)
  std::vector<SafeTensor> tensors;              // file order (header order)
  const SafeTensor* find(std::string_view name) const {
    for (const auto& t : tensors)
      if (t.name == name) return &t;
    return nullptr;
  }
};

// The Python library refuses headers above 100 MB; so do we (and never write one).
constexpr uint64_t kSafetensorsMaxHeader = 100'000'000;

namespace detail {

// One tensor of a checked header: its place in the data buffer.
struct SafeTensorEntry {
  std::string name;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // bytes, relative to the data buffer
};

struct SafeTensorsHeader {
  std::map<std::string, std::string> metadata;
  std::vector<SafeTensorEntry> entries;  // header order
};

inline const char* st_json_type(simdjson::dom::element_type t) {
  using T = simdjson::dom::element_type;
  switch (t) {
    case T::ARRAY: return "an array";
    case T::OBJECT: return "an object";
    case T::INT64: case T::UINT64: return "an integer";
    case T::DOUBLE: return "a non-integer number";
    case T::STRING: return "a string";
    case T::BOOL: return "a boolean";
    case T::NULL_VALUE: return "null";
  }
  return "a value";
}

// The value as written in the file (for messages), cut to 40 characters.
inline std::string st_token(simdjson::dom::element e) {
  std::string s = simdjson::minify(e);
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

// A non-negative integer: simdjson gives non-negative literals as INT64 below 2^63 and as
// UINT64 above.
inline bool st_uint(simdjson::dom::element e, uint64_t& out) {
  if (e.type() == simdjson::dom::element_type::UINT64) return !e.get_uint64().get(out);
  int64_t v = 0;
  if (e.type() != simdjson::dom::element_type::INT64 || e.get_int64().get(v) || v < 0) return false;
  out = uint64_t(v);
  return true;
}

inline std::string st_shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Bytes 0..7: the header length N, checked against the limit and the file size.
inline uint64_t st_header_length(const char* first8, uint64_t file_size, const std::string& path) {
  uint64_t n = 0;
  std::memcpy(&n, first8, 8);
  if (n > kSafetensorsMaxHeader)
    fail(path, ": not a valid safetensors file: header length ", n, " exceeds the limit of ",
         kSafetensorsMaxHeader, " bytes (100 MB)");
  if (n > file_size - 8)
    fail(path, ": not a valid safetensors file: header length ", n, " is beyond the file (",
         file_size, " bytes, so at most ", file_size - 8, " bytes of header)");
  if (n < 2) fail(path, ": not a valid safetensors file: header length ", n, ", expected a JSON object");
  return n;
}

// Parses the header JSON and checks every entry against the file size (8 + N + buffer).
inline SafeTensorsHeader st_parse_header(std::string_view text, uint64_t file_size, const std::string& path) {
  namespace dom = simdjson::dom;
  const std::string where = path + ": safetensors header";
  // As the format says (and the Python library checks): the header starts with '{'.
  if (text.empty() || text[0] != '{')
    fail(where, ": expected a JSON object starting with '{', found ",
         text.empty() ? std::string("nothing")
         : text[0] >= 0x20 && text[0] < 0x7f ? cat("'", text[0], "'") : cat("byte ", int(uint8_t(text[0]))));
  dom::parser parser;
  const simdjson::padded_string json(text.data(), text.size());
  dom::element root;
  if (auto e = parser.parse(json).get(root)) fail(where, ": invalid JSON (", simdjson::error_message(e), ")");
  dom::object top;
  if (root.get_object().get(top)) fail(where, ": expected a JSON object, found ", st_json_type(root.type()));

  const uint64_t buffer_avail = file_size - 8 - text.size();
  SafeTensorsHeader h;
  std::set<std::string, std::less<>> names;
  bool have_metadata = false;
  for (auto field : top) {
    const std::string_view key = field.key;
    if (key == "__metadata__") {
      if (have_metadata) fail(where, ": duplicate key '__metadata__'");
      have_metadata = true;
      dom::object meta;
      if (field.value.get_object().get(meta))
        fail(where, ": '__metadata__': expected an object of string -> string, found ",
             st_json_type(field.value.type()));
      for (auto m : meta) {
        std::string_view v;
        if (m.value.get_string().get(v))
          fail(where, ": '__metadata__': key '", m.key, "': expected a string value, found ",
               st_json_type(m.value.type()), " ", st_token(m.value));
        if (!h.metadata.emplace(std::string(m.key), std::string(v)).second)
          fail(where, ": '__metadata__': duplicate key '", m.key, "'");
      }
      continue;
    }
    // simdjson keeps every occurrence of a repeated key: refuse them here.
    if (!names.emplace(key).second) fail(where, ": duplicate tensor name '", key, "'");
    const std::string at = cat(where, ": tensor '", key, "'");
    dom::object info;
    if (field.value.get_object().get(info))
      fail(at, ": expected an object with dtype, shape and data_offsets, found ",
           st_json_type(field.value.type()));
    dom::element dtype, shape, offsets;
    bool has_dtype = false, has_shape = false, has_offsets = false;
    for (auto f : info) {
      bool* seen = f.key == "dtype" ? &has_dtype : f.key == "shape" ? &has_shape
                   : f.key == "data_offsets" ? &has_offsets : nullptr;
      if (!seen) fail(at, ": unexpected key '", f.key, "' (expected dtype, shape, data_offsets)");
      if (*seen) fail(at, ": duplicate key '", f.key, "'");
      *seen = true;
      (f.key == "dtype" ? dtype : f.key == "shape" ? shape : offsets) = f.value;
    }
    if (!has_dtype || !has_shape || !has_offsets)
      fail(at, ": missing key '", !has_dtype ? "dtype" : !has_shape ? "shape" : "data_offsets",
           "' (expected dtype, shape, data_offsets)");

    std::string_view dt;
    if (dtype.get_string().get(dt))
      fail(at, ": dtype: expected a string such as \"F32\", found ", st_json_type(dtype.type()));
    if (dt != "F32")
      fail(at, ": dtype is ", dt, ": only F32 tensors are read (convert the weights to float32 ",
           "before saving, e.g. {k: v.float() for k, v in state_dict.items()})");

    SafeTensorEntry t;
    t.name = std::string(key);
    dom::array dims;
    if (shape.get_array().get(dims))
      fail(at, ": shape: expected an array of non-negative integers, found ", st_json_type(shape.type()));
    for (auto d : dims) {
      uint64_t v = 0;
      if (!st_uint(d, v) || v > uint64_t(INT64_MAX))
        fail(at, ": shape: expected non-negative integers, found ", st_json_type(d.type()), " ", st_token(d));
      t.shape.push_back(int64_t(v));
    }
    // elements * 4 must fit in 64 bits (a zero dimension makes any shape empty).
    uint64_t elements = 1;
    if (std::find(t.shape.begin(), t.shape.end(), 0) != t.shape.end()) elements = 0;
    for (auto v : t.shape) {
      if (elements != 0 && uint64_t(v) > (UINT64_MAX / 4) / elements)
        fail(at, ": shape ", st_shape_text(t.shape), " has too many elements (overflows 64 bits)");
      elements *= uint64_t(v);
    }
    if (elements > kMaxTensorElements)
      fail(at, ": shape ", st_shape_text(t.shape), " has ", elements, " elements, above the limit of ",
           kMaxTensorElements, " for one tensor (docs/limits.md)");

    dom::array off;
    uint64_t ends[2] = {0, 0};
    size_t k = 0;
    if (offsets.get_array().get(off))
      fail(at, ": data_offsets: expected [begin, end], found ", st_json_type(offsets.type()));
    for (auto o : off) {
      if (k == 2 || !st_uint(o, ends[k]))
        fail(at, ": data_offsets: expected [begin, end] (two non-negative integers), found ", st_token(offsets));
      ++k;
    }
    if (k != 2) fail(at, ": data_offsets: expected [begin, end] (two non-negative integers), found ", st_token(offsets));
    t.begin = ends[0];
    t.end = ends[1];
    if (t.end < t.begin) fail(at, ": data_offsets [", t.begin, ", ", t.end, "]: end is before begin");
    if (t.end - t.begin != elements * 4)
      fail(at, ": data_offsets [", t.begin, ", ", t.end, "] hold ", t.end - t.begin, " bytes, but shape ",
           st_shape_text(t.shape), " of F32 needs ", elements, " x 4 = ", elements * 4, " bytes");
    if (t.end > buffer_avail)
      fail(at, ": data_offsets [", t.begin, ", ", t.end, "] extend past the end of the file (the data ",
           "buffer after the ", text.size(), "-byte header has ", buffer_avail, " bytes; truncated file?)");
    h.entries.push_back(std::move(t));
  }

  // Sorted by begin, the tensors must tile [0, buffer size) exactly.
  std::vector<const SafeTensorEntry*> order;
  for (const auto& t : h.entries) order.push_back(&t);
  std::stable_sort(order.begin(), order.end(), [](const SafeTensorEntry* a, const SafeTensorEntry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t pos = 0;
  const SafeTensorEntry* prev = nullptr;
  for (const auto* t : order) {
    if (t->begin > pos)
      fail(where, ": bytes [", pos, ", ", t->begin, ") of the data buffer belong to no tensor (a hole ",
           prev ? cat("between tensor '", prev->name, "' and ") : std::string("before "), "tensor '", t->name,
           "'); expected contiguous data_offsets");
    if (t->begin < pos)
      fail(where, ": tensor '", t->name, "' (data_offsets [", t->begin, ", ", t->end, "]) overlaps tensor '",
           prev->name, "' (data_offsets [", prev->begin, ", ", prev->end, "])");
    pos = t->end;
    prev = t;
  }
  if (pos != buffer_avail)
    fail(path, ": not a valid safetensors file: the file has ", file_size, " bytes, but 8 + header ",
         text.size(), " + tensor data ", pos, " = ", 8 + text.size() + pos,
         pos < buffer_avail ? " (trailing bytes after the last tensor)" : "");
  return h;
}

// Appends s as a JSON string, escaped as serde_json (the Python library's writer) does.
inline void st_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char c : s) {
    const auto u = uint8_t(c);
    if (c == '"') out += "\\\"";
    else if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c == '\b') out += "\\b";
    else if (c == '\f') out += "\\f";
    else if (u < 0x20) {
      static const char* hex = "0123456789abcdef";
      out += "\\u00";
      out += hex[u >> 4];
      out += hex[u & 15];
    } else {
      out += c;
    }
  }
  out += '"';
}

}  // namespace detail

// The whole file as bytes. Fails (recdistill::Error) on a tensor whose data does not match its
// shape, a repeated or reserved name, or a header that the reader would refuse as too long.
inline std::string encode_safetensors(const SafeTensors& st) {
  std::string h = "{";
  if (!st.metadata.empty()) {
    h += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : st.metadata) {
      if (!first) h += ',';
      first = false;
      detail::st_json_string(h, k);
      h += ':';
      detail::st_json_string(h, v);
    }
    h += "},";
  }
  std::set<std::string_view> names;
  uint64_t offset = 0;
  for (const auto& t : st.tensors) {
    if (t.name == "__metadata__") fail("safetensors: '__metadata__' cannot name a tensor");
    if (!names.insert(t.name).second) fail("safetensors: duplicate tensor name '", t.name, "'");
    uint64_t n = 1;
    for (auto d : t.shape) {
      if (d < 0) fail("safetensors: tensor '", t.name, "': negative dimension in shape ", detail::st_shape_text(t.shape));
      n *= uint64_t(d);
    }
    if (n != t.data.size())
      fail("safetensors: tensor '", t.name, "': shape ", detail::st_shape_text(t.shape), " has ", n,
           " elements but the tensor holds ", t.data.size(), " values");
    detail::st_json_string(h, t.name);
    h += ":{\"dtype\":\"F32\",\"shape\":[";
    for (size_t i = 0; i < t.shape.size(); ++i) h += (i ? "," : "") + std::to_string(t.shape[i]);
    h += "],\"data_offsets\":[" + std::to_string(offset) + ",";
    offset += 4 * n;
    h += std::to_string(offset) + "]},";
  }
  if (h.back() == ',') h.pop_back();
  h += '}';
  h.append((8 - h.size() % 8) % 8, ' ');  // the data buffer starts 8-byte aligned
  if (h.size() > kSafetensorsMaxHeader)
    fail("safetensors: the header would have ", h.size(), " bytes, above the readers' limit of ",
         kSafetensorsMaxHeader);
  std::string out(8, '\0');
  const uint64_t n = h.size();
  std::memcpy(out.data(), &n, 8);
  out.reserve(8 + h.size() + offset);
  out += h;
  for (const auto& t : st.tensors)
    if (!t.data.empty()) out.append(reinterpret_cast<const char*>(t.data.data()), t.data.size() * sizeof(float));
  return out;
}

// Writes the file atomically (a crash leaves the previous file or the new one).
inline void write_safetensors(const std::string& path, const SafeTensors& st) {
  write_file_atomic(path, encode_safetensors(st));
}

// Parses a whole file held in memory; `path` names it in messages.
inline SafeTensors parse_safetensors(std::string_view bytes, const std::string& path) {
  if (bytes.size() < 8)
    fail(path, ": not a valid safetensors file: ", bytes.size(), " bytes, expected at least the 8-byte ",
         "header length (truncated file?)");
  const uint64_t n = detail::st_header_length(bytes.data(), bytes.size(), path);
  auto h = detail::st_parse_header(bytes.substr(8, n), bytes.size(), path);
  SafeTensors st;
  st.metadata = std::move(h.metadata);
  // The tensors are copies of the data buffer (checked above to tile it): its size once more.
  check_allocation(uint64_t(bytes.size() - 8 - n), "the tensors' data", path);
  const char* buffer = bytes.data() + 8 + n;
  for (auto& e : h.entries) {
    SafeTensor t{std::move(e.name), std::move(e.shape), std::vector<float>((e.end - e.begin) / 4)};
    if (!t.data.empty()) std::memcpy(t.data.data(), buffer + e.begin, e.end - e.begin);
    st.tensors.push_back(std::move(t));
  }
  return st;
}

// Reads a file whole and parses it (the buffer is the file's own size, checked against what
// this process can hold before it is allocated, io/alloc_limits.hpp; parse_safetensors checks
// every length against it before copying a tensor).
inline SafeTensors read_safetensors(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail(path, ": is a directory, expected a safetensors file");
  return parse_safetensors(read_file_bytes(path), path);
}

}  // namespace recdistill::io
