// The classifier that every LibTorch network trains and evaluates through (torch_net.h): batches of normalised
// Fashion-MNIST images, SGD or Adam, FedProx's proximal pull, seeded shuffling, evaluation in kEvalBatch batches.
#include <fnmatch.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <optional>
#include <random>
#include <utility>

#include "common/ml/torch_net.h"
#include "common/util/error.h"

namespace sotto::ml {

namespace {

// Fashion-MNIST training-set pixel mean and standard deviation (pixels scaled to [0, 1]).
constexpr float kPixelMean = 0.2860f;
constexpr float kPixelStd = 0.3530f;

// One mini-batch as tensors: normalised pixels [B, 1, 28, 28] and int64 labels [B].
struct Batch {
  torch::Tensor images;
  torch::Tensor labels;
};

float normalised(std::uint8_t pixel) {
  return (static_cast<float>(pixel) / 255.0f - kPixelMean) / kPixelStd;
}

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
    throw Error("the image models (built-in and TorchScript) take 28x28 greyscale images, but the data set has " + std::to_string(data.rows) +
                "x" + std::to_string(data.cols) + " images");
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

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const std::vector<torch::Tensor>& params,
                                                        const TrainingPlan& plan) {
  if (plan.optimizer == "sgd") {
    return std::make_unique<torch::optim::SGD>(
        params, torch::optim::SGDOptions(plan.learning_rate).momentum(plan.momentum).weight_decay(plan.weight_decay));
  }
  return std::make_unique<torch::optim::Adam>(
      params, torch::optim::AdamOptions(plan.learning_rate).weight_decay(plan.weight_decay));
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

// The parameters this call trains: those that require gradients, less the plan's frozen ones (FedRep's phases).
NamedTensors trained_parameters(TorchNet& net, const TrainingPlan& plan) {
  NamedTensors out;
  for (auto& [name, tensor] : net.trainable_parameters()) {
    bool frozen = false;
    for (const auto& pattern : plan.frozen) frozen = frozen || fnmatch(pattern.c_str(), name.c_str(), 0) == 0;
    if (!frozen) out.emplace_back(name, tensor);
  }
  return out;
}

std::vector<torch::Tensor> tensors_of(const NamedTensors& named) {
  std::vector<torch::Tensor> out;
  for (const auto& [name, tensor] : named) out.push_back(tensor);
  return out;
}

// The proximal term (μ/2)·||w − w0||² over the trained parameters, applied through its gradient μ(w − w0), which is
// added to each parameter's gradient after backward() and before the optimizer step: the same update as adding
// the term to the loss, without building it into the autograd graph. w0 is the plan's proximal_anchor (Ditto: the
// global model, while a personal model trains) or else a copy of the parameters as training starts (FedProx: the
// global model the client received). Only parameters are pulled (BatchNorm's running statistics are buffers).
// TrainMetrics::mean_loss stays the cross-entropy alone.
class ProximalTerm {
 public:
  ProximalTerm(const NamedTensors& params, double mu, const model::ModelParameters* anchor)
      : mu_(mu), params_(tensors_of(params)) {
    torch::NoGradGuard no_grad;
    anchor_.reserve(params_.size());
    for (const auto& [name, p] : params) {
      anchor_.push_back(p.detach().clone());
      if (!anchor) continue;
      const model::Tensor* given = anchor->find(name);
      if (!given) throw Error("the proximal term's anchor has no tensor '" + name + "'");
      import_state({{name, anchor_.back()}}, model::ModelParameters({*given}));
    }
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
double scalar_value(const torch::Tensor& loss) {
  return static_cast<double>(*in_type(loss, torch::kFloat32).data_ptr<float>());
}

// A classifier over normalised 28x28 images.
class ClassifierModel final : public ImageModel {
 public:
  explicit ClassifierModel(std::unique_ptr<TorchNet> net) : net_(std::move(net)) {}

  model::ModelParameters parameters() const override { return export_state(net_->state()); }

  model::ModelParameters delta_from(const model::ModelParameters& base) const override {
    return export_state_delta(net_->state(), base);
  }

  void load(const model::ModelParameters& params) override {
    try {
      import_state(net_->state(), params);
    } catch (const Error& e) {
      throw Error(net_->describe() + ": " + e.what());
    }
  }

  void save(const std::filesystem::path& file) const override { net_->save(file); }

  TrainMetrics train(const data::ImageDataset& data, std::span<const std::uint32_t> indices, const TrainingPlan& plan,
                     const std::function<bool()>& next_batch) override {
    check_plan(plan);
    if (indices.empty()) return {};
    check_images(data);
    check_indices(data, indices);
    const auto start = std::chrono::steady_clock::now();
    std::unique_lock<std::mutex> generator;
    if (net_->draws_random_numbers()) {
      generator = std::unique_lock(torch_generator_mutex());
      torch::manual_seed(plan.seed);
    }

    net_->set_training(true);
    const NamedTensors trained = trained_parameters(*net_, plan);
    auto optimizer = make_optimizer(tensors_of(trained), plan);
    std::optional<ProximalTerm> proximal;
    if (plan.proximal_mu > 0) proximal.emplace(trained, plan.proximal_mu, plan.proximal_anchor.get());
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

  std::vector<EvalBatch> evaluate_batches(const data::ImageDataset& data, std::size_t first, std::size_t end) override {
    end = std::min(end, data.size());
    std::vector<EvalBatch> out;
    if (first >= end) return out;
    check_images(data);
    net_->set_training(false);
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

  std::vector<float> logits(const data::ImageDataset& data) override {
    std::vector<float> out;
    if (data.size() == 0) return out;
    check_images(data);
    net_->set_training(false);
    torch::NoGradGuard no_grad;
    for (std::size_t begin = 0; begin < data.size(); begin += kEvalBatch) {
      const std::size_t count = std::min(kEvalBatch, data.size() - begin);
      const Batch batch = make_batch(data, count, [&](std::size_t i) { return begin + i; });
      const torch::Tensor l = net_->forward(batch.images).to(torch::kFloat32).contiguous();
      out.insert(out.end(), l.data_ptr<float>(), l.data_ptr<float>() + l.numel());
    }
    return out;
  }

 private:
  std::unique_ptr<TorchNet> net_;
};

}  // namespace

std::mutex& torch_generator_mutex() {
  static std::mutex mutex;
  return mutex;
}

std::unique_ptr<ImageModel> make_classifier(std::unique_ptr<TorchNet> net) {
  return std::make_unique<ClassifierModel>(std::move(net));
}

}  // namespace sotto::ml
