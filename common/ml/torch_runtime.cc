#include "common/ml/torch_runtime.h"

#include <cstdlib>

#include <dlfcn.h>

#include <mutex>

#include "common/util/error.h"

namespace sotto::ml {

namespace {

// The module's entry points (common/ml/torch_runtime_module.cc).
constexpr const char* kMakeImageModel = "sotto_torch_make_model";
constexpr const char* kSetTorchThreads = "sotto_torch_set_threads";

}  // namespace

std::filesystem::path torch_runtime_path() {
  constexpr const char* kModule = "libsotto_torch_runtime.so";
  if (const char* given = std::getenv("SOTTO_TORCH_RUNTIME"); given && *given) return given;
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) throw Error("cannot locate the running executable (/proc/self/exe): " + ec.message());
  const std::filesystem::path beside = exe.parent_path() / kModule;
  if (std::filesystem::exists(beside)) return beside;
  return (exe.parent_path() / SOTTO_RUNTIME_FROM_BIN / kModule).lexically_normal();
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
