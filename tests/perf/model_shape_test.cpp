// Model shapes: presets, element sizes, shapes read from a GGUF model.
#include <gtest/gtest.h>

#include "alspec/core/error.h"
#include "alspec/model/model.h"
#include "alspec/perf/model_shape.h"
#include "repo_paths.h"

namespace alspec::perf {
namespace {

TEST(ModelShape, ElementSizes) {
  EXPECT_DOUBLE_EQ(bytes_per_element("f16"), 2.0);
  EXPECT_DOUBLE_EQ(bytes_per_element("bf16"), 2.0);
  EXPECT_DOUBLE_EQ(bytes_per_element("q8_0"), 34.0 / 32.0);
  EXPECT_DOUBLE_EQ(bytes_per_element("Q4_K"), 144.0 / 256.0);
  EXPECT_DOUBLE_EQ(bytes_per_element("bfp8"), 17.0 / 16.0);
  EXPECT_DOUBLE_EQ(bytes_per_element("bfp4"), 9.0 / 16.0);
  EXPECT_THROW(bytes_per_element("fp7"), Error);
}

TEST(ModelShape, Llama31_8bPreset) {
  const ModelShape s = preset_shape("llama-3.1-8b", "bf16", "bf16");
  EXPECT_EQ(s.n_layers, 32);
  EXPECT_EQ(s.kv_dim(), 1024);
  // 8.03 B parameters minus the 0.53 B embedding table: 7.50 B matrix weights at 2 bytes.
  EXPECT_NEAR(s.weight_bytes() / 2, 7.50e9, 0.01e9);
  EXPECT_DOUBLE_EQ(s.kv_bytes_per_token_layer(), 2 * 1024 * 2.0);
  const ModelShape mixed = preset_shape("llama-3.1-8b", "bfp8", "bfp8", "bfp4");
  EXPECT_DOUBLE_EQ(mixed.layers[0].w_gate.bytes, 14336.0 * 4096 * 9 / 16);
  EXPECT_DOUBLE_EQ(mixed.layers[0].w_down.bytes, 14336.0 * 4096 * 17 / 16);
  EXPECT_DOUBLE_EQ(mixed.layers[0].wq.bytes, 4096.0 * 4096 * 17 / 16);
}

TEST(ModelShape, UnknownPresetListsKnownOnes) {
  try {
    preset_shape("llama-9", "bf16", "bf16");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("unknown model preset 'llama-9' (known: llama-3.1-8b, llama-3.2-1b"),
              std::string::npos)
        << e.what();
  }
}

TEST(ModelShape, FromGgufUsesTheRealTensorBytes) {
  const auto m = Model::load(testing_paths::stories260k_gguf());
  const ModelShape s = shape_from_model(*m, "f32");
  EXPECT_EQ(s.n_layers, m->config().n_layers);
  EXPECT_EQ(s.head_dim, m->config().head_dim);
  EXPECT_DOUBLE_EQ(s.kv_elem_bytes, 4.0);
  EXPECT_NEAR(s.weight_bytes(), static_cast<double>(m->weight_bytes_per_token()), 0.02 * s.weight_bytes());
  EXPECT_NO_THROW(validate(s));
}

}  // namespace
}  // namespace alspec::perf
