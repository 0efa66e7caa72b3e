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
#pragma once
#include <boost/archive/archive_exception.hpp>
#include <boost/archive/binary_iarchive_impl.hpp>
#include <boost/archive/detail/register_archive.hpp>
#include <boost/archive/impl/archive_serializer_map.ipp>
#include <boost/archive/impl/basic_binary_iarchive.ipp>
#include <boost/archive/impl/basic_binary_iprimitive.ipp>
#include <boost/serialization/collection_size_type.hpp>
#include <boost/serialization/throw_exception.hpp>
#include <cstdint>
#include <istream>
#include <string>

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
  explicit BoundedBinaryIArchive(std::istream& is, unsigned flags = 0) : Base(is, flags), is_(is) {
    init(flags);
  }

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
};

}  // namespace recdistill::io

BOOST_SERIALIZATION_REGISTER_ARCHIVE(recdistill::io::BoundedBinaryIArchive)
BOOST_SERIALIZATION_USE_ARRAY_OPTIMIZATION(recdistill::io::BoundedBinaryIArchive)
