// recdistill/io/bounded_archive.hpp: a Boost binary input archive that refuses length fields
// larger than the rest of its input.
//
// boost::archive::binary_iarchive trusts every string length and collection count it reads:
// it calls resize()/reserve() with the announced size before reading the elements, so a
// crafted file of a few hundred bytes (with a valid checksum: the checksum guards against
// corruption, not against crafted files) can make it allocate gigabytes, or 2^55 bytes
// (found by tests/fuzz/prepared_fuzz.cpp; reproducers in tests/fuzz/regressions/).
// BoundedBinaryIArchive reads the same format (files written by binary_oarchive), but checks
// each string length and collection count against the bytes still unread in the stream and
// throws archive_exception(input_stream_error) when it is larger. Every element takes at
// least one byte, so no legitimate file is refused, and an allocation is bounded by a small
// multiple of the input size.
//
// Use it exactly like binary_iarchive, over a stream whose buffer reports the unread bytes
// (std::istringstream does; in_avail() of a file buffer may undercount, so read the bytes
// into memory first, as the readers of verified containers do anyway).
//
// std::vector gets a load of its own (below, found by argument-dependent lookup), which knows
// the element type, so it checks more before Boost resizes: a vector of arithmetic elements
// (read as one block) must have count x sizeof(element) bytes left; any vector's count is at
// most io::kMaxArchiveElements; and count x sizeof(element) bytes must fit in what this
// process can hold (io/alloc_limits.hpp; an Error naming the archive's `name`). Without it a
// vector of 40-byte elements could ask for 40 times the archive's size.
#pragma once
#include <boost/archive/archive_exception.hpp>
#include <boost/archive/binary_iarchive_impl.hpp>
#include <boost/archive/detail/register_archive.hpp>
#include <boost/archive/impl/archive_serializer_map.ipp>
#include <boost/archive/impl/basic_binary_iarchive.ipp>
#include <boost/archive/impl/basic_binary_iprimitive.ipp>
#include <boost/serialization/collection_size_type.hpp>
#include <boost/serialization/throw_exception.hpp>
#include <boost/serialization/vector.hpp>
#include <cstdint>
#include <istream>
#include <string>
#include <type_traits>
#include <vector>

#include "recdistill/io/alloc_limits.hpp"

namespace recdistill::io {

// Derived from binary_iarchive_impl (not from binary_iarchive, which Boost says not to
// derive from) so that the archive's static polymorphism dispatches to the checks below.
class BoundedBinaryIArchive
    : public boost::archive::binary_iarchive_impl<BoundedBinaryIArchive, char, std::char_traits<char>> {
  using Base = boost::archive::binary_iarchive_impl<BoundedBinaryIArchive, char, std::char_traits<char>>;
  friend class boost::archive::detail::interface_iarchive<BoundedBinaryIArchive>;
  friend class boost::archive::basic_binary_iarchive<BoundedBinaryIArchive>;
  friend class boost::archive::basic_binary_iprimitive<BoundedBinaryIArchive, char, std::char_traits<char>>;
  friend class boost::archive::load_access;

 public:
  // `name` (the file the archive came from) names it in allocation errors.
  explicit BoundedBinaryIArchive(std::istream& is, unsigned flags = 0, std::string name = "archive")
      : Base(is, flags), is_(is), name_(std::move(name)) {
    init(flags);
  }
  const std::string& name() const { return name_; }

  // Bytes not yet read from the stream.
  uint64_t remaining() const {
    const std::streamsize n = is_.rdbuf()->in_avail();
    return n > 0 ? uint64_t(n) : 0;
  }

  template <class T>
  void load_override(T& t) {
    Base::load_override(t);
  }
  // Every collection (vector, map, ...) reads its element count through here first.
  void load_override(boost::serialization::collection_size_type& t) {
    Base::load_override(t);
    if (uint64_t(std::size_t(t)) > remaining()) refuse("collection count");
    check_limit(uint64_t(std::size_t(t)), kMaxArchiveElements, "a collection's element count", name_);
  }

  // Before a vector of `count` elements of `element_bytes` is sized (`block`: the elements are
  // read as one block of raw bytes, which must all be there).
  void check_vector(uint64_t count, uint64_t element_bytes, bool block) {
    const auto bytes = checked_mul(count, element_bytes);
    if (block && (!bytes || *bytes > remaining())) refuse("vector's elements");
    if (bytes && !allocation_needs_check(*bytes)) return;  // (no message built for small vectors)
    check_allocation(count, element_bytes, cat("a vector of ", count, " elements of ", element_bytes, " bytes"),
                     name_);
  }

  using Base::load;
  // Same wire format as basic_binary_iprimitive::load(std::string&), with the check.
  void load(std::string& s) {
    std::size_t l = 0;
    this->load(l);
    if (uint64_t(l) > remaining()) refuse("string length");
    s.resize(l);
    if (l > 0) load_binary(s.data(), l);
  }

 private:
  [[noreturn]] void refuse(const char* what) const {
    const std::string msg = std::string(what) + " larger than the rest of the input (a crafted or damaged archive)";
    boost::serialization::throw_exception(boost::archive::archive_exception(
        boost::archive::archive_exception::input_stream_error, msg.c_str()));
    __builtin_unreachable();
  }
  std::istream& is_;
  std::string name_;
};

}  // namespace recdistill::io

BOOST_SERIALIZATION_REGISTER_ARCHIVE(recdistill::io::BoundedBinaryIArchive)
BOOST_SERIALIZATION_USE_ARRAY_OPTIMIZATION(recdistill::io::BoundedBinaryIArchive)

// (After the registration above: the load below uses use_array_optimization<BoundedBinaryIArchive>.)
namespace recdistill::io {

// std::vector from a BoundedBinaryIArchive: the wire format and steps of Boost 1.74's own
// load (boost/serialization/vector.hpp), with BoundedBinaryIArchive::check_vector between
// reading the count and sizing the vector. Boost's split_free calls load(ar, t, version)
// unqualified, so this more specialised overload is found here by argument-dependent lookup.
template <class U, class Allocator>
  requires(!std::is_same_v<U, bool>)  // Boost's vector<bool> load stays (an overload of its own)
void load(BoundedBinaryIArchive& ar, std::vector<U, Allocator>& t, const unsigned int /*file_version*/) {
  namespace bs = boost::serialization;
  using Optimized = typename bs::use_array_optimization<BoundedBinaryIArchive>::template apply<
      typename std::remove_const<U>::type>::type;
  bs::collection_size_type count;
  ar >> BOOST_SERIALIZATION_NVP(count);  // load_override: at most the unread bytes
  ar.check_vector(uint64_t(std::size_t(count)), sizeof(U), Optimized::value);
  if constexpr (Optimized::value) {
    t.resize(count);
    unsigned int item_version = 0;
    if (BOOST_SERIALIZATION_VECTOR_VERSIONED(ar.get_library_version())) ar >> BOOST_SERIALIZATION_NVP(item_version);
    if (!t.empty()) ar >> bs::make_array<U, bs::collection_size_type>(static_cast<U*>(&t[0]), count);
  } else {
    bs::item_version_type item_version(0);
    if (bs::library_version_type(3) < ar.get_library_version()) ar >> BOOST_SERIALIZATION_NVP(item_version);
    t.reserve(count);
    bs::stl::collection_load_impl(ar, t, count, item_version);
  }
}

}  // namespace recdistill::io
