// TorchNet: a LibTorch network as the shared classifier code (torch_classifier.cc) trains and evaluates it,
// whatever format it came in: a built-in torch::nn::Module (image_model.cc) or a TorchScript file
// (torchscript_model.cc). Another format that LibTorch can run (an exported program, say) implements this and
// gets training, evaluation, FedProx and the exchange of parameters unchanged. Internal to common/ml: it includes
// LibTorch.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <memory>
#include <mutex>
#include <vector>

#include "common/ml/image_model.h"
#include "common/ml/torch_bridge.h"

namespace sotto::ml {

class TorchNet {
 public:
  virtual ~TorchNet() = default;
  // Logits [B, classes] for normalised images [B, 1, 28, 28].
  virtual torch::Tensor forward(const torch::Tensor& images) = 0;
  // The tensors an optimizer may update (requires_grad parameters), and the whole exchanged state: parameters then
  // buffers, sharing the network's storage.
  virtual NamedTensors trainable_parameters() = 0;
  virtual NamedTensors state() const = 0;
  virtual void set_training(bool on) = 0;
  // Whether training draws random numbers (dropout, say). LibTorch draws them from its one process-wide
  // generator, so such a network trains under torch_generator_mutex() with the generator seeded from the plan.
  virtual bool draws_random_numbers() const = 0;
  // Writes the network, with its current state, as a file its format's own tools load.
  virtual void save(const std::filesystem::path& file) const = 0;
  // Prefixes load errors (say, with the file the network came from).
  virtual std::string describe() const = 0;
};

// Held while LibTorch's process-wide generator is seeded and drawn from (initialising a built-in model, training a
// network that draws random numbers), so that results depend on seeds alone, not on other threads.
std::mutex& torch_generator_mutex();

// The ImageModel that trains and evaluates `net`.
std::unique_ptr<ImageModel> make_classifier(std::unique_ptr<TorchNet> net);

}  // namespace sotto::ml
