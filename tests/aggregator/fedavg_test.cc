#include "aggregator/fedavg.h"

#include <catch2/catch.hpp>
#include <cstring>

using namespace sotto;

namespace {

template <typename T>
model::Tensor tensor(const std::string& name, model::DType dtype, std::vector<T> values) {
  model::Tensor t{name, dtype, {static_cast<std::int64_t>(values.size())}, std::vector<std::byte>(values.size() * sizeof(T))};
  std::memcpy(t.data.data(), values.data(), t.data.size());
  return t;
}

model::ModelParameters params(std::vector<float> w, std::vector<std::int64_t> steps) {
  std::vector<model::Tensor> ts;
  ts.push_back(tensor("w", model::DType::kFloat32, std::move(w)));
  ts.push_back(tensor("steps", model::DType::kInt64, std::move(steps)));
  return model::ModelParameters(std::move(ts));
}

template <typename T>
std::vector<T> values(const model::ModelParameters& p, const std::string& name) {
  auto span = p.find(name)->as<T>();
  return {span.begin(), span.end()};
}

}  // namespace

TEST_CASE("FedAvg: the new model is the global model plus the example-weighted mean delta, exactly") {
  aggregator::FedAvg fedavg;
  const auto global = params({1.0f, -2.0f, 0.5f}, {10});
  fedavg.begin_round(global);
  fedavg.accumulate(params({1.0f, 2.0f, 3.0f}, {1}), 1);
  fedavg.accumulate(params({3.0f, 6.0f, 9.0f}, {2}), 3);
  const auto next = fedavg.finish_round(global);
  // Hand-computed: (1*1 + 3*3)/4 = 2.5, (1*2 + 3*6)/4 = 5, (1*3 + 3*9)/4 = 7.5; integer mean 1.75 rounds to 2.
  CHECK(values<float>(next, "w") == std::vector<float>{3.5f, 3.0f, 8.0f});
  CHECK(values<std::int64_t>(next, "steps") == std::vector<std::int64_t>{12});
}

TEST_CASE("FedAvg: equal weights give the plain mean of the local models") {
  aggregator::FedAvg fedavg;
  const auto global = params({0.0f, 0.0f}, {0});
  fedavg.begin_round(global);
  fedavg.accumulate(params({0.25f, -1.0f}, {4}), 100);
  fedavg.accumulate(params({0.75f, 3.0f}, {4}), 100);
  const auto next = fedavg.finish_round(global);
  CHECK(values<float>(next, "w") == std::vector<float>{0.5f, 1.0f});
  CHECK(values<std::int64_t>(next, "steps") == std::vector<std::int64_t>{4});
}

TEST_CASE("FedAvg: begin_round forgets the previous round's sums") {
  aggregator::FedAvg fedavg;
  const auto global = params({0.0f}, {0});
  fedavg.begin_round(global);
  fedavg.accumulate(params({100.0f}, {0}), 5);
  fedavg.begin_round(global);
  fedavg.accumulate(params({1.0f}, {0}), 2);
  CHECK(values<float>(fedavg.finish_round(global), "w") == std::vector<float>{1.0f});
}

TEST_CASE("FedAvg: finishing a round without updates is an error") {
  aggregator::FedAvg fedavg;
  const auto global = params({0.0f}, {0});
  fedavg.begin_round(global);
  CHECK_THROWS_WITH(fedavg.finish_round(global), Catch::Contains("no updates"));
}

TEST_CASE("FedAvg: a round's only update gives the model the double sums would, to the bit") {
  // The sole update is kept as it came, without sums (weighted_mean.h); through accumulate, with a second update
  // of weight 0, it is summed, and the mean is unchanged.
  const auto global = params({1.0f, -0.0f, 3.0e7f, 1.0e-30f, -2.5f}, {9});
  const auto delta = params({0.1f, -0.0f, 1.0f, 3.0e-31f, 1.0f / 3.0f}, {3});
  aggregator::FedAvg kept, summed;
  kept.begin_round(global);
  summed.begin_round(global);
  kept.accumulate_sole(delta, 7);
  summed.accumulate(delta, 7);
  summed.accumulate(params({5.0f, 5.0f, 5.0f, 5.0f, 5.0f}, {100}), 0);
  const auto a = kept.finish_round(global);
  const auto b = summed.finish_round(global);
  CHECK(a.find("w")->data == b.find("w")->data);  // bytes: -0.0 and +0.0 differ here
  CHECK(values<std::int64_t>(a, "steps") == std::vector<std::int64_t>{12});
  CHECK(values<std::int64_t>(b, "steps") == std::vector<std::int64_t>{12});
}

TEST_CASE("FedAvg: an update whose dtypes differ from the model's is summed, not kept") {
  aggregator::FedAvg fedavg;
  const auto global = params({1.0f, 2.0f}, {0});
  fedavg.begin_round(global);
  std::vector<model::Tensor> ts;
  ts.push_back(tensor("w", model::DType::kFloat64, std::vector<double>{0.5, -1.0}));
  ts.push_back(tensor("steps", model::DType::kInt64, std::vector<std::int64_t>{2}));
  fedavg.accumulate_sole(model::ModelParameters(std::move(ts)), 4);
  const auto next = fedavg.finish_round(global);
  CHECK(values<float>(next, "w") == std::vector<float>{1.5f, 1.0f});
  CHECK(values<std::int64_t>(next, "steps") == std::vector<std::int64_t>{2});
}
