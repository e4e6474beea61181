// Forward-pass invariants: batched prefill equals step-by-step decode bit for bit, results do
// not depend on the thread count, bad input gives clear errors.
#include "alspec/model/session.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "alspec/core/error.h"
#include "alspec/model/model.h"
#include "alspec/model/sampler.h"
#include "alspec/model/synthetic_model.h"
#include "alspec/runtime/device.h"
#include "alspec/tokenizer/tokenizer.h"
#include "repo_paths.h"

namespace alspec {
namespace {

const std::string kStories = std::string(ALSPEC_SOURCE_DIR) + "/assets/models/stories260K.gguf";

std::vector<std::vector<float>> decode_all(const Model& m, int threads, DType kv, const std::vector<int32_t>& toks,
                                           int spec_chunk = 0) {
  Device dev({.name = "t", .threads = threads, .cores = {}});
  Session s(m, dev, {.ctx_size = 256, .kv_type = kv, .spec_chunk = spec_chunk, .prefill_batch = 64});
  std::vector<std::vector<float>> out;
  for (int32_t t : toks) {
    const float* l = s.decode(t);
    out.emplace_back(l, l + m.config().n_vocab);
  }
  return out;
}

std::vector<int32_t> some_tokens(const Model& m, int n) {
  std::vector<int32_t> t{m.tokenizer().bos_id()};
  for (int i = 1; i < n; ++i) t.push_back(static_cast<int32_t>((i * 37 + 11) % m.config().n_vocab));
  return t;
}

TEST(Session, PrefillEqualsDecodeBitwise) {
  auto m = Model::load(kStories);
  const auto toks = some_tokens(*m, 150);
  for (DType kv : {DType::F32, DType::F16, DType::BF16}) {
    const auto ref = decode_all(*m, 1, kv, toks, 16);
    Device dev({.name = "t", .threads = 2, .cores = {}});
    Session s(*m, dev, {.ctx_size = 256, .kv_type = kv, .spec_chunk = 16, .prefill_batch = 40});
    int64_t seen = 0;
    s.prefill(toks, PrefillLogits::kAll, [&](int64_t i, const float* l) {
      ASSERT_EQ(i, seen++);
      ASSERT_EQ(0, std::memcmp(l, ref[static_cast<size_t>(i)].data(), sizeof(float) * ref[0].size()))
          << "position " << i << " kv " << dtype_name(kv);
    });
    EXPECT_EQ(seen, static_cast<int64_t>(toks.size()));
    EXPECT_EQ(s.position(), static_cast<int64_t>(toks.size()));
  }
}

TEST(Session, ThreadCountDoesNotChangeLogits) {
  auto m = Model::load(kStories);
  const auto toks = some_tokens(*m, 60);
  const auto a = decode_all(*m, 1, DType::F16, toks);
  for (int threads : {2, 3}) {
    const auto b = decode_all(*m, threads, DType::F16, toks);
    for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << "threads " << threads << " step " << i;
  }
}

// A synthetic model with quantized weights and the 8-bit KV cache, across thread counts.
TEST(Session, QuantizedSyntheticModelThreadInvariant) {
  for (DType wt : {DType::Q4_0, DType::Q8_0, DType::Q4_K, DType::Q6_K}) {
    SyntheticModelSpec spec = synthetic_preset("qwen2-tiny");
    spec.weight_type = wt;
    spec.tokenizer_donor = testing_paths::stories260k_gguf();
    const std::string path = std::string(ALSPEC_BINARY_DIR) + "/session_test_" + std::string(dtype_name(wt)) + ".gguf";
    write_synthetic_model(spec, path);
    auto m = Model::load(path);
    const auto toks = some_tokens(*m, 40);
    const auto kv = m->config().head_dim % 32 == 0 ? DType::Q8_0 : DType::F16;
    const auto a = decode_all(*m, 1, kv, toks);
    const auto b = decode_all(*m, 2, kv, toks);
    for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << dtype_name(wt) << " step " << i;
  }
}

// Quantized weights take the GEMM kernels in prefill (matmul of >= 2 tokens); each logit row
// must still equal step-by-step decode bit for bit, with batches that are not whole GEMM tiles.
TEST(Session, QuantizedPrefillEqualsDecodeBitwise) {
  for (DType wt : {DType::Q4_0, DType::Q8_0, DType::Q4_K, DType::Q6_K}) {
    SyntheticModelSpec spec = synthetic_preset("qwen2-tiny");
    spec.weight_type = wt;
    spec.tokenizer_donor = testing_paths::stories260k_gguf();
    const std::string path =
        std::string(ALSPEC_BINARY_DIR) + "/session_prefill_test_" + std::string(dtype_name(wt)) + ".gguf";
    write_synthetic_model(spec, path);
    auto m = Model::load(path);
    const auto toks = some_tokens(*m, 45);
    const auto ref = decode_all(*m, 1, DType::F16, toks);
    Device dev({.name = "t", .threads = 2, .cores = {}});
    Session s(*m, dev, {.ctx_size = 256, .kv_type = DType::F16, .spec_chunk = 0, .prefill_batch = 19});
    int64_t seen = 0;
    s.prefill(toks, PrefillLogits::kAll, [&](int64_t i, const float* l) {
      ASSERT_EQ(i, seen++);
      ASSERT_EQ(0, std::memcmp(l, ref[static_cast<size_t>(i)].data(), sizeof(float) * ref[0].size()))
          << dtype_name(wt) << " position " << i;
    });
    EXPECT_EQ(seen, static_cast<int64_t>(toks.size()));
  }
}

TEST(Session, Errors) {
  auto m = Model::load(kStories);
  Device dev({.name = "t", .threads = 1, .cores = {}});
  Session s(*m, dev, {.ctx_size = 8, .kv_type = DType::F32, .spec_chunk = 0, .prefill_batch = 64});
  const auto toks = some_tokens(*m, 9);
  EXPECT_THROW(s.prefill(toks, PrefillLogits::kLast, [](int64_t, const float*) {}), Error);
  EXPECT_EQ(s.position(), 0);
  const std::vector<int32_t> bad{1, 99999};
  EXPECT_THROW(s.prefill(bad, PrefillLogits::kLast, [](int64_t, const float*) {}), Error);
  EXPECT_THROW(s.decode(-1), Error);
  // q8_0 cache needs head_dim % 32 == 0 (stories260K has 8).
  EXPECT_THROW(Session(*m, dev, {.ctx_size = 8, .kv_type = DType::Q8_0, .spec_chunk = 0, .prefill_batch = 64}), Error);
  EXPECT_THROW(Session(*m, dev, {.ctx_size = 100000, .kv_type = DType::F16, .spec_chunk = 0, .prefill_batch = 64}), Error);
}

TEST(Sampler, GreedyAndSeededSampling) {
  std::vector<float> logits{0.1f, 2.0f, 1.9f, -1.0f, 2.0f};
  Sampler greedy({}, 5);
  EXPECT_EQ(greedy.sample(logits.data(), {}), 1);  // first maximum wins ties
  SamplingParams p;
  p.temperature = 1.0f;
  p.seed = 99;
  Sampler a(p, 5), b(p, 5);
  std::vector<int> counts(5);
  for (int i = 0; i < 4000; ++i) {
    const int32_t x = a.sample(logits.data(), {});
    ASSERT_EQ(x, b.sample(logits.data(), {}));  // same seed, same stream
    counts[static_cast<size_t>(x)]++;
  }
  // Frequencies follow softmax: p(1) = p(4) ~ 0.34, p(2) ~ 0.31, p(0) ~ 0.06, p(3) ~ 0.02.
  EXPECT_NEAR(counts[1] / 4000.0, 0.343, 0.03);
  EXPECT_NEAR(counts[2] / 4000.0, 0.310, 0.03);
  EXPECT_NEAR(counts[0] / 4000.0, 0.056, 0.015);
  p.top_k = 2;
  Sampler k2(p, 5);
  for (int i = 0; i < 200; ++i) {
    const int32_t x = k2.sample(logits.data(), {});
    EXPECT_TRUE(x == 1 || x == 4) << x;
  }
  p.top_k = 0;
  p.min_p = 0.5f;  // keeps tokens with p >= 0.5 * p_max: ids 1, 4, 2
  Sampler mp(p, 5);
  for (int i = 0; i < 200; ++i) EXPECT_NE(mp.sample(logits.data(), {}), 0);
  p.min_p = 0.0f;
  p.top_p = 0.3f;  // the single most likely token (id 1 by the tie order) already reaches 0.3
  Sampler tp(p, 5);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(tp.sample(logits.data(), {}), 1);
  // Repetition penalty pushes a repeated token below its rival.
  SamplingParams rp;
  rp.repeat_penalty = 1.5f;
  Sampler r(rp, 5);
  const std::vector<int32_t> hist{1};
  EXPECT_EQ(r.sample(logits.data(), hist), 4);
  SamplingParams bad;
  bad.top_p = 0.0f;
  EXPECT_THROW(Sampler(bad, 5), Error);
}

}  // namespace
}  // namespace alspec
