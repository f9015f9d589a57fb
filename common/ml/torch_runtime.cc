#include "common/ml/torch_runtime.h"

#include <cstdlib>

#include <dlfcn.h>

#include <mutex>
#include <vector>

#include "common/util/error.h"

namespace sotto::ml {

namespace {

// The module's entry points (common/ml/torch_runtime_module.cc).
constexpr const char* kMakeImageModel = "sotto_torch_make_model";
constexpr const char* kSetTorchThreads = "sotto_torch_set_threads";

std::mutex& path_mutex() {
  static std::mutex mutex;
  return mutex;
}

std::filesystem::path& app_path() {
  static std::filesystem::path path;
  return path;
}

// The file of the executable or shared library this function is linked into.
std::filesystem::path this_library() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&this_library), &info) == 0 || !info.dli_fname) return {};
  std::error_code ec;
  const auto resolved = std::filesystem::canonical(info.dli_fname, ec);
  return ec ? std::filesystem::path(info.dli_fname) : resolved;
}

}  // namespace

void set_torch_runtime_path(std::filesystem::path path) {
  const std::lock_guard lock(path_mutex());
  app_path() = std::move(path);
}

std::filesystem::path torch_runtime_path() {
  constexpr const char* kModule = "libsotto_torch_runtime.so";
  {
    const std::lock_guard lock(path_mutex());
    if (!app_path().empty()) return app_path();
  }
  if (const char* given = std::getenv("SOTTO_TORCH_RUNTIME"); given && *given) return given;
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) throw Error("cannot locate the running executable (/proc/self/exe): " + ec.message());
  std::vector<std::filesystem::path> candidates{exe.parent_path() / kModule,
                                                (exe.parent_path() / SOTTO_RUNTIME_FROM_BIN / kModule).lexically_normal()};
  if (const auto library = this_library(); !library.empty() && library != exe) {
    candidates.push_back(library.parent_path() / "sotto" / kModule);  // code in a shared library: libsotto_client.so
  }
  for (const auto& candidate : candidates) {
    if (std::filesystem::exists(candidate)) return candidate;
  }
  return candidates.back();
}

const TorchRuntime& TorchRuntime::get() {
  static std::mutex mutex;
  static std::unique_ptr<TorchRuntime> runtime;
  const std::lock_guard lock(mutex);
  if (runtime) return *runtime;
  const std::filesystem::path path = torch_runtime_path();
  // Never closed: models it made may live until exit. RTLD_LOCAL keeps LibTorch's symbols out of the process's
  // global scope.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = dlerror();
    throw Error("cannot load LibTorch from " + path.string() + ": " + (why ? why : "unknown error") +
                ". It is built with the binaries (target sotto_torch_runtime): it sits next to them in the build "
                "tree and in lib/sotto/ once installed, or SOTTO_TORCH_RUNTIME names it");
  }
  auto symbol = [&](const char* name) {
    void* s = dlsym(handle, name);
    if (!s) throw Error(path.string() + " has no entry point " + name + ": rebuild it with this binary");
    return s;
  };
  runtime.reset(new TorchRuntime(reinterpret_cast<MakeImageModel>(symbol(kMakeImageModel)),
                                 reinterpret_cast<SetTorchThreads>(symbol(kSetTorchThreads))));
  return *runtime;
}

std::unique_ptr<ImageModel> TorchRuntime::make_model(const ModelSpec& spec, std::uint64_t init_seed) const {
  return std::unique_ptr<ImageModel>(make_(spec, init_seed));
}

void TorchRuntime::set_torch_threads(int threads) const { set_threads_(threads); }

}  // namespace sotto::ml
