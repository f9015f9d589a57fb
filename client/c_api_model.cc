// The C API's own training and inference (include/sotto/sotto_client.h): a client whose library trains the config's
// model on the app's examples (client/app_data_trainer.h), the person's model run on the app's images, and where
// the optional LibTorch module is.
#include <string>

#include "client/c_api_handle.h"
#include "client/state_store.h"
#include "common/ml/image_model.h"
#include "common/ml/torch_runtime.h"
#include "common/util/error.h"

namespace {

using namespace sotto;
using client::c_api::fail;

constexpr std::size_t kImageBytes = ml::kImageSide * ml::kImageSide;
// The most examples the app may hand over for a round (784 MB of images).
constexpr std::uint64_t kMaxAppExamples = 1'000'000;

// The app's examples, read through its callback from index 0 until it says there are no more.
data::ImageDataset read_app_examples(sotto_example_fn read, void* user) {
  data::ImageDataset examples;
  examples.rows = examples.cols = static_cast<std::uint32_t>(ml::kImageSide);
  for (std::uint64_t index = 0;; ++index) {
    if (index == kMaxAppExamples) {
      throw Error("the app's example callback gave more than " + std::to_string(kMaxAppExamples) +
                  " examples; return 0 after the last one (or hand over at most that many)");
    }
    examples.pixels.resize((index + 1) * kImageBytes);
    std::uint32_t label = 0;
    const int got = read(user, index, examples.pixels.data() + index * kImageBytes, kImageBytes, &label);
    if (got == 0) break;
    if (got != 1) {
      throw Error("the app's example callback failed at example " + std::to_string(index) + " (it returned " +
                  std::to_string(got) + "; 1 is an example, 0 the end)");
    }
    if (label > 255) throw Error("example " + std::to_string(index) + " has label " + std::to_string(label));
    examples.labels.push_back(static_cast<std::uint8_t>(label));
  }
  examples.pixels.resize(examples.labels.size() * kImageBytes);
  return examples;
}

}  // namespace

extern "C" {

sotto_status sotto_set_torch_runtime(const char* path) {
  ml::set_torch_runtime_path(path ? path : "");
  return SOTTO_OK;
}

sotto_status sotto_client_create_model_trainer(const sotto_client_options* options, sotto_example_fn examples,
                                               void* examples_user, sotto_client** out) {
  if (!options || !options->config_file || !examples || !out) {
    return fail(SOTTO_ERROR_INVALID_ARGUMENT, "sotto_client_create_model_trainer needs options with a config_file, "
                                              "an example callback and somewhere to put the client");
  }
  client::SottoClientConfig config;
  if (const sotto_status s = client::c_api::load_config(*options, config); s != SOTTO_OK) return s;
  client::AppDataTrainer::Options trainer_options{
      config.model, config.client.limits.training_threads, config.local_fraction,
      ml::client_training_seed(config.partition_seed, config.client.client_id)};
  auto handle = std::make_unique<sotto_client>();
  handle->model_trainer = std::make_shared<client::AppDataTrainer>(
      trainer_options, [examples, examples_user] { return read_app_examples(examples, examples_user); });
  auto trainer = handle->model_trainer;
  return client::c_api::finish_create(std::move(handle), std::move(config), std::move(trainer), out);
}

sotto_status sotto_client_predict(sotto_client* c, const uint8_t* pixels, size_t pixel_count, float* logits,
                                  size_t classes) {
  if (!c || !pixels || !logits) return fail(SOTTO_ERROR_INVALID_ARGUMENT, "sotto_client_predict: a null argument");
  if (!c->model_trainer) {
    return fail(SOTTO_ERROR_INVALID_ARGUMENT, "sotto_client_predict runs the model the library trains "
                                              "(sotto_client_create_model_trainer); this client's app trains its own");
  }
  if (pixel_count != kImageBytes) {
    return fail(SOTTO_ERROR_INVALID_ARGUMENT, "sotto_client_predict: an image is " + std::to_string(kImageBytes) +
                                                  " pixels (28x28), not " + std::to_string(pixel_count));
  }
  try {
    data::ImageDataset image;
    image.rows = image.cols = static_cast<std::uint32_t>(ml::kImageSide);
    image.pixels.assign(pixels, pixels + pixel_count);
    image.labels.push_back(0);
    const client::Client& person = *c->client;
    const std::vector<float> out = c->model_trainer->predict(image, person.state_generation(), [&] {
      return client::AppDataTrainer::PersonState{person.personal_model(), person.personal_tensors()};
    });
    if (out.size() != classes) {
      return fail(SOTTO_ERROR_INVALID_ARGUMENT, "sotto_client_predict: the model gives " +
                                                    std::to_string(out.size()) + " logits; pass classes = " +
                                                    std::to_string(out.size()));
    }
    std::copy(out.begin(), out.end(), logits);
    return SOTTO_OK;
  } catch (const client::StateError& e) {
    return fail(SOTTO_ERROR_STATE, e.what());
  } catch (const std::exception& e) {
    return fail(SOTTO_ERROR_TRAINING, std::string("sotto_client_predict: ") + e.what());
  }
}

}  // extern "C"
