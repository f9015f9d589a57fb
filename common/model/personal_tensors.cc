#include "common/model/personal_tensors.h"

#include <fnmatch.h>

#include <unordered_map>
#include <utility>

#include "common/util/error.h"

namespace sotto::model {

PersonalTensors::PersonalTensors(std::vector<std::string> patterns) : patterns_(std::move(patterns)) {
  for (const auto& p : patterns_) {
    if (p.empty())
      throw Error("a personal-tensor pattern is empty; name tensors like \"head.*\" or \"*.running_mean\"");
  }
}

bool PersonalTensors::is_personal(std::string_view tensor_name) const {
  const std::string name(tensor_name);
  for (const auto& p : patterns_) {
    if (fnmatch(p.c_str(), name.c_str(), 0) == 0) return true;
  }
  return false;
}

std::string PersonalTensors::describe() const {
  std::string out;
  for (const auto& p : patterns_) out += (out.empty() ? "\"" : ", \"") + p + "\"";
  return out.empty() ? "none" : out;
}

ModelParameters PersonalTensors::federated_part(const ModelParameters& params) const {
  std::vector<Tensor> kept;
  for (const auto& t : params.tensors()) {
    if (!is_personal(t.name)) kept.push_back(t);
  }
  return ModelParameters(std::move(kept));
}

ModelParameters PersonalTensors::personal_part(const ModelParameters& params) const {
  std::vector<Tensor> kept;
  for (const auto& t : params.tensors()) {
    if (is_personal(t.name)) kept.push_back(t);
  }
  return ModelParameters(std::move(kept));
}

std::optional<std::string> PersonalTensors::unmatched_pattern(const ModelParameters& params) const {
  for (const auto& p : patterns_) {
    bool matched = false;
    for (const auto& t : params.tensors()) matched = matched || fnmatch(p.c_str(), t.name.c_str(), 0) == 0;
    if (!matched) return p;
  }
  return std::nullopt;
}

std::optional<std::string> PersonalTensors::first_personal(const ModelParameters& params) const {
  for (const auto& t : params.tensors()) {
    if (is_personal(t.name)) return t.name;
  }
  return std::nullopt;
}

namespace {

std::string layout(const Tensor& t) {
  return std::string(dtype_name(t.dtype)) + " " + shape_string(t.shape);
}

}  // namespace

ModelParameters PersonalTensors::global_part(const ModelParameters& whole, const std::string& model_name) const {
  if (empty()) return whole;
  if (auto unmatched = unmatched_pattern(whole)) {
    throw Error("personalization.personal: pattern \"" + *unmatched + "\" names no tensor of " + model_name +
                "; its tensors are named like \"" + whole.tensors().front().name + "\"");
  }
  ModelParameters federated = federated_part(whole);
  if (federated.size() == 0) {
    throw Error("personalization.personal = [" + describe() + "] makes every tensor of " + model_name +
                " personal: nothing would be federated");
  }
  return federated;
}

ModelParameters with_tensors(ModelParameters whole, const ModelParameters& given) {
  std::unordered_map<std::string, Tensor*> by_name;
  for (auto& t : whole.mutable_tensors()) by_name.emplace(t.name, &t);
  for (const auto& g : given.tensors()) {
    const auto it = by_name.find(g.name);
    if (it == by_name.end()) {
      throw Error("tensor '" + g.name + "' (" + layout(g) + ") is not in the model, which has " +
                  std::to_string(whole.size()) + " tensors");
    }
    Tensor& target = *it->second;
    if (target.dtype != g.dtype || target.shape != g.shape) {
      throw Error("tensor '" + g.name + "' is " + layout(g) + " but the model's is " + layout(target));
    }
    target.data = g.data;
  }
  return whole;
}

}  // namespace sotto::model
