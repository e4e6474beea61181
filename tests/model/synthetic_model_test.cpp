// The synthetic model writer: files read back with the GGUF reader have the shapes, types and
// metadata the spec asks for, deterministic weights of the intended scale, and the donor's
// tokenizer.
#include "alspec/model/synthetic_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "alspec/core/error.h"
#include "alspec/gguf/gguf_file.h"
#include "alspec/kernels/quant.h"
#include "repo_paths.h"

namespace alspec {
namespace {

namespace fs = std::filesystem;

const std::string kDonor = testing_paths::stories260k_gguf();

// A per-test file in the build tree, removed afterwards.
class TempPath {
 public:
  explicit TempPath(const std::string& tag) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string(info->test_suite_name()) + "_" + info->name() + "_" + tag + ".gguf";
    for (char& c : name) {
      if (c == '/') c = '_';
    }
    path_ = (fs::path(ALSPEC_BINARY_DIR) / "synthetic_model_test" / name).string();
    fs::create_directories(fs::path(path_).parent_path());
  }
  ~TempPath() { fs::remove(path_); }
  const std::string& str() const { return path_; }

 private:
  std::string path_;
};

SyntheticModelSpec small_spec(DType type) {
  SyntheticModelSpec s;
  s.n_layers = 2;
  s.n_embd = 256;
  s.n_head = 8;
  s.n_head_kv = 2;
  s.head_dim = 32;
  s.n_ff = 512;
  s.weight_type = type;
  s.tokenizer_donor = kDonor;
  return s;
}

std::vector<float> dequantized(const gguf::TensorInfo& t) {
  std::vector<float> out(t.n_elements);
  const int64_t cols = static_cast<int64_t>(t.dims[0]);
  const size_t row_size = row_bytes(t.type, cols);
  for (uint64_t r = 0; r < t.n_elements / t.dims[0]; ++r)
    dequantize_row(t.type, t.data + r * row_size, out.data() + r * cols, cols);
  return out;
}

double rms(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += static_cast<double>(x) * x;
  return std::sqrt(s / static_cast<double>(v.size()));
}

std::vector<char> file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

class SyntheticModelTypes : public ::testing::TestWithParam<DType> {};

TEST_P(SyntheticModelTypes, ReadsBackWithSpecShapesTypesAndMetadata) {
  const DType type = GetParam();
  const SyntheticModelSpec spec = small_spec(type);
  TempPath path(std::string(dtype_name(type)));
  write_synthetic_model(spec, path.str());
  const auto f = gguf::GgufFile::open(path.str());
  const auto donor = gguf::GgufFile::open(kDonor);

  EXPECT_EQ(f->get_string("general.architecture"), "llama");
  EXPECT_EQ(f->get_u32("llama.embedding_length"), 256u);
  EXPECT_EQ(f->get_u32("llama.block_count"), 2u);
  EXPECT_EQ(f->get_u32("llama.feed_forward_length"), 512u);
  EXPECT_EQ(f->get_u32("llama.attention.head_count"), 8u);
  EXPECT_EQ(f->get_u32("llama.attention.head_count_kv"), 2u);
  EXPECT_EQ(f->get_u32("llama.attention.key_length"), 32u);
  EXPECT_EQ(f->get_u32("llama.rope.dimension_count"), 32u);
  EXPECT_EQ(f->get_u32("llama.context_length"), 4096u);
  EXPECT_EQ(f->get_f32("llama.rope.freq_base"), 10000.0f);
  EXPECT_EQ(f->get_f32("llama.attention.layer_norm_rms_epsilon"), 1e-5f);
  EXPECT_EQ(f->find("llama.rope.scaling.type"), nullptr);

  // Tokenizer copied key for key.
  size_t copied = 0;
  for (const auto& key : donor->keys()) {
    if (!key.starts_with("tokenizer.")) continue;
    ASSERT_NE(f->find(key), nullptr) << key;
    EXPECT_TRUE(*f->find(key) == *donor->find(key)) << key;
    ++copied;
  }
  EXPECT_GE(copied, 5u);
  const uint64_t n_vocab = donor->get_string_array("tokenizer.ggml.tokens").size();
  EXPECT_EQ(f->get_u32("llama.vocab_size"), n_vocab);

  // Shapes (GGUF dims: {columns, rows}) and types; norms stay F32.
  std::map<std::string, std::pair<std::vector<uint64_t>, DType>> want = {
      {"token_embd.weight", {{256, n_vocab}, type}},
      {"output_norm.weight", {{256}, DType::F32}},
      {"output.weight", {{256, n_vocab}, type}},
  };
  for (int i = 0; i < 2; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    want[p + "attn_norm.weight"] = {{256}, DType::F32};
    want[p + "ffn_norm.weight"] = {{256}, DType::F32};
    want[p + "attn_q.weight"] = {{256, 256}, type};
    want[p + "attn_k.weight"] = {{256, 64}, type};
    want[p + "attn_v.weight"] = {{256, 64}, type};
    want[p + "attn_output.weight"] = {{256, 256}, type};
    want[p + "ffn_gate.weight"] = {{256, 512}, type};
    want[p + "ffn_up.weight"] = {{256, 512}, type};
    want[p + "ffn_down.weight"] = {{512, 256}, type};
  }
  ASSERT_EQ(f->tensors().size(), want.size());
  for (const auto& t : f->tensors()) {
    ASSERT_TRUE(want.count(t.name)) << t.name;
    EXPECT_EQ(t.dims, want[t.name].first) << t.name;
    EXPECT_EQ(t.type, want[t.name].second) << t.name;
  }

  // Scales: std = gain/sqrt(columns) (quantisation error included: 10%); norms in [0.8, 1.2].
  EXPECT_NEAR(rms(dequantized(*f->find_tensor("token_embd.weight"))), 1.0, 0.1);
  EXPECT_NEAR(rms(dequantized(*f->find_tensor("blk.1.attn_q.weight"))), 1.5 / 16, 0.15 / 16);
  EXPECT_NEAR(rms(dequantized(*f->find_tensor("blk.0.attn_v.weight"))), 1.0 / 16, 0.1 / 16);
  EXPECT_NEAR(rms(dequantized(*f->find_tensor("blk.0.ffn_down.weight"))), 2.0 / std::sqrt(512.0),
              0.2 / std::sqrt(512.0));
  EXPECT_NEAR(rms(dequantized(*f->find_tensor("output.weight"))), 4.0 / 16, 0.4 / 16);
  for (float x : dequantized(*f->find_tensor("blk.1.ffn_norm.weight"))) {
    EXPECT_GE(x, 0.8f);
    EXPECT_LE(x, 1.2f);
  }
}

INSTANTIATE_TEST_SUITE_P(AllComputeTypes, SyntheticModelTypes,
                         ::testing::Values(DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0,
                                           DType::Q4_K, DType::Q6_K),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(SyntheticModel, SameSeedSameBytesOtherSeedOtherWeights) {
  SyntheticModelSpec spec = small_spec(DType::Q4_K);
  spec.n_layers = 1;
  TempPath a("a"), b("b"), c("c");
  write_synthetic_model(spec, a.str());
  write_synthetic_model(spec, b.str());
  spec.seed = 2;
  write_synthetic_model(spec, c.str());
  EXPECT_EQ(file_bytes(a.str()), file_bytes(b.str()));
  const auto fa = gguf::GgufFile::open(a.str());
  const auto fc = gguf::GgufFile::open(c.str());
  for (const auto& t : fa->tensors()) {
    const auto* u = fc->find_tensor(t.name);
    ASSERT_NE(u, nullptr);
    ASSERT_EQ(u->nbytes, t.nbytes);
    EXPECT_NE(std::vector<uint8_t>(t.data, t.data + t.nbytes), std::vector<uint8_t>(u->data, u->data + u->nbytes))
        << t.name;
  }
}

TEST(SyntheticModel, LayerCountDoesNotChangeOtherTensors) {
  SyntheticModelSpec spec = small_spec(DType::F16);
  spec.n_layers = 1;
  TempPath one("1"), three("3");
  write_synthetic_model(spec, one.str());
  spec.n_layers = 3;
  write_synthetic_model(spec, three.str());
  const auto f1 = gguf::GgufFile::open(one.str());
  const auto f3 = gguf::GgufFile::open(three.str());
  EXPECT_EQ(f3->tensors().size(), f1->tensors().size() + 2 * 9);
  for (const auto& t : f1->tensors()) {
    const auto* u = f3->find_tensor(t.name);
    ASSERT_NE(u, nullptr) << t.name;
    EXPECT_EQ(std::vector<uint8_t>(t.data, t.data + t.nbytes), std::vector<uint8_t>(u->data, u->data + u->nbytes))
        << t.name;
  }
}

TEST(SyntheticModel, Qwen2HasQkvBiasesAndTiedOutput) {
  SyntheticModelSpec spec = synthetic_preset("qwen2-tiny");
  spec.n_layers = 1;
  spec.tokenizer_donor = kDonor;
  TempPath path("qwen2");
  write_synthetic_model(spec, path.str());
  const auto f = gguf::GgufFile::open(path.str());
  EXPECT_EQ(f->get_string("general.architecture"), "qwen2");
  EXPECT_EQ(f->get_f32("qwen2.rope.freq_base"), 1000000.0f);
  EXPECT_EQ(f->find_tensor("output.weight"), nullptr);
  for (const char* name : {"attn_q.bias", "attn_k.bias", "attn_v.bias"}) {
    const auto* t = f->find_tensor(std::string("blk.0.") + name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->type, DType::F32);
    EXPECT_EQ(t->dims.size(), 1u);
  }
  EXPECT_EQ(f->find_tensor("blk.0.attn_q.bias")->dims[0], 256u);
  EXPECT_EQ(f->find_tensor("blk.0.attn_k.bias")->dims[0], 64u);
  // Tied: the embedding is the classifier, so its rows are scaled for logits of std ~4.
  EXPECT_NEAR(rms(dequantized(*f->find_tensor("token_embd.weight"))), 4.0 / 16, 0.4 / 16);
}

TEST(SyntheticModel, Llama3ScalingAsMetadataOrTensor) {
  SyntheticModelSpec spec = small_spec(DType::F32);
  spec.n_layers = 1;
  spec.rope_base = 500000.0f;
  spec.rope_scaling = SyntheticRopeScaling::kLlama3;
  spec.rope_scaling_factor = 32.0f;
  spec.rope_original_context = 8192;
  TempPath meta("meta"), tensor("tensor");
  write_synthetic_model(spec, meta.str());
  spec.rope_scaling = SyntheticRopeScaling::kFreqsTensor;
  write_synthetic_model(spec, tensor.str());

  const auto fm = gguf::GgufFile::open(meta.str());
  EXPECT_EQ(fm->get_string("llama.rope.scaling.type"), "llama3");
  EXPECT_EQ(fm->get_f32("llama.rope.scaling.factor"), 32.0f);
  EXPECT_EQ(fm->get_u32("llama.rope.scaling.original_context_length"), 8192u);
  EXPECT_EQ(fm->get_f32("llama.rope.scaling.low_freq_factor"), 1.0f);
  EXPECT_EQ(fm->get_f32("llama.rope.scaling.high_freq_factor"), 4.0f);
  EXPECT_EQ(fm->find_tensor("rope_freqs.weight"), nullptr);

  const auto ft = gguf::GgufFile::open(tensor.str());
  EXPECT_EQ(ft->find("llama.rope.scaling.type"), nullptr);
  const auto* rf = ft->find_tensor("rope_freqs.weight");
  ASSERT_NE(rf, nullptr);
  ASSERT_EQ(rf->dims, std::vector<uint64_t>{16});
  const std::vector<float> div = dequantized(*rf);
  // Divisors run from 1 (short wavelengths kept) up to the factor (long ones slowed), monotonic.
  EXPECT_FLOAT_EQ(div.front(), 1.0f);
  EXPECT_FLOAT_EQ(div.back(), 32.0f);
  for (size_t i = 1; i < div.size(); ++i) EXPECT_GE(div[i], div[i - 1]);
}

TEST(SyntheticModel, PresetsHaveTheAdvertisedShapes) {
  for (const auto& name : synthetic_preset_names()) {
    const SyntheticModelSpec s = synthetic_preset(name);
    EXPECT_EQ(s.n_head % s.n_head_kv, 0) << name;
    EXPECT_FALSE(synthetic_preset_vocab(name).empty()) << name;
  }
  const SyntheticModelSpec tiny = synthetic_preset("llama3-tiny");
  EXPECT_EQ(tiny.n_layers, 2);
  EXPECT_EQ(tiny.n_head, 32);
  EXPECT_EQ(tiny.n_head_kv, 8);
  EXPECT_EQ(tiny.head_dim, 128);
  EXPECT_EQ(tiny.n_embd, 4096);
  EXPECT_EQ(tiny.n_ff, 512);
  EXPECT_EQ(tiny.context_length, 4096u);
  EXPECT_EQ(tiny.rope_scaling, SyntheticRopeScaling::kLlama3);
  const SyntheticModelSpec l1b = synthetic_preset("llama-3.2-1b");
  EXPECT_EQ(l1b.n_layers, 16);
  EXPECT_EQ(l1b.n_embd, 2048);
  EXPECT_EQ(l1b.head_dim, 64);
  EXPECT_EQ(l1b.n_ff, 8192);
  EXPECT_TRUE(l1b.tied_output);
  EXPECT_EQ(l1b.rope_base, 500000.0f);
  EXPECT_EQ(l1b.rope_scaling_factor, 32.0f);
  EXPECT_EQ(l1b.rope_original_context, 8192u);
  EXPECT_EQ(l1b.context_length, 131072u);
  EXPECT_EQ(synthetic_preset_vocab("llama-3.2-1b"), "llama-bpe");
  EXPECT_EQ(synthetic_preset("long-context").context_length, 131072u);
  EXPECT_EQ(synthetic_preset("llama3-mini").rope_scaling, SyntheticRopeScaling::kLlama3);
  EXPECT_EQ(synthetic_preset("qwen2-tiny").arch, "qwen2");
  EXPECT_EQ(synthetic_preset("mistral-tiny").arch, "mistral");
}

TEST(SyntheticModel, RejectsBadSpecs) {
  EXPECT_THROW(synthetic_preset("gpt-5"), Error);
  TempPath path("bad");
  SyntheticModelSpec s = small_spec(DType::F32);
  s.n_head_kv = 3;
  EXPECT_THROW(write_synthetic_model(s, path.str()), Error);
  s = small_spec(DType::Q4_K);
  s.n_embd = 128;  // not a whole number of 256-element blocks
  EXPECT_THROW(write_synthetic_model(s, path.str()), Error);
  s = small_spec(DType::Q4_1);  // not a compute type
  EXPECT_THROW(write_synthetic_model(s, path.str()), Error);
  s = small_spec(DType::F32);
  s.arch = "gpt2";
  EXPECT_THROW(write_synthetic_model(s, path.str()), Error);
  s = small_spec(DType::F32);
  s.tokenizer_donor = path.str() + ".missing";
  EXPECT_THROW(write_synthetic_model(s, path.str()), Error);
}

}  // namespace
}  // namespace alspec
