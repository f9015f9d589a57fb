#include "client/personal_state.h"

#include <sstream>

#include "common/codec/model_file.h"

namespace sotto::client {

model::ModelParameters PersonalState::load() const {
  return load_file(kPersonalStateFile, tensors_);
}

void PersonalState::save(const model::ModelParameters& personal) {
  save_file(kPersonalStateFile, personal, tensors_);
}

model::ModelParameters PersonalState::load_personal_model() const {
  return load_file(kPersonalModelFile, personal_model_);
}

void PersonalState::save_personal_model(const model::ModelParameters& model) {
  save_file(kPersonalModelFile, model, personal_model_);
}

void PersonalState::erase() {
  {
    std::lock_guard lock(mutex_);
    tensors_ = {};
    personal_model_ = {};
  }
  if (!store_) return;
  store_->remove(kPersonalStateFile);
  store_->remove(kPersonalModelFile);
}

model::ModelParameters PersonalState::load_file(const char* name, const model::ModelParameters& memory) const {
  if (!store_) {
    std::lock_guard lock(mutex_);
    return memory;
  }
  const auto bytes = store_->read(name);
  if (!bytes) return {};
  std::istringstream in(*bytes);
  return codec::parse_model_file(in, bytes->size(), (store_->dir() / name).string()).model;
}

void PersonalState::save_file(const char* name, const model::ModelParameters& params, model::ModelParameters& memory) {
  if (!store_) {
    std::lock_guard lock(mutex_);
    memory = params;
    return;
  }
  codec::ModelFile file;
  file.model = params;
  store_->write(name, codec::encode_model_file(file));
}

}  // namespace sotto::client
