// recdistill/llm/llm.hpp: the LLM family: the client of OpenAI-compatible endpoints and its
// answer cache (docs/llm.md). Link the CMake target recdistill::llm (libcurl, OpenSSL's libcrypto).
#pragma once
#include "recdistill/llm/cache.hpp"
#include "recdistill/llm/client.hpp"
#include "recdistill/llm/config.hpp"
#include "recdistill/llm/files.hpp"
#include "recdistill/llm/protocol.hpp"
#include "recdistill/llm/sha256.hpp"
