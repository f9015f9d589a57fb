#include "common/ml/model_spec.h"

#include "common/ml/architectures.h"

namespace sotto::ml {

std::string ModelSpec::describe() const {
  if (!torchscript.empty()) return "the TorchScript model " + torchscript.string();
  return "the built-in " + architecture + " model";
}

ModelSpec read_model_spec(config::TomlReader& reader) {
  ModelSpec spec;
  const bool has_architecture = reader.has("model.architecture");
  spec.architecture = reader.get_choice("model.architecture", known_architectures(), "fashion_cnn");
  spec.torchscript = reader.get_path("model.torchscript", std::filesystem::path{});
  if (spec.torchscript.empty()) return spec;
  if (has_architecture) {
    reader.fail("model.torchscript", "names a TorchScript file and model.architecture a built-in model; keep one");
  }
  std::error_code ec;
  if (!std::filesystem::is_regular_file(spec.torchscript, ec)) {
    reader.fail("model.torchscript", "names " + spec.torchscript.string() +
                                         ", which is not a file; export the model with torch.jit.script(...).save() "
                                         "(see models/README.md) and give its path");
  }
  return spec;
}

}  // namespace sotto::ml
