// TorchRuntime: common/ml's LibTorch models, loaded from a shared module the first time a process needs one.
//
// Debian's libtorch links ~290 shared libraries (OpenCV, Qt, FFmpeg, GDAL, ...): a process linked against it
// spends ~0.5 s of CPU and ~160 MiB before main() runs. sotto-client and sotto-aggregator are not linked against
// it. They load libsotto_torch_runtime.so, built next to them, when they first build a model: a client once it
// is admitted to a round, the aggregator after it has started listening. A client that checks in, waits for its
// cohort or is told to come back later therefore starts in milliseconds and stays small. sotto-sim, the
// benchmarks and the ml tests train all the time and link common/ml directly.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "common/ml/image_model.h"

namespace sotto::ml {

class TorchRuntime {
 public:
  // The process's runtime, loaded on the first call from torch_runtime_path() (later calls return it at once;
  // thread-safe). Throws sotto::Error naming the module and the loader's reason when it cannot be loaded; a later
  // call tries again.
  static const TorchRuntime& get();

  // As ml::make_model and ml::set_torch_threads (image_model.h).
  std::unique_ptr<ImageModel> make_model(const ModelSpec& spec, std::uint64_t init_seed) const;
  void set_torch_threads(int threads) const;

 private:
  using MakeImageModel = ImageModel* (*)(const ModelSpec&, std::uint64_t);
  using SetTorchThreads = void (*)(int);
  TorchRuntime(MakeImageModel make, SetTorchThreads set_threads) : make_(make), set_threads_(set_threads) {}

  MakeImageModel make_;
  SetTorchThreads set_threads_;
};

// Where libsotto_torch_runtime.so is: the path the app set (set_torch_runtime_path), else $SOTTO_TORCH_RUNTIME; else
// the first of these that exists: beside the running executable (the build tree), where `cmake --install` puts it
// relative to the executable (lib/sotto/), and relative to the library this code is linked into (lib/sotto/ beside
// an installed libsotto_client.so, for an app or a Python process that is not Sotto's own binary). With none, the
// last candidate (the load then names it).
std::filesystem::path torch_runtime_path();
// The app's path to the module, for the process (empty: the search above). Takes effect at the first load only.
void set_torch_runtime_path(std::filesystem::path path);

}  // namespace sotto::ml
