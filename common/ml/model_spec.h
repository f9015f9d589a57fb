// ModelSpec: which model a process trains and evaluates, as the [model] section of every config names it — a
// built-in architecture (`model.architecture`) or a module authored in PyTorch and saved with torch.jit.script
// (`model.torchscript = "FILE"`). The aggregator, its clients and sotto-sim each name the same model. Without
// LibTorch, so configs check it before (or without) loading a model.
#pragma once

#include <filesystem>
#include <string>

#include "common/config/toml_reader.h"

namespace sotto::ml {

struct ModelSpec {
  std::string architecture = "fashion_cnn";  // one of known_architectures(); unused with a TorchScript file
  std::filesystem::path torchscript;         // when set, the model (and its initial weights) come from this file

  // "the TorchScript model FILE" or "the built-in ARCH model", for messages.
  std::string describe() const;
};

// Reads model.architecture and model.torchscript (a path relative to the config file), refusing both at once and
// a TorchScript file that does not exist.
ModelSpec read_model_spec(config::TomlReader& reader);

}  // namespace sotto::ml
