// Which tensors are personal (glob patterns on names) and splitting a model by them.
#include "common/model/personal_tensors.h"

#include <catch2/catch.hpp>

#include "common/util/error.h"

using sotto::model::ModelParameters;
using sotto::model::PersonalTensors;

namespace {

sotto::model::Tensor tensor(const std::string& name, std::vector<std::int64_t> shape, float fill) {
  const std::size_t n = sotto::model::element_count(shape);
  sotto::model::Tensor t{name, sotto::model::DType::kFloat32, shape, std::vector<std::byte>(n * sizeof(float))};
  for (auto& v : t.as_mutable<float>()) v = fill;
  return t;
}

ModelParameters cnn_like() {
  return ModelParameters({tensor("conv1.weight", {2, 1}, 1), tensor("bn1.running_mean", {2}, 2),
                          tensor("bn1.running_var", {2}, 3), tensor("head.weight", {3, 2}, 4),
                          tensor("head.bias", {3}, 5)});
}

std::vector<std::string> names(const ModelParameters& p) {
  std::vector<std::string> out;
  for (const auto& t : p.tensors()) out.push_back(t.name);
  return out;
}

}  // namespace

TEST_CASE("personal tensors: glob patterns name them, dots included", "[model][personal]") {
  const PersonalTensors p({"head.*", "*.running_?ean"});
  CHECK(p.is_personal("head.weight"));
  CHECK(p.is_personal("head.bias"));
  CHECK(p.is_personal("bn1.running_mean"));
  CHECK(p.is_personal("body.0.bn.running_mean"));  // `*` crosses dots
  CHECK_FALSE(p.is_personal("bn1.running_var"));
  CHECK_FALSE(p.is_personal("heads.weight"));
  CHECK_FALSE(PersonalTensors().is_personal("head.weight"));
  CHECK(p.describe() == "\"head.*\", \"*.running_?ean\"");
  CHECK_THROWS_WITH(PersonalTensors({"head.*", ""}), Catch::Contains("empty"));
}

TEST_CASE("personal tensors: a model splits into federated and personal parts, in order", "[model][personal]") {
  const PersonalTensors p({"head.*", "*.running_*"});
  const ModelParameters whole = cnn_like();
  CHECK(names(p.federated_part(whole)) == std::vector<std::string>{"conv1.weight"});
  CHECK(names(p.personal_part(whole)) ==
        std::vector<std::string>{"bn1.running_mean", "bn1.running_var", "head.weight", "head.bias"});
  CHECK(p.first_personal(whole) == "bn1.running_mean");
  CHECK_FALSE(p.first_personal(p.federated_part(whole)));
  CHECK_FALSE(p.unmatched_pattern(whole));
  CHECK(PersonalTensors({"head.*", "fc9.*"}).unmatched_pattern(whole) == "fc9.*");
}

TEST_CASE("personal tensors: with_tensors puts given tensors in place and refuses strangers", "[model][personal]") {
  const ModelParameters whole = cnn_like();
  const ModelParameters merged = with_tensors(whole, ModelParameters({tensor("head.bias", {3}, 9)}));
  CHECK(names(merged) == names(whole));
  CHECK(merged.find("head.bias")->as<float>()[0] == 9);
  CHECK(merged.find("head.weight")->as<float>()[0] == 4);
  CHECK_THROWS_WITH(with_tensors(whole, ModelParameters({tensor("tail.bias", {3}, 0)})),
                    Catch::Contains("tensor 'tail.bias'") && Catch::Contains("not in the model"));
  CHECK_THROWS_WITH(with_tensors(whole, ModelParameters({tensor("head.bias", {4}, 0)})),
                    Catch::Contains("tensor 'head.bias'") && Catch::Contains("[3]"));
}
