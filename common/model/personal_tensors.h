// PersonalTensors: which of a model's tensors stay on the device — a personal head (FedPer, Arivazhagan et al.
// 2019; FedRep, Collins et al. 2021), BatchNorm statistics (FedBN, Li et al. 2021) — named by glob patterns on
// tensor names ("head.*", "*.running_mean"; `*`, `?` and `[...]` as in fnmatch(3), where `*` also matches dots).
//
// The aggregator's plan names them (personalization.personal): the global model it holds and sends has only the
// federated tensors, and updates carry only those. A device may name more in its own config, never fewer: it
// refuses a round whose model would carry a tensor it keeps. Here are the set and the splitting of a model by it.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/model/parameters.h"

namespace sotto::model {

class PersonalTensors {
 public:
  PersonalTensors() = default;
  // Throws sotto::Error for an empty pattern.
  explicit PersonalTensors(std::vector<std::string> patterns);

  bool empty() const { return patterns_.empty(); }
  const std::vector<std::string>& patterns() const { return patterns_; }
  bool is_personal(std::string_view tensor_name) const;
  // "head.*", "*.running_mean" — for messages.
  std::string describe() const;

  // The model without its personal tensors, and its personal tensors alone, each in the model's order.
  ModelParameters federated_part(const ModelParameters& params) const;
  ModelParameters personal_part(const ModelParameters& params) const;
  // The first pattern that matches none of the model's tensors (a typo, or another model's layer), if any.
  std::optional<std::string> unmatched_pattern(const ModelParameters& params) const;
  // The first tensor of `params` that is personal, if any.
  std::optional<std::string> first_personal(const ModelParameters& params) const;
  // The global model a server holds: `whole` (the initial model, `model_name` in messages) without its personal
  // tensors. Throws sotto::Error for a pattern that names none of its tensors (a typo would otherwise federate
  // what was meant to stay on the devices) and for patterns that leave nothing to federate.
  ModelParameters global_part(const ModelParameters& whole, const std::string& model_name) const;

 private:
  std::vector<std::string> patterns_;
};

// `whole` with each tensor of `given` in place of its namesake (same dtype and shape), in `whole`'s order. Throws
// sotto::Error naming a tensor of `given` that `whole` lacks or whose layout differs.
ModelParameters with_tensors(ModelParameters whole, const ModelParameters& given);

}  // namespace sotto::model
