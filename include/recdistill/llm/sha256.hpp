// recdistill/llm/sha256.hpp: SHA-256 of a request body (the answer cache's key), from OpenSSL's
// libcrypto (link OpenSSL::Crypto; the recdistill::llm CMake target does).
#pragma once
#include <openssl/evp.h>

#include <string>
#include <string_view>

#include "recdistill/core/error.hpp"

namespace recdistill::llm {

// Lower-case hex of SHA-256(bytes).
inline std::string sha256_hex(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr) != 1 || len != 32)
    fail("SHA-256 failed in OpenSSL's libcrypto");
  static const char* hex = "0123456789abcdef";
  std::string out(64, '0');
  for (unsigned i = 0; i < 32; ++i) {
    out[2 * i] = hex[md[i] >> 4];
    out[2 * i + 1] = hex[md[i] & 15];
  }
  return out;
}

}  // namespace recdistill::llm
