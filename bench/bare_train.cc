// Baseline for the client and aggregator benchmarks: a bare LibTorch process with no Sotto networking that trains
// the same model on the same shard (1 epoch, batch 32, SGD 0.05/0.9) and evaluates it on the test set, so that
// bench/round_bench.sh can compare peak RSS and training time with a real sotto-client in the same run.
//   usage: sotto_bare_train NUM_SHARDS SHARD_INDEX [MODEL [MAX_EXAMPLES]]   (fashion_cnn, whole shard)
// MODEL is a built-in architecture or a TorchScript file (*.pt), so bench/model_format_bench.sh compares the two.
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "common/data/image_dataset.h"
#include "common/data/partition.h"
#include "common/ml/image_model.h"

int main(int argc, char** argv) {
  using namespace sotto;
  if (argc < 3 || argc > 5) {
    std::fprintf(stderr, "usage: sotto_bare_train NUM_SHARDS SHARD_INDEX [MODEL [MAX_EXAMPLES]]\n");
    return 2;
  }
  const std::size_t shards = std::strtoul(argv[1], nullptr, 10);
  const std::size_t index = std::strtoul(argv[2], nullptr, 10);
  ml::set_torch_threads(1);
  const auto train = data::load_fashion_mnist(data::kDefaultFashionMnistDir, data::Split::kTrain);
  const auto test = data::load_fashion_mnist(data::kDefaultFashionMnistDir, data::Split::kTest);
  auto shard = data::partition_iid(train.size(), shards, 42).at(index);
  const std::string name = argc > 3 ? argv[3] : "fashion_cnn";
  ml::ModelSpec spec;
  if (name.size() > 3 && name.ends_with(".pt")) {
    spec.torchscript = name;
  } else {
    spec.architecture = name;
  }
  const std::size_t max_examples = argc > 4 ? std::strtoul(argv[4], nullptr, 10) : 0;
  if (max_examples > 0 && shard.size() > max_examples) shard.resize(max_examples);  // as data.max_examples does
  const auto load_start = std::chrono::steady_clock::now();
  auto model = ml::make_model(spec, 1);
  const double load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();
  ml::TrainingPlan plan;
  const auto metrics = model->train(train, shard, plan);
  const auto t0 = std::chrono::steady_clock::now();
  const auto eval = model->evaluate(test);
  const double eval_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("load_seconds %.4f examples %zu train_seconds %.3f samples_per_second %.0f eval_seconds %.3f "
              "test_accuracy %.4f\n",
              load_seconds, shard.size(), metrics.seconds, static_cast<double>(shard.size()) / metrics.seconds,
              eval_seconds, eval.accuracy);
  return 0;
}
