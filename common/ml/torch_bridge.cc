#include "common/ml/torch_bridge.h"

#include <torch/torch.h>

#include <bit>
#include <cstring>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/util/error.h"

namespace sotto::ml {

namespace {

static_assert(std::endian::native == std::endian::little,
              "ModelParameters holds little-endian bytes; the bridge copies tensors verbatim");

model::DType to_dtype(c10::ScalarType type, const std::string& name) {
  switch (type) {
    case torch::kFloat32: return model::DType::kFloat32;
    case torch::kFloat64: return model::DType::kFloat64;
    case torch::kInt64: return model::DType::kInt64;
    case torch::kInt32: return model::DType::kInt32;
    case torch::kUInt8: return model::DType::kUInt8;
    case torch::kInt8: return model::DType::kInt8;
    case torch::kFloat16: return model::DType::kFloat16;
    case torch::kBFloat16: return model::DType::kBFloat16;
    case torch::kBool: return model::DType::kBool;
    default:
      throw Error("tensor '" + name + "' has torch dtype " + std::string(c10::toString(type)) +
                  ", which ModelParameters cannot hold (supported: float32, float64, int64, int32, uint8, int8, "
                  "float16, bfloat16, bool)");
  }
}

c10::ScalarType to_torch(model::DType dtype) {
  switch (dtype) {
    case model::DType::kFloat32: return torch::kFloat32;
    case model::DType::kFloat64: return torch::kFloat64;
    case model::DType::kInt64: return torch::kInt64;
    case model::DType::kInt32: return torch::kInt32;
    case model::DType::kUInt8: return torch::kUInt8;
    case model::DType::kInt8: return torch::kInt8;
    case model::DType::kFloat16: return torch::kFloat16;
    case model::DType::kBFloat16: return torch::kBFloat16;
    case model::DType::kBool: return torch::kBool;
  }
  throw Error("unknown model dtype " + std::to_string(static_cast<int>(dtype)));
}

std::vector<std::int64_t> shape_of(const torch::Tensor& t) {
  const auto sizes = t.sizes();
  return {sizes.begin(), sizes.end()};
}

model::Tensor export_tensor(const std::string& name, const torch::Tensor& tensor) {
  const torch::Tensor cpu = tensor.detach().to(torch::kCPU).contiguous();
  model::Tensor out;
  out.name = name;
  out.dtype = to_dtype(cpu.scalar_type(), name);
  out.shape = shape_of(cpu);
  out.data.resize(cpu.nbytes());
  if (!out.data.empty()) std::memcpy(out.data.data(), cpu.data_ptr(), out.data.size());
  return out;
}

std::string describe(model::DType dtype, const std::vector<std::int64_t>& shape) {
  return std::string(model::dtype_name(dtype)) + " " + model::shape_string(shape);
}

// Throws unless `given` can be copied into `target` as is.
void check_compatible(const std::string& name, const torch::Tensor& target, const model::Tensor& given) {
  const model::DType want = to_dtype(target.scalar_type(), name);
  const std::vector<std::int64_t> want_shape = shape_of(target);
  if (given.dtype != want || given.shape != want_shape) {
    const char* what = given.dtype != want ? "dtype" : "shape";
    throw Error(std::string("cannot load tensor '") + name + "': " + what + " mismatch, given " +
                describe(given.dtype, given.shape) + " but the module has " + describe(want, want_shape));
  }
  if (given.data.size() != target.nbytes()) {
    throw Error("cannot load tensor '" + name + "': " + std::to_string(given.data.size()) + " bytes given, " +
                std::to_string(target.nbytes()) + " expected");
  }
}

void copy_into(torch::Tensor& target, const model::Tensor& given) {
  if (given.data.empty()) return;
  // from_blob does not take ownership and copy_ only reads the source, so the const_cast is safe.
  const torch::Tensor source = torch::from_blob(const_cast<std::byte*>(given.data.data()), given.shape,
                                                torch::TensorOptions().dtype(to_torch(given.dtype)));
  target.copy_(source);
}

}  // namespace

NamedTensors named_state(const torch::nn::Module& module) {
  NamedTensors out;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) out.emplace_back(item.key(), item.value());
  for (const auto& item : module.named_buffers(/*recurse=*/true)) out.emplace_back(item.key(), item.value());
  return out;
}

model::ModelParameters export_module(const torch::nn::Module& module) { return export_state(named_state(module)); }

void import_module(torch::nn::Module& module, const model::ModelParameters& params) {
  import_state(named_state(module), params);
}

model::ModelParameters export_delta(const torch::nn::Module& module, const model::ModelParameters& base) {
  return export_state_delta(named_state(module), base);
}

model::ModelParameters export_state(const NamedTensors& state) {
  model::ModelParameters params;
  for (const auto& [name, tensor] : state) params.add(export_tensor(name, tensor));
  return params;
}

void import_state(const NamedTensors& state, const model::ModelParameters& params) {
  std::unordered_map<std::string, const model::Tensor*> given;
  for (const auto& t : params.tensors()) given.emplace(t.name, &t);

  // Check everything before touching the module, so that a failed load leaves it unchanged.
  std::vector<const model::Tensor*> sources;
  sources.reserve(state.size());
  for (const auto& [name, tensor] : state) {
    const auto it = given.find(name);
    if (it == given.end()) {
      throw Error("cannot load parameters: tensor '" + name + "' of the module (" +
                  describe(to_dtype(tensor.scalar_type(), name), shape_of(tensor)) + ") is missing from the " +
                  std::to_string(params.size()) + " given tensors");
    }
    check_compatible(name, tensor, *it->second);
    sources.push_back(it->second);
    given.erase(it);
  }
  if (!given.empty()) {
    for (const auto& t : params.tensors()) {
      if (given.count(t.name)) {
        throw Error("cannot load parameters: tensor '" + t.name + "' (" + describe(t.dtype, t.shape) +
                    ") is not in the module, which has " + std::to_string(state.size()) + " tensors");
      }
    }
  }

  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < state.size(); ++i) {
    torch::Tensor target = state[i].second;  // shares the module's storage
    copy_into(target, *sources[i]);
  }
}

model::ModelParameters export_state_delta(const NamedTensors& state, const model::ModelParameters& base) {
  if (state.size() != base.size()) {
    throw Error("cannot compute the update: the module has " + std::to_string(state.size()) +
                " tensors, the base model " + std::to_string(base.size()));
  }
  std::vector<model::Tensor> out;
  out.reserve(state.size());
  for (std::size_t i = 0; i < state.size(); ++i) {
    const auto& [name, tensor] = state[i];
    const model::Tensor& b = base.tensors()[i];
    if (b.name != name) {
      throw Error("cannot compute the update: the module's tensor " + std::to_string(i) + " is '" + name +
                  "', the base model's is '" + b.name + "'");
    }
    check_compatible(name, tensor, b);
    if (tensor.scalar_type() == torch::kFloat32 && tensor.device().is_cpu() && tensor.is_contiguous()) {
      model::Tensor d{name, b.dtype, b.shape, std::vector<std::byte>(b.data.size())};
      const float* local = tensor.data_ptr<float>();
      const auto from = b.as<float>();
      const auto to = d.as_mutable<float>();
      for (std::size_t k = 0; k < to.size(); ++k) to[k] = local[k] - from[k];
      out.push_back(std::move(d));
    } else {
      out.push_back(model::subtract(export_tensor(name, tensor), b));
    }
  }
  return model::ModelParameters(std::move(out));
}

}  // namespace sotto::ml
