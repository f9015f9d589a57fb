// [model] as every config reads it: a built-in architecture or a TorchScript file, never both.
#include "common/ml/model_spec.h"

#include <catch2/catch.hpp>

#include "common/util/error.h"
#include "tests/support/test_support.h"

using sotto::config::TomlReader;

namespace {

sotto::ml::ModelSpec spec_from(const std::filesystem::path& file, const std::string& text) {
  sotto::test::write_file(file, text);
  auto reader = TomlReader::from_file(file);
  return sotto::ml::read_model_spec(reader);
}

}  // namespace

TEST_CASE("model spec: the built-in fashion_cnn by default and an architecture by name", "[config][model]") {
  sotto::test::TempDir dir;
  CHECK(spec_from(dir.path() / "a.toml", "").architecture == "fashion_cnn");
  CHECK(spec_from(dir.path() / "a.toml", "").torchscript.empty());
  const auto linear = spec_from(dir.path() / "a.toml", "[model]\narchitecture = \"fashion_linear\"\n");
  CHECK(linear.architecture == "fashion_linear");
  CHECK(linear.describe() == "the built-in fashion_linear model");
  CHECK_THROWS_WITH(spec_from(dir.path() / "a.toml", "[model]\narchitecture = \"resnet\"\n"),
                    Catch::Contains("model.architecture") && Catch::Contains("fashion_wide_mlp"));
}

TEST_CASE("model spec: a TorchScript file resolves against the config's directory and must exist", "[config][model]") {
  sotto::test::TempDir dir;
  sotto::test::write_file(dir.path() / "net.pt", "(a file)");
  const auto spec = spec_from(dir.path() / "a.toml", "[model]\ntorchscript = \"net.pt\"\n");
  CHECK(spec.torchscript == dir.path() / "net.pt");
  CHECK(spec.describe() == "the TorchScript model " + (dir.path() / "net.pt").string());
  CHECK_THROWS_WITH(
      spec_from(dir.path() / "a.toml", "[model]\ntorchscript = \"gone.pt\"\n"),
      Catch::Contains("model.torchscript") && Catch::Contains("gone.pt") && Catch::Contains("torch.jit.script"));
  CHECK_THROWS_WITH(
      spec_from(dir.path() / "a.toml", "[model]\ntorchscript = \"net.pt\"\narchitecture = \"fashion_cnn\"\n"),
      Catch::Contains("keep one"));
}
