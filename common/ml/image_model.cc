// The built-in image models. This is the one translation unit that builds LibTorch modules and trains them.
#include "common/ml/image_model.h"

#include <dlfcn.h>
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <mutex>
#include <optional>
#include <random>

#include "common/ml/torch_bridge.h"
#include "common/util/error.h"

namespace sotto::ml {

namespace {

constexpr const char* kFashionLinear = "fashion_linear";
constexpr const char* kFashionWideMlp = "fashion_wide_mlp";
constexpr std::int64_t kWideHidden = 5120;
constexpr std::int64_t kImageSide = 28;
constexpr std::int64_t kNumClasses = 10;
// Fashion-MNIST training-set pixel mean and standard deviation (pixels scaled to [0, 1]).
constexpr float kPixelMean = 0.2860f;
constexpr float kPixelStd = 0.3530f;

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

// One mini-batch as tensors: normalised pixels [B, 1, 28, 28] and int64 labels [B].
struct Batch {
  torch::Tensor images;
  torch::Tensor labels;
};

float normalised(std::uint8_t pixel) { return (static_cast<float>(pixel) / 255.0f - kPixelMean) / kPixelStd; }

// normalised() for every byte value, computed once: batch assembly becomes a table lookup per pixel.
const std::array<float, 256>& normalised_table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int v = 0; v < 256; ++v) t[static_cast<std::size_t>(v)] = normalised(static_cast<std::uint8_t>(v));
    return t;
  }();
  return table;
}

// Fills the batch tensors straight from the dataset's bytes (no per-example tensors).
template <typename IndexAt>
Batch make_batch(const data::ImageDataset& data, std::size_t count, IndexAt index_at) {
  Batch b{torch::empty({static_cast<std::int64_t>(count), 1, kImageSide, kImageSide}, torch::kFloat32),
          torch::empty({static_cast<std::int64_t>(count)}, torch::kInt64)};
  float* pixels = b.images.data_ptr<float>();
  std::int64_t* labels = b.labels.data_ptr<std::int64_t>();
  const std::size_t image_bytes = data.image_bytes();
  const std::array<float, 256>& table = normalised_table();
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t example = index_at(i);
    const std::uint8_t* src = data.pixels.data() + example * image_bytes;
    float* dst = pixels + i * image_bytes;
    for (std::size_t p = 0; p < image_bytes; ++p) dst[p] = table[src[p]];
    labels[i] = data.labels[example];
  }
  return b;
}

void check_images(const data::ImageDataset& data) {
  if (data.rows != kImageSide || data.cols != kImageSide) {
    throw Error("the built-in models expect 28x28 greyscale images, but the data set has " +
                std::to_string(data.rows) + "x" + std::to_string(data.cols) + " images");
  }
  if (data.pixels.size() != data.size() * data.image_bytes()) {
    throw Error("data set is inconsistent: " + std::to_string(data.size()) + " labels but " +
                std::to_string(data.pixels.size()) + " pixel bytes");
  }
}

void check_indices(const data::ImageDataset& data, std::span<const std::uint32_t> indices) {
  for (std::uint32_t i : indices) {
    if (i >= data.size()) {
      throw Error("training index " + std::to_string(i) + " is out of range: the data set has " +
                  std::to_string(data.size()) + " examples");
    }
  }
}

