// Plan codec: ml::TrainingPlan <-> sotto.v1.TrainingPlan, with validation of what arrives off the wire (a plan
// with zero epochs, a non-positive learning rate, an unknown optimizer or a negative proximal_mu is refused with the
// field named).
#pragma once

#include "common/ml/training_plan.h"
#include "sotto/v1/sotto.pb.h"

namespace sotto::codec {

v1::TrainingPlan plan_to_proto(const ml::TrainingPlan& plan);
// Throws sotto::Error naming the bad field.
ml::TrainingPlan plan_from_proto(const v1::TrainingPlan& plan);

}  // namespace sotto::codec
