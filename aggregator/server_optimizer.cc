#include "aggregator/server_optimizer.h"

#include <cstring>

#include <cmath>
#include <span>
#include <sstream>

#include "common/util/error.h"

namespace sotto::aggregator {

namespace {

const char* display_name(ServerOptimizerKind kind) {
  switch (kind) {
    case ServerOptimizerKind::kAdagrad: return "FedAdagrad";
    case ServerOptimizerKind::kAdam: return "FedAdam";
    case ServerOptimizerKind::kYogi: return "FedYogi";
  }
  return "ServerOptimizer";
}

std::string number(double x) {
  std::ostringstream s;
  s << x;
  return s.str();
}

bool optimized(model::DType dtype) {
  return dtype == model::DType::kFloat32 || dtype == model::DType::kFloat64;
}

double sign(double x) {
  return x > 0 ? 1.0 : x < 0 ? -1.0 : 0.0;
}

}  // namespace

ServerOptimizer::ServerOptimizer(ServerOptimizerKind kind, ServerOptimizerOptions options)
    : kind_(kind), options_(options), mean_(display_name(kind)) {
  const std::string who = display_name(kind);
  const auto& o = options_;
  if (!(o.learning_rate > 0) || !std::isfinite(o.learning_rate)) {
    throw Error(who + ": server learning rate must be positive and finite, got " + number(o.learning_rate));
  }
  if (!(o.beta1 >= 0 && o.beta1 < 1)) throw Error(who + ": beta1 must be in [0, 1), got " + number(o.beta1));
  if (kind != ServerOptimizerKind::kAdagrad && !(o.beta2 >= 0 && o.beta2 < 1)) {
    throw Error(who + ": beta2 must be in [0, 1), got " + number(o.beta2));
  }
  if (!(o.tau > 0) || !std::isfinite(o.tau))
    throw Error(who + ": tau must be positive and finite, got " + number(o.tau));
}

std::string ServerOptimizer::name() const {
  switch (kind_) {
    case ServerOptimizerKind::kAdagrad: return "fedadagrad";
    case ServerOptimizerKind::kAdam: return "fedadam";
    case ServerOptimizerKind::kYogi: return "fedyogi";
  }
  return "server_optimizer";
}

void ServerOptimizer::begin_round(const model::ModelParameters& global) {
  mean_.reset(global);
}

void ServerOptimizer::accumulate(model::ModelParameters delta, std::uint64_t num_examples) {
  mean_.add(std::move(delta), num_examples);
}

void ServerOptimizer::accumulate_sole(model::ModelParameters delta, std::uint64_t num_examples) {
  mean_.add_sole(std::move(delta), num_examples);
}

void ServerOptimizer::init_or_check_state(const model::ModelParameters& global) {
  if (m_.empty() && steps_ == 0) {
    m_.assign(global.size(), {});
    v_.assign(global.size(), {});
    names_.clear();
    for (const auto& tensor : global.tensors()) names_.push_back(tensor.name);
    for (std::size_t t = 0; t < global.size(); ++t) {
      const auto& tensor = global.tensors()[t];
      if (!optimized(tensor.dtype)) continue;
      m_[t].assign(tensor.num_elements(), 0.0);
      v_[t].assign(tensor.num_elements(), options_.tau * options_.tau);
    }
    return;
  }
  const std::string who = display_name(kind_);
  if (m_.size() != global.size()) {
    throw Error(who + ": the model now has " + std::to_string(global.size()) +
                " tensors, but the optimizer state was "
                "built for " +
                std::to_string(m_.size()) + "; the server optimizer cannot continue on another model");
  }
  for (std::size_t t = 0; t < global.size(); ++t) {
    const auto& tensor = global.tensors()[t];
    const std::size_t expected = optimized(tensor.dtype) ? tensor.num_elements() : 0;
    if (m_[t].size() != expected) {
      throw Error(who + ": tensor '" + tensor.name +
                  "' changed dtype or shape since the optimizer state was built; "
                  "the server optimizer cannot continue on another model");
    }
  }
}

model::ModelParameters ServerOptimizer::finish_round(const model::ModelParameters& global) {
  mean_.require_updates();
  mean_.check_layout(global);
  mean_.materialize();
  init_or_check_state(global);

  const double eta = options_.learning_rate;
  const double beta1 = options_.beta1;
  const double beta2 = options_.beta2;
  const double tau = options_.tau;
  model::ModelParameters next = global;
  for (std::size_t t = 0; t < next.size(); ++t) {
    const auto& in = global.tensors()[t];
    auto& out = next.mutable_tensors()[t];
    if (!optimized(in.dtype)) {
      mean_.apply_mean(t, in, out);  // integer tensors: FedAvg's rounded mean delta
      continue;
    }
    auto step = [&](auto tag) {
      using T = decltype(tag);
      std::span<const T> x = in.as<T>();
      std::span<T> y = out.as_mutable<T>();
      std::vector<double>& m = m_[t];
      std::vector<double>& v = v_[t];
      for (std::size_t i = 0; i < x.size(); ++i) {
        const double delta = mean_.mean(t, i);
        const double delta2 = delta * delta;
        m[i] = beta1 * m[i] + (1 - beta1) * delta;
        switch (kind_) {
          case ServerOptimizerKind::kAdagrad: v[i] = v[i] + delta2; break;
          case ServerOptimizerKind::kAdam: v[i] = beta2 * v[i] + (1 - beta2) * delta2; break;
          case ServerOptimizerKind::kYogi: v[i] = v[i] - (1 - beta2) * delta2 * sign(v[i] - delta2); break;
        }
        y[i] = static_cast<T>(static_cast<double>(x[i]) + eta * m[i] / (std::sqrt(v[i]) + tau));
      }
    };
    if (in.dtype == model::DType::kFloat32) {
      step(float{});
    } else {
      step(double{});
    }
  }
  ++steps_;
  mean_.release();
  return next;
}

namespace {

model::Tensor flat_f64(const std::string& name, const std::vector<double>& values) {
  model::Tensor t{name, model::DType::kFloat64, {static_cast<std::int64_t>(values.size())},
                  std::vector<std::byte>(values.size() * sizeof(double))};
  std::memcpy(t.data.data(), values.data(), t.data.size());
  return t;
}

}  // namespace

model::ModelParameters ServerOptimizer::save_state() const {
  model::ModelParameters state;
  model::Tensor steps{"steps", model::DType::kInt64, {}, std::vector<std::byte>(sizeof(std::int64_t))};
  const auto count = static_cast<std::int64_t>(steps_);
  std::memcpy(steps.data.data(), &count, sizeof count);
  state.add(std::move(steps));
  for (std::size_t t = 0; t < m_.size(); ++t) {
    if (m_[t].empty()) continue;
    state.add(flat_f64("m." + names_[t], m_[t]));
    state.add(flat_f64("v." + names_[t], v_[t]));
  }
  return state;
}

void ServerOptimizer::load_state(const model::ModelParameters& state, const model::ModelParameters& global) {
  const std::string who = display_name(kind_);
  const model::Tensor* steps = state.find("steps");
  if (!steps || steps->dtype != model::DType::kInt64 || steps->num_elements() != 1) {
    throw Error(who + ": the checkpoint holds no optimizer state (it was written by another strategy)");
  }
  const std::int64_t count = steps->as<std::int64_t>()[0];
  if (count < 0) throw Error(who + ": the checkpoint's optimizer step count is negative");
  std::vector<std::vector<double>> m(global.size()), v(global.size());
  std::size_t used = 1;
  if (count > 0) {
    for (std::size_t t = 0; t < global.size(); ++t) {
      const auto& tensor = global.tensors()[t];
      if (!optimized(tensor.dtype)) continue;
      const model::Tensor* mt = state.find("m." + tensor.name);
      const model::Tensor* vt = state.find("v." + tensor.name);
      for (const model::Tensor* x : {mt, vt}) {
        if (!x || x->dtype != model::DType::kFloat64 || x->num_elements() != tensor.num_elements()) {
          throw Error(who + ": the checkpoint's optimizer state does not fit tensor '" + tensor.name +
                      "'; start from a fresh state.dir to change the model");
        }
      }
      m[t].assign(mt->as<double>().begin(), mt->as<double>().end());
      v[t].assign(vt->as<double>().begin(), vt->as<double>().end());
      used += 2;
    }
  }
  if (used != state.size()) {
    throw Error(who + ": the checkpoint's optimizer state holds tensors this model does not have");
  }
  steps_ = static_cast<std::uint64_t>(count);
  if (count > 0) {
    m_ = std::move(m);
    v_ = std::move(v);
    names_.clear();
    for (const auto& tensor : global.tensors()) names_.push_back(tensor.name);
  }
}

}  // namespace sotto::aggregator
