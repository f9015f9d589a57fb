// The built-in image models as LibTorch modules, the choice between them and a TorchScript file, and the
// process's LibTorch thread settings.
#include "common/ml/image_model.h"

#include <dlfcn.h>
#include <torch/torch.h>

#include <algorithm>
#include <mutex>
#include <optional>

#include "common/ml/torch_net.h"
#include "common/util/error.h"

namespace sotto::ml {

namespace {

constexpr const char* kFashionLinear = "fashion_linear";
constexpr const char* kFashionWideMlp = "fashion_wide_mlp";
constexpr std::int64_t kWideHidden = 5120;
constexpr std::int64_t kNumClasses = 10;

// conv(1->16, 5) -> BN -> ReLU -> pool2 -> conv(16->32, 5) -> BN -> ReLU -> pool2 -> fc(512->128) -> ReLU -> fc(128->10)
struct FashionCnnImpl : torch::nn::Module {
  FashionCnnImpl()
      : conv1(register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 16, 5)))),
        bn1(register_module("bn1", torch::nn::BatchNorm2d(16))),
        conv2(register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(16, 32, 5)))),
        bn2(register_module("bn2", torch::nn::BatchNorm2d(32))),
        fc1(register_module("fc1", torch::nn::Linear(32 * 4 * 4, 128))),
        fc2(register_module("fc2", torch::nn::Linear(128, kNumClasses))) {}

  torch::Tensor forward(torch::Tensor x) {
    x = torch::max_pool2d(torch::relu(bn1(conv1(x))), 2);
    x = torch::max_pool2d(torch::relu(bn2(conv2(x))), 2);
    x = torch::relu(fc1(x.flatten(1)));
    return fc2(x);
  }

  torch::nn::Conv2d conv1;
  torch::nn::BatchNorm2d bn1;
  torch::nn::Conv2d conv2;
  torch::nn::BatchNorm2d bn2;
  torch::nn::Linear fc1;
  torch::nn::Linear fc2;
};
TORCH_MODULE(FashionCnn);

// Multinomial logistic regression on the normalised pixels: fc(784->10). Small enough for an app to train in plain
// C (examples/c_app).
struct FashionLinearImpl : torch::nn::Module {
  FashionLinearImpl() : fc(register_module("fc", torch::nn::Linear(kImageSide * kImageSide, kNumClasses))) {}
  torch::Tensor forward(torch::Tensor x) { return fc(x.flatten(1)); }
  torch::nn::Linear fc;
};
TORCH_MODULE(FashionLinear);

// A big model for the end-to-end benchmarks: fc(784->5120) -> ReLU -> fc(5120->5120) -> ReLU -> fc(5120->10),
// 30.3M parameters (121 MB of float32), the size of the models users train, not a better classifier.
struct FashionWideMlpImpl : torch::nn::Module {
  FashionWideMlpImpl()
      : fc1(register_module("fc1", torch::nn::Linear(kImageSide * kImageSide, kWideHidden))),
        fc2(register_module("fc2", torch::nn::Linear(kWideHidden, kWideHidden))),
        fc3(register_module("fc3", torch::nn::Linear(kWideHidden, kNumClasses))) {}
  torch::Tensor forward(torch::Tensor x) {
    x = torch::relu(fc1(x.flatten(1)));
    x = torch::relu(fc2(x));
    return fc3(x);
  }
  torch::nn::Linear fc1;
  torch::nn::Linear fc2;
  torch::nn::Linear fc3;
};
TORCH_MODULE(FashionWideMlp);


// A built-in network as a TorchNet; Net is a TORCH_MODULE holder.
template <typename Net>
class BuiltinNet final : public TorchNet {
 public:
  explicit BuiltinNet(std::string architecture) : architecture_(std::move(architecture)) {}
  torch::Tensor forward(const torch::Tensor& images) override { return net_->forward(images); }
  NamedTensors trainable_parameters() override {
    NamedTensors out;
    for (const auto& p : net_->named_parameters(/*recurse=*/true)) {
      if (p.value().requires_grad()) out.emplace_back(p.key(), p.value());
    }
    return out;
  }
  NamedTensors state() const override { return named_state(*net_); }
  void set_training(bool on) override { net_->train(on); }
  bool draws_random_numbers() const override { return false; }
  void save(const std::filesystem::path& file) const override {
    try {
      torch::save(net_, file.string());
    } catch (const c10::Error& e) {
      throw Error("cannot save the " + architecture_ + " model to " + file.string() + ": " +
                  e.what_without_backtrace());
    }
  }
  std::string describe() const override { return "the built-in " + architecture_ + " model"; }

 private:
  std::string architecture_;
  Net net_;
};

}  // namespace

std::unique_ptr<ImageModel> make_image_model(const std::string& architecture, std::uint64_t init_seed) {
  const auto& known_names = known_architectures();
  if (std::find(known_names.begin(), known_names.end(), architecture) == known_names.end()) {
    std::string known;
    for (const auto& name : known_architectures()) known += (known.empty() ? "" : ", ") + name;
    throw Error("unknown model architecture '" + architecture + "'; known architectures: " + known);
  }
  // Initialisation draws from LibTorch's global generator: seed it and build under one lock so that concurrent
  // builds cannot interleave their draws.
  const std::lock_guard lock(torch_generator_mutex());
  torch::manual_seed(init_seed);
  if (architecture == kFashionLinear) return make_classifier(std::make_unique<BuiltinNet<FashionLinear>>(architecture));
  if (architecture == kFashionWideMlp) {
    return make_classifier(std::make_unique<BuiltinNet<FashionWideMlp>>(architecture));
  }
  return make_classifier(std::make_unique<BuiltinNet<FashionCnn>>(architecture));
}

std::unique_ptr<ImageModel> make_model(const ModelSpec& spec, std::uint64_t init_seed) {
  if (!spec.torchscript.empty()) return load_torchscript_model(spec.torchscript);
  return make_image_model(spec.architecture, init_seed);
}

void set_torch_threads(int threads) {
  if (threads < 1) throw Error("LibTorch thread count must be at least 1, got " + std::to_string(threads));
  torch::set_num_threads(threads);
  using SetBlasThreads = void (*)(int);
  if (auto set_blas = reinterpret_cast<SetBlasThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    set_blas(threads);
  }
  // Allowed once per process and only before any inter-op work; LibTorch throws on later calls (an exception
  // that records a backtrace: ~0.6 ms, which a worker setting its threads every round would pay each time).
  static std::once_flag interop_once;
  std::call_once(interop_once, [threads] {
    try {
      at::set_num_interop_threads(threads);
    } catch (const c10::Error&) {
    }
  });
}

std::optional<std::string> concurrent_training_hazard() {
  // openblas_get_parallel(): 0 for the sequential build, 1 with pthreads, 2 with OpenMP.
  using GetParallel = int (*)();
  auto get_parallel = reinterpret_cast<GetParallel>(dlsym(RTLD_DEFAULT, "openblas_get_parallel"));
  if (get_parallel && get_parallel() == 0) {
    return "LibTorch calls the sequential OpenBLAS build (libopenblas0-serial), which has no locking: two training "
           "threads calling it at once corrupt each other's results (OpenBLAS issue #2126)";
  }
  return std::nullopt;
}

}  // namespace sotto::ml
