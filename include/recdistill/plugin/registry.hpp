// recdistill/plugin/registry.hpp: finds plugin libraries, checks their ABI and makes models
// and strategies by name (interface.hpp describes the edge).
//
// Folders are searched in order: those given by the caller (--plugin-dir), those in the
// environment variable RECDISTILL_PLUGIN_PATH (colon-separated), then the defaults the app
// passes (next to the executable in the build tree, and the install's plugin folder). Every
// lib*.so in them is loaded; the first library offering a name wins. A library is refused,
// never crashed on, when it cannot be loaded, lacks the entry points, reports another ABI
// version or another layout signature; the refusal names the file and what was found.
//
// Needs Boost.DLL (header-only; define BOOST_DLL_USE_STD_FS, link the dl library).
#pragma once
#ifndef BOOST_DLL_USE_STD_FS
#define BOOST_DLL_USE_STD_FS
#endif
#include <algorithm>
#include <boost/dll/shared_library.hpp>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "recdistill/core/error.hpp"
#include "recdistill/core/interrupt.hpp"
#include "recdistill/plugin/interface.hpp"

namespace recdistill::plugin {

namespace fs = std::filesystem;

constexpr const char* kPluginPathEnv = "RECDISTILL_PLUGIN_PATH";

struct SearchOptions {
  std::vector<std::string> dirs;           // from the command line, searched first
  bool use_env = true;                     // add RECDISTILL_PLUGIN_PATH's folders
  std::vector<std::string> default_dirs;   // searched last (the app's build/install folders)
};

struct SearchedFolder {
  fs::path path;
  std::string origin;  // "--plugin-dir", "RECDISTILL_PLUGIN_PATH" or "default"
  bool exists = false;
};

struct LoadedPlugin {
  fs::path file;
  uint32_t abi_version = 0;
  PluginInfo info;
  std::shared_ptr<boost::dll::shared_library> lib;
};

struct RefusedPlugin {
  fs::path file;
  std::string reason;
};

// Colon-separated folders of RECDISTILL_PLUGIN_PATH (empty entries skipped).
inline std::vector<std::string> env_plugin_dirs() {
  std::vector<std::string> out;
  const char* v = std::getenv(kPluginPathEnv);
  if (!v) return out;
  std::string s(v);
  size_t start = 0;
  while (start <= s.size()) {
    const size_t end = std::min(s.find(':', start), s.size());
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// f(), with what it throws copied into an Error of the app's own (bad_alloc passes; a stop
// request stays an Interrupted).
template <class F>
decltype(auto) guard(F&& f) {
  try {
    return f();
  } catch (const Interrupted& e) {
    throw Interrupted(e.signal, e.epoch, e.what(), e.run_dir);
  } catch (const Error& e) {
    throw Error(std::string(e.what()));
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(std::string(e.what()));
  }
}

// Forwards every call to a plugin's model, turning what it throws into the app's Error.
class GuardedModel final : public Model {
 public:
  explicit GuardedModel(std::shared_ptr<Model> inner) : m_(std::move(inner)) {}
  std::string name() const override { return guard([&] { return m_->name(); }); }
  std::string summary() const override { return guard([&] { return m_->summary(); }); }
  TrainResult train(const data::Dataset& data, const data::Split& split, const RunOptions& opt) override {
    return guard([&] { return m_->train(data, split, opt); });
  }
  std::vector<int64_t> rank(const data::Split& split, const std::vector<data::SplitCase>& cases) override {
    return guard([&] { return m_->rank(split, cases); });
  }
  std::string resolved_config() const override { return guard([&] { return m_->resolved_config(); }); }
  void save(const std::string& path) const override { guard([&] { m_->save(path); }); }
  void load(const std::string& path, const data::Dataset& data) override { guard([&] { m_->load(path, data); }); }
  void export_model(const std::string& path) const override { guard([&] { m_->export_model(path); }); }
  int32_t num_items() const override { return guard([&] { return m_->num_items(); }); }
  std::vector<std::vector<Recommendation>> recommend(const std::vector<std::vector<int32_t>>& histories, int k,
                                                     const std::vector<std::vector<int32_t>>& exclude) override {
    return guard([&] { return m_->recommend(histories, k, exclude); });
  }
  CasePredictions predict_cases(const data::Split& split, const std::vector<data::SplitCase>& cases, int k,
                                const std::vector<std::vector<int32_t>>& items) override {
    return guard([&] { return m_->predict_cases(split, cases, k, items); });
  }

 private:
  std::shared_ptr<Model> m_;
};

class Registry {
 public:
  explicit Registry(const SearchOptions& opt) {
    for (const auto& d : opt.dirs) add_folder(d, "--plugin-dir");
    if (opt.use_env)
      for (const auto& d : env_plugin_dirs()) add_folder(d, kPluginPathEnv);
    for (const auto& d : opt.default_dirs) add_folder(d, "default");
  }

  const std::vector<SearchedFolder>& folders() const { return folders_; }
  const std::vector<LoadedPlugin>& plugins() const { return plugins_; }
  const std::vector<RefusedPlugin>& refused() const { return refused_; }

  // The model `name` from the first library offering it; the returned object keeps that
  // library loaded. Fails naming the model and every folder searched when none offers it.
  // The model behind a proxy of the app's own: an exception a plugin throws becomes the app's
  // recdistill::Error while the library is still loaded (an exception object whose type lives
  // in a plugin must not outlive it: unwinding may release the model, and with it the library).
  std::shared_ptr<Model> create_model(const std::string& name, const io::ConfigLayers& cfg) const {
    return std::make_shared<GuardedModel>(create<Model>(name, cfg, "model", &PluginInfo::models,
                                                        "recdistill_plugin_create_model", "recdistill_plugin_destroy_model"));
  }
  std::shared_ptr<Strategy> create_strategy(const std::string& name,
                                            const io::ConfigLayers& cfg) const {
    return create<Strategy>(name, cfg, "strategy", &PluginInfo::strategies,
                            "recdistill_plugin_create_strategy", "recdistill_plugin_destroy_strategy");
  }

  // The keys the model `name` reads (its ComponentInfo), or nullptr when no plugin offers it.
  const std::vector<keys::KeyDoc>* model_keys(const std::string& name) const {
    for (const auto& p : plugins_)
      for (const auto& c : p.info.models)
        if (c.name == name) return &c.keys;
    return nullptr;
  }

  // The keys the strategy `name` reads (its ComponentInfo), or nullptr when no plugin offers it.
  const std::vector<keys::KeyDoc>* strategy_keys(const std::string& name) const {
    for (const auto& p : plugins_)
      for (const auto& c : p.info.strategies)
        if (c.name == name) return &c.keys;
    return nullptr;
  }

  // The library create_model(name) would use, or nullptr.
  const LoadedPlugin* model_provider(const std::string& name) const {
    for (const auto& p : plugins_)
      for (const auto& c : p.info.models)
        if (c.name == name) return &p;
    return nullptr;
  }

  // "  DIR (--plugin-dir)\n  DIR (default, missing)\n..." for messages.
  std::string folders_text() const {
    std::string s;
    for (const auto& f : folders_)
      s += cat("  ", f.path.string(), " (", f.origin, f.exists ? "" : ", missing", ")\n");
    if (s.empty()) s = "  (none)\n";
    return s;
  }

 private:
  void add_folder(const std::string& dir, const std::string& origin) {
    std::error_code ec;
    fs::path p = fs::weakly_canonical(fs::path(dir), ec);
    if (ec) p = fs::path(dir);
    for (const auto& f : folders_)
      if (f.path == p) return;  // the same folder twice (e.g. env and default)
    SearchedFolder sf{p, origin, fs::is_directory(p, ec)};
    folders_.push_back(sf);
    if (!sf.exists) return;
    std::vector<fs::path> files;
    for (fs::directory_iterator it(p, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string fname = it->path().filename().string();
      if (fname.rfind("lib", 0) == 0 && fname.size() > 6 && fname.ends_with(".so") &&
          it->is_regular_file(ec))
        files.push_back(it->path());
    }
    std::sort(files.begin(), files.end());  // a stable order: directory order is arbitrary
    for (const auto& f : files) load(f);
  }

  void load(const fs::path& file) {
    for (const auto& p : plugins_)
      if (p.file == file) return;
    auto lib = std::make_shared<boost::dll::shared_library>();
    std::error_code ec;
    lib->load(file, boost::dll::load_mode::default_mode, ec);
    if (ec) return refuse(file, cat("cannot be loaded: ", ec.message()));
    // The ABI version is read before anything else in the library is used.
    if (!lib->has("recdistill_plugin_abi_version"))
      return refuse(file, "not a recdistill plugin (it exports no recdistill_plugin_abi_version)");
    const uint32_t abi = lib->get<uint32_t()>("recdistill_plugin_abi_version")();
    if (abi != kPluginAbiVersion)
      return refuse(file, cat("plugin ABI version ", abi, ", but this recdistill expects ABI version ",
                              kPluginAbiVersion, "; rebuild the plugin against this recdistill"));
    for (const char* sym : {"recdistill_plugin_layout", "recdistill_plugin_describe",
                            "recdistill_plugin_create_model", "recdistill_plugin_destroy_model",
                            "recdistill_plugin_create_strategy", "recdistill_plugin_destroy_strategy"})
      if (!lib->has(sym)) return refuse(file, cat("ABI version ", abi, " but the entry point ", sym, " is missing"));
    const uint64_t layout = lib->get<uint64_t()>("recdistill_plugin_layout")();
    if (layout != layout_signature())
      return refuse(file, cat("built against recdistill headers whose structs differ from this "
                              "recdistill's (layout signature ", layout, ", expected ",
                              layout_signature(), ") although both say ABI version ", abi,
                              "; rebuild the plugin against this recdistill"));
    LoadedPlugin lp;
    lp.file = file;
    lp.abi_version = abi;
    try {
      lib->get<void(PluginInfo*)>("recdistill_plugin_describe")(&lp.info);
    } catch (const std::exception& e) {
      return refuse(file, cat("its description failed: ", e.what()));
    }
    if (lp.info.name.empty()) return refuse(file, "it describes itself without a name");
    lp.lib = std::move(lib);
    plugins_.push_back(std::move(lp));
  }

  void refuse(const fs::path& file, std::string reason) {
    refused_.push_back({file, std::move(reason)});
  }

  template <class Base>
  std::shared_ptr<Base> create(const std::string& name, const io::ConfigLayers& cfg,
                               const char* kind, std::vector<ComponentInfo> PluginInfo::*list,
                               const char* create_sym, const char* destroy_sym) const {
    std::string declined;  // the plugins that offer the name but not for this configuration
    for (const auto& p : plugins_) {
      const auto& offered = p.info.*list;
      if (std::none_of(offered.begin(), offered.end(), [&](const ComponentInfo& c) { return c.name == name; }))
        continue;
      using Create = Base*(const char*, const io::ConfigLayers*, std::string*);
      using Destroy = void(Base*);
      std::string error;
      Base* raw = p.lib->get<Create>(create_sym)(name.c_str(), &cfg, &error);
      if (!raw && error.starts_with(kDeclinedPrefix)) {
        declined += cat("  ", p.file.string(), " (plugin ", p.info.name, "): ",
                        error.substr(kDeclinedPrefix.size()), "\n");
        continue;
      }
      if (!raw) {
        if (error.empty()) error = cat("it lists the ", kind, " but did not create it");
        fail(p.file.string(), " (plugin ", p.info.name, "): cannot create ", kind, " '", name, "': ", error);
      }
      // The deleter owns a reference to the library: the code of the object's destructor and
      // methods stays mapped until the object is gone, whatever happens to the registry.
      auto destroy = &p.lib->get<Destroy>(destroy_sym);
      return std::shared_ptr<Base>(raw, [lib = p.lib, destroy](Base* b) { destroy(b); });
    }
    if (!declined.empty()) {
      std::string msg = cat("no plugin can run the ", kind, " '", name, "' with this configuration:\n", declined);
      for (const auto& r : refused_) msg += cat("refused: ", r.file.string(), ": ", r.reason, "\n");
      fail(msg.substr(0, msg.size() - 1));
    }
    std::string avail;
    for (const auto& p : plugins_)
      for (const auto& c : p.info.*list) avail += (avail.empty() ? "" : ", ") + c.name;
    std::string msg = cat("no plugin offers the ", kind, " '", name, "'");
    msg += avail.empty() ? cat(" (no ", kind, " is available at all)") : cat(" (available: ", avail, ")");
    msg += cat(". Folders searched:\n", folders_text());
    for (const auto& r : refused_) msg += cat("refused: ", r.file.string(), ": ", r.reason, "\n");
    msg += cat("Add a folder with --plugin-dir DIR or ", kPluginPathEnv, "=DIR1:DIR2");
    fail(msg);
  }

  std::vector<SearchedFolder> folders_;
  std::vector<LoadedPlugin> plugins_;
  std::vector<RefusedPlugin> refused_;
};

}  // namespace recdistill::plugin
