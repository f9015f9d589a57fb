// libsotto_torch_runtime.so: the entry points through which TorchRuntime (torch_runtime.h) reaches common/ml.
// C linkage for stable names; sotto::Error and LibTorch's errors propagate to the caller as exceptions (the
// module and the binaries share one C++ runtime).
#include <cstdint>
#include <string>

#include "common/ml/image_model.h"

extern "C" {

__attribute__((visibility("default"))) sotto::ml::ImageModel* sotto_torch_make_model(
    const sotto::ml::ModelSpec& spec, std::uint64_t init_seed) {
  return sotto::ml::make_model(spec, init_seed).release();
}

__attribute__((visibility("default"))) void sotto_torch_set_threads(int threads) {
  sotto::ml::set_torch_threads(threads);
}

}
