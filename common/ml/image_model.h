// ImageModel: a LibTorch image classifier behind a header that does not include LibTorch.
//
// The binaries, the aggregator's evaluator and the simulator train and evaluate through this interface, so only
// the few .cc files under common/ml compile <torch/torch.h>. A model exchanges its state as ModelParameters
// (named_parameters() then buffers, in registration order); load() checks names, dtypes and shapes and says which
// one differs. Training and evaluation use the calling thread's LibTorch thread settings (set_torch_threads).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/data/image_dataset.h"
#include "common/ml/architectures.h"
#include "common/ml/model_spec.h"
#include "common/ml/training_plan.h"
#include "common/model/parameters.h"

namespace sotto::ml {

class ImageModel {
 public:
  virtual ~ImageModel() = default;

  // Current parameters and buffers, exact copies of the module's tensors.
  virtual model::ModelParameters parameters() const = 0;
  // parameters() minus `base` (the model loaded before training), bit for bit model::subtract(parameters(), base)
  // without the intermediate copy; throws sotto::Error when base's layout differs from the model's.
  virtual model::ModelParameters delta_from(const model::ModelParameters& base) const = 0;
  // Overwrites the module's parameters and buffers; throws sotto::Error on any name, dtype or shape mismatch.
  virtual void load(const model::ModelParameters& params) = 0;
  // Trains on the given examples (indices into `data`) with the plan; deterministic for the plan's seed. Before each
  // batch it asks next_batch (when given) and stops, returning the metrics so far, when it says false.
  virtual TrainMetrics train(const data::ImageDataset& data, std::span<const std::uint32_t> indices,
                             const TrainingPlan& plan, const std::function<bool()>& next_batch = {}) = 0;
  // Mean cross-entropy and accuracy on the first max_examples examples (all when 0): combine_batches of
  // evaluate_batches(data, 0, n).
  virtual EvalMetrics evaluate(const data::ImageDataset& data, std::size_t max_examples = 0) = 0;
  // The per-batch sums over examples [begin, end), in batches of kEvalBatch from `begin`. With `begin` a multiple
  // of kEvalBatch, the batches are exactly those evaluate() forms, so ranges evaluated on different threads and
  // combined in order give evaluate()'s result bit for bit.
  virtual std::vector<EvalBatch> evaluate_batches(const data::ImageDataset& data, std::size_t begin,
                                                  std::size_t end) = 0;
  // The logits of every image of `data` (its labels unused) in eval mode: size() rows of `classes` floats, image
  // after image. Throws sotto::Error for images that are not 28x28.
  virtual std::vector<float> logits(const data::ImageDataset& data) = 0;
  // Writes the model with its current state in its own format: a TorchScript model as a TorchScript file that
  // PyTorch's torch.jit.load reads back, a built-in one as LibTorch's torch::save archive.
  virtual void save(const std::filesystem::path& file) const = 0;
};

// Examples per evaluation batch: small batches keep activations in cache (on one core, batches of 64 evaluate
// ~2.5x faster than batches of 1000; BatchNorm uses running statistics in eval mode, so results do not depend on it).
inline constexpr std::size_t kEvalBatch = 64;
// The side of the greyscale images every model here takes (Fashion-MNIST's 28x28), built-in or TorchScript.
inline constexpr std::int64_t kImageSide = 28;

// Builds a freshly initialised model, seeded so that every process building it with the same seed gets the same
// weights. Throws sotto::Error for an unknown architecture, listing the known ones.
std::unique_ptr<ImageModel> make_image_model(const std::string& architecture, std::uint64_t init_seed);

// Loads a classifier authored in PyTorch and saved with torch.jit.script(module).save(FILE): forward() takes
// normalised images [B, 1, 28, 28] (float32) and returns logits [B, classes]. Its weights, as saved, are the initial
// model. Throws sotto::Error naming the file when it cannot be read, is not TorchScript, has no forward(), or was
// saved with torch.jit.trace while its behaviour depends on train/eval mode (tracing bakes the mode in: its
// dropout stays on after eval()).
std::unique_ptr<ImageModel> load_torchscript_model(const std::filesystem::path& file);

// The model `spec` names: load_torchscript_model for a TorchScript file (init_seed unused: the file holds the
// weights), else make_image_model.
std::unique_ptr<ImageModel> make_model(const ModelSpec& spec, std::uint64_t init_seed);

// Limits LibTorch's intra-op threads, and OpenBLAS's threads when LibTorch calls OpenBLAS (clients in separate
// processes on a small machine want 1).
void set_torch_threads(int threads);

// Why training models on several threads of this process at once would be unsafe, or nothing. The known case:
// the sequential OpenBLAS build (Debian's libopenblas0-serial) has no locking, and two threads calling it at once
// corrupt each other's results.
std::optional<std::string> concurrent_training_hazard();

}  // namespace sotto::ml
