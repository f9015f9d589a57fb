// Classifiers authored in PyTorch: a TorchScript file loaded as a torch::jit::Module and trained through the shared
// classifier code (torch_net.h), with its parameters, buffers, train/eval mode and autograd as PyTorch defined them.
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/script.h>

#include <string>
#include <utility>

#include "common/ml/torch_net.h"
#include "common/util/error.h"

namespace sotto::ml {

namespace {

std::string reason(const c10::Error& e) {
  return e.what_without_backtrace();
}

// forward() with every method and function it calls inlined: the whole computation in one graph.
std::shared_ptr<torch::jit::Graph> inlined_forward(const torch::jit::Module& module) {
  std::shared_ptr<torch::jit::Graph> graph = module.get_method("forward").graph()->copy();
  torch::jit::Inline(*graph);
  return graph;
}

// Whether a node of the block, or of a block nested in it, satisfies `test`.
template <typename Test>
bool any_node(const torch::jit::Block* block, const Test& test) {
  for (const torch::jit::Node* node : block->nodes()) {
    if (test(node)) return true;
    for (const torch::jit::Block* nested : node->blocks()) {
      if (any_node(nested, test)) return true;
    }
  }
  return false;
}

// Reads a module's `training` flag, as scripted BatchNorm and Dropout do.
bool reads_training_flag(const torch::jit::Node* node) {
  return node->kind() == c10::prim::GetAttr && node->s(c10::attr::name) == "training";
}

// Calls an operator that draws random numbers (dropout and its kin).
bool calls_random_op(const torch::jit::Node* node) {
  const std::string op = node->kind().toQualString();
  if (op.rfind("aten::", 0) != 0) return false;
  for (const char* kind : {"dropout", "bernoulli", "rand", "normal", "multinomial", "uniform", "exponential"}) {
    if (op.find(kind) != std::string::npos) return true;
  }
  return false;
}

// The first submodule whose PyTorch class behaves differently in train and eval mode, or "".
std::string mode_dependent_submodule(const torch::jit::Module& module) {
  for (const auto& child : module.named_modules()) {
    const std::string type = child.value.type()->name() ? child.value.type()->name()->qualifiedName() : "";
    for (const char* kind : {"BatchNorm", "Dropout", "InstanceNorm"}) {
      if (type.find(kind) != std::string::npos) return child.name.empty() ? type : child.name + " (" + type + ")";
    }
  }
  return "";
}

// Refuses a module saved with torch.jit.trace whose behaviour depends on train/eval mode: tracing records the ops
// of one mode, so such a module would keep (say) dropout on when evaluated and BatchNorm on running statistics
// when trained. A scripted module reads its `training` flag wherever it matters. `forward` is inlined_forward(module).
void check_scripted(const torch::jit::Module& module, const torch::jit::Graph& forward,
                    const std::filesystem::path& file) {
  const std::string submodule = mode_dependent_submodule(module);
  if (submodule.empty() || any_node(forward.block(), reads_training_flag)) return;
  throw Error("TorchScript model " + file.string() + " was saved with torch.jit.trace: its " + submodule +
              " behaves differently in training and evaluation, and tracing baked one mode in. Export it with "
              "torch.jit.script(model).save(FILE) instead");
}

class ScriptNet final : public TorchNet {
 public:
  // `random`: whether forward() calls a random operator.
  ScriptNet(torch::jit::Module module, std::filesystem::path file, bool random)
      : module_(std::move(module)), file_(std::move(file)), random_(random) {}

  torch::Tensor forward(const torch::Tensor& images) override {
    // The graph executor's optimisations (profiling, differentiable subgraphs) cost ~20% of a small CNN's training
    // on a CPU, where nothing gets fused; unoptimised, the module runs its ops as eager LibTorch does.
    const torch::jit::GraphOptimizerEnabledGuard unoptimised(false);
    torch::jit::IValue out;
    try {
      out = module_.forward({images});
    } catch (const c10::Error& e) {
      throw Error(describe() + ": forward() failed on normalised images " + shape(images) + ": " + reason(e));
    }
    if (!out.isTensor() || out.toTensor().dim() != 2 || out.toTensor().size(0) != images.size(0)) {
      throw Error(describe() +
                  ": forward() must return logits [batch, classes] for images [batch, 1, 28, 28], "
                  "but returned " +
                  (out.isTensor() ? "a tensor " + shape(out.toTensor()) : out.tagKind()));
    }
    return out.toTensor();
  }

  NamedTensors trainable_parameters() override {
    NamedTensors out;
    for (const auto& p : module_.named_parameters(/*recurse=*/true)) {
      if (p.value.requires_grad()) out.emplace_back(p.name, p.value);
    }
    return out;
  }

  NamedTensors state() const override {
    NamedTensors out;
    for (const auto& p : module_.named_parameters(/*recurse=*/true)) out.emplace_back(p.name, p.value);
    for (const auto& b : module_.named_buffers(/*recurse=*/true)) out.emplace_back(b.name, b.value);
    return out;
  }

  void set_training(bool on) override { module_.train(on); }
  bool draws_random_numbers() const override { return random_; }

  void save(const std::filesystem::path& file) const override {
    try {
      module_.save(file.string());
    } catch (const c10::Error& e) {
      throw Error("cannot save " + describe() + " to " + file.string() + ": " + reason(e));
    }
  }

  std::string describe() const override { return "the TorchScript model " + file_.string(); }

 private:
  static std::string shape(const torch::Tensor& t) {
    std::string s = "[";
    for (std::int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
    return s + "]";
  }

  torch::jit::Module module_;
  std::filesystem::path file_;
  bool random_;
};

}  // namespace

std::unique_ptr<ImageModel> load_torchscript_model(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) {
    throw Error("TorchScript model " + file.string() +
                " is not a file; export one with "
                "torch.jit.script(model).save(FILE) (models/README.md)");
  }
  torch::jit::Module module;
  try {
    module = torch::jit::load(file.string());
  } catch (const c10::Error& e) {
    throw Error("cannot load TorchScript model " + file.string() + ": it is not a TorchScript file PyTorch " +
                "1.13's torch.jit.script(model).save(FILE) writes (" + reason(e) + ")");
  }
  if (!module.find_method("forward")) {
    throw Error("TorchScript model " + file.string() +
                " has no forward() method; script the nn.Module itself, "
                "whose forward(images) returns the logits");
  }
  const std::shared_ptr<torch::jit::Graph> forward = inlined_forward(module);
  check_scripted(module, *forward, file);
  const bool random = any_node(forward->block(), calls_random_op);
  return make_classifier(std::make_unique<ScriptNet>(std::move(module), file, random));
}

}  // namespace sotto::ml