void check_plan(const TrainingPlan& plan) {
  if (plan.epochs == 0) throw Error("training plan has epochs = 0; it must be at least 1");
  if (plan.batch_size == 0) throw Error("training plan has batch_size = 0; it must be at least 1");
  if (!(plan.learning_rate > 0) || !std::isfinite(plan.learning_rate)) {
    throw Error("training plan has learning_rate " + std::to_string(plan.learning_rate) +
                "; it must be positive and finite");
  }
  if (!(plan.momentum >= 0 && plan.momentum < 1)) {
    throw Error("training plan has momentum " + std::to_string(plan.momentum) + "; it must be in [0, 1)");
  }
  if (!(plan.weight_decay >= 0) || !std::isfinite(plan.weight_decay)) {
    throw Error("training plan has weight_decay " + std::to_string(plan.weight_decay) +
                "; it must be non-negative and finite");
  }
  if (!(plan.proximal_mu >= 0) || !std::isfinite(plan.proximal_mu)) {
    throw Error("training plan has proximal_mu " + std::to_string(plan.proximal_mu) +
                "; it must be non-negative and finite");
  }
  if (plan.optimizer != "sgd" && plan.optimizer != "adam") {
    throw Error("training plan names optimizer '" + plan.optimizer + "'; known optimizers: sgd, adam");
  }
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(torch::nn::Module& module, const TrainingPlan& plan) {
  if (plan.optimizer == "sgd") {
    return std::make_unique<torch::optim::SGD>(
        module.parameters(),
        torch::optim::SGDOptions(plan.learning_rate).momentum(plan.momentum).weight_decay(plan.weight_decay));
  }
  return std::make_unique<torch::optim::Adam>(
      module.parameters(), torch::optim::AdamOptions(plan.learning_rate).weight_decay(plan.weight_decay));
}

// Fisher-Yates over the raw mt19937_64 output (fixed by the standard), so the order is the same everywhere.
void shuffle(std::vector<std::uint32_t>& v, std::mt19937_64& rng) {
  for (std::size_t i = v.size(); i > 1; --i) {
    const std::uint64_t bound = i;
    const std::uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    std::uint64_t x = rng();
    while (x >= limit) x = rng();
    std::swap(v[i - 1], v[static_cast<std::size_t>(x % bound)]);
  }
}

// FedProx's proximal term (μ/2)·||w − w0||² over the trainable parameters, applied through its gradient μ(w − w0),
// which is added to each parameter's gradient after backward() and before the optimizer step: the same update as
// adding the term to the loss, without building it into the autograd graph. w0 is a detached copy of the
// parameters taken when training starts (the global model the client received). Only trainable parameters are
// pulled (BatchNorm's running statistics are buffers). TrainMetrics::mean_loss stays the cross-entropy alone.
class ProximalTerm {
 public:
  ProximalTerm(torch::nn::Module& module, double mu) : mu_(mu), params_(module.parameters()) {
    torch::NoGradGuard no_grad;
    anchor_.reserve(params_.size());
    for (const auto& p : params_) anchor_.push_back(p.detach().clone());
  }

  void add_gradient() {
    torch::NoGradGuard no_grad;
    for (std::size_t i = 0; i < params_.size(); ++i) {
      auto& p = params_[i];
      torch::Tensor pull = (p.detach() - anchor_[i]).mul_(mu_);
      if (p.mutable_grad().defined()) {
        p.mutable_grad().add_(pull);
      } else {
        p.mutable_grad() = pull;
      }
    }
  }

 private:
  double mu_;
  std::vector<torch::Tensor> params_;
  std::vector<torch::Tensor> anchor_;
};

// `t` as a contiguous tensor of `type`: itself, without an operator dispatch, when it already is one.
torch::Tensor in_type(const torch::Tensor& t, c10::ScalarType type) {
  return t.scalar_type() == type ? t.contiguous() : t.to(type).contiguous();
}

// Examples whose highest logit (the first on ties, NaN counting as highest, as torch.argmax) is the label. Read
// straight from the tensors' memory: per batch, LibTorch's argmax/eq/sum/item would cost four operator dispatches,
// as much as assembling the batch.
std::int64_t count_correct(const torch::Tensor& logits, const torch::Tensor& labels) {
  const torch::Tensor scores = in_type(logits, torch::kFloat32);
  const torch::Tensor targets = in_type(labels, torch::kInt64);
  const std::int64_t rows = scores.size(0), classes = scores.size(1);
  const float* row = scores.data_ptr<float>();
  const std::int64_t* label = targets.data_ptr<std::int64_t>();
  std::int64_t correct = 0;
  for (std::int64_t r = 0; r < rows; ++r, row += classes) {
    std::int64_t best = 0;
    for (std::int64_t c = 1; c < classes && !std::isnan(row[best]); ++c) {
      if (std::isnan(row[c]) || row[c] > row[best]) best = c;
    }
    correct += best == label[r];
  }
  return correct;
}

// A scalar loss tensor's value, read from its memory (no operator dispatch, unlike item()).
double scalar_value(const torch::Tensor& loss) { return static_cast<double>(*in_type(loss, torch::kFloat32).data_ptr<float>()); }

// A built-in classifier over normalised 28x28 images; Net is a TORCH_MODULE holder.
template <typename Net>
class ClassifierModel final : public ImageModel {
 public:
  model::ModelParameters parameters() const override { return export_module(*net_); }

  model::ModelParameters delta_from(const model::ModelParameters& base) const override {
    return export_delta(*net_, base);
  }

  void load(const model::ModelParameters& params) override { import_module(*net_, params); }

  TrainMetrics train(const data::ImageDataset& data, std::span<const std::uint32_t> indices, const TrainingPlan& plan,
                     const std::function<bool()>& next_batch) override {
    check_plan(plan);
    if (indices.empty()) return {};
    check_images(data);
    check_indices(data, indices);
    const auto start = std::chrono::steady_clock::now();

    net_->train();
    auto optimizer = make_optimizer(*net_, plan);
    std::optional<ProximalTerm> proximal;
    if (plan.proximal_mu > 0) proximal.emplace(*net_, plan.proximal_mu);
    std::mt19937_64 rng(plan.seed);
    std::vector<std::uint32_t> order(indices.begin(), indices.end());
    TrainMetrics m;
    m.num_examples = indices.size();
    for (std::uint32_t epoch = 0; epoch < plan.epochs; ++epoch) {
      shuffle(order, rng);
      double loss_sum = 0;
      std::int64_t correct = 0;
      for (std::size_t begin = 0; begin < order.size(); begin += plan.batch_size) {
        if (next_batch && !next_batch()) {
          m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          return m;
        }
        const std::size_t count = std::min<std::size_t>(plan.batch_size, order.size() - begin);
        const Batch batch = make_batch(data, count, [&](std::size_t i) { return order[begin + i]; });
        const auto compute_start = std::chrono::steady_clock::now();
        optimizer->zero_grad();
        const torch::Tensor logits = net_->forward(batch.images);
        const torch::Tensor loss = torch::nn::functional::cross_entropy(logits, batch.labels);
        loss.backward();
        if (proximal) proximal->add_gradient();
        optimizer->step();
        m.compute_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - compute_start).count();
        ++m.steps;
        loss_sum += scalar_value(loss) * static_cast<double>(count);
        correct += count_correct(logits.detach(), batch.labels);
      }
      m.mean_loss = loss_sum / static_cast<double>(order.size());
      m.accuracy = static_cast<double>(correct) / static_cast<double>(order.size());
    }
    m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return m;
  }

  EvalMetrics evaluate(const data::ImageDataset& data, std::size_t max_examples) override {
    const std::size_t n = max_examples == 0 ? data.size() : std::min(max_examples, data.size());
    return combine_batches(evaluate_batches(data, 0, n));
  }

  std::vector<EvalBatch> evaluate_batches(const data::ImageDataset& data, std::size_t first,
                                          std::size_t end) override {
    end = std::min(end, data.size());
    std::vector<EvalBatch> out;
    if (first >= end) return out;
    check_images(data);
    net_->eval();
    torch::NoGradGuard no_grad;
    namespace F = torch::nn::functional;
    for (std::size_t begin = first; begin < end; begin += kEvalBatch) {
      const std::size_t count = std::min(kEvalBatch, end - begin);
      const Batch batch = make_batch(data, count, [&](std::size_t i) { return begin + i; });
      const torch::Tensor logits = net_->forward(batch.images);
      const torch::Tensor loss_sum =
          F::cross_entropy(logits, batch.labels, F::CrossEntropyFuncOptions().reduction(torch::kSum));
      out.push_back({count, scalar_value(loss_sum), count_correct(logits, batch.labels)});
    }
    return out;
  }

 private:
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
  static std::mutex init_mutex;
  const std::lock_guard lock(init_mutex);
  torch::manual_seed(init_seed);
  if (architecture == kFashionLinear) return std::make_unique<ClassifierModel<FashionLinear>>();
  if (architecture == kFashionWideMlp) return std::make_unique<ClassifierModel<FashionWideMlp>>();
  return std::make_unique<ClassifierModel<FashionCnn>>();
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
