#include "client/personal_state.h"

#include <sstream>

#include "common/codec/model_file.h"

namespace sotto::client {

model::ModelParameters PersonalState::load() const {
  if (!store_) return memory_;
  const auto bytes = store_->read(kPersonalStateFile);
  if (!bytes) return {};
  std::istringstream in(*bytes);
  return codec::parse_model_file(in, bytes->size(), (store_->dir() / kPersonalStateFile).string()).model;
}

void PersonalState::save(const model::ModelParameters& personal) {
  if (!store_) {
    memory_ = personal;
    return;
  }
  codec::ModelFile file;
  file.model = personal;
  store_->write(kPersonalStateFile, codec::encode_model_file(file));
}

void PersonalState::erase() {
  memory_ = {};
  if (store_) store_->remove(kPersonalStateFile);
}

}  // namespace sotto::client
