// A plugin that claims another ABI version (tests/plugins/CMakeLists.txt). The host must read
// the version, refuse the library and touch nothing else: every other entry point aborts.
#include <cstdint>
#include <cstdlib>

#include "recdistill/plugin/interface.hpp"

extern "C" RECDISTILL_PLUGIN_EXPORT uint32_t recdistill_plugin_abi_version() {
  return recdistill::plugin::kPluginAbiVersion + 1;
}
extern "C" RECDISTILL_PLUGIN_EXPORT uint64_t recdistill_plugin_layout() { std::abort(); }
extern "C" RECDISTILL_PLUGIN_EXPORT void recdistill_plugin_describe(recdistill::plugin::PluginInfo*) {
  std::abort();
}
extern "C" RECDISTILL_PLUGIN_EXPORT void* recdistill_plugin_create_model(const char*, const void*, void*) {
  std::abort();
}
extern "C" RECDISTILL_PLUGIN_EXPORT void recdistill_plugin_destroy_model(void*) { std::abort(); }
extern "C" RECDISTILL_PLUGIN_EXPORT void* recdistill_plugin_create_strategy(const char*, const void*, void*) {
  std::abort();
}
extern "C" RECDISTILL_PLUGIN_EXPORT void recdistill_plugin_destroy_strategy(void*) { std::abort(); }
