// Continuous batching: each sequence's batched decode equals its unbatched decode bit for bit
// (tokens, every step's logits, speculation statistics), with sequences of different modes,
// lambdas, S, sampling and lengths joining and leaving between steps, at any thread count.
#include "alspec/spec/batch_decoder.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "alspec/core/error.h"
#include "alspec/model/model.h"
#include "alspec/model/sampler.h"
#include "alspec/model/synthetic_model.h"
#include "alspec/runtime/device.h"
#include "alspec/spec/engine.h"
#include "alspec/spec/two_device_batch_decoder.h"
#include "alspec/tokenizer/tokenizer.h"
#include "repo_paths.h"

namespace alspec {
namespace {

struct SequencePlan {
  std::vector<int32_t> prompt;
  int join_step = 0;  // global batch step at which the sequence is prefilled and joins
  int n_new = 0;      // tokens generated, then it leaves
  SpecConfig spec;    // mode, lambda, S (spec_chunk), hooks
  SamplingParams sampling;
  SpecPredictor predictor = SpecPredictor::kSinkWindow;
  std::vector<int> layer_spec_chunk = {};  // per-layer S (spec budgets); empty = spec.spec_chunk
};

struct SequenceOutput {
  std::vector<int32_t> tokens;
  std::vector<std::vector<float>> logits;  // the distribution of every generated token
  SpecStats stats;
};

constexpr int64_t kCtx = 256;

// The unbatched reference: one Engine per sequence (alspec: the real two-device protocol).
SequenceOutput run_alone(const Model& m, const SequencePlan& p) {
  EngineOptions o;
  o.threads = 1;
  o.ctx_size = kCtx;
  o.kv_type = DType::F32;
  o.spec = p.spec;
  o.predictor = p.predictor;
  o.layer_spec_chunk = p.layer_spec_chunk;
  Engine engine(m, o);
  const int V = m.config().n_vocab;
  std::vector<float> cur(static_cast<size_t>(V));
  engine.prefill(p.prompt, PrefillLogits::kLast, [&](int64_t, const float* l) { std::copy_n(l, V, cur.begin()); });
  Sampler sampler(p.sampling, V);
  std::vector<int32_t> history = p.prompt;
  SequenceOutput out;
  for (int i = 0; i < p.n_new; ++i) {
    out.logits.push_back(cur);
    const int32_t t = sampler.sample(cur.data(), history);
    history.push_back(t);
    out.tokens.push_back(t);
    if (i + 1 == p.n_new) break;
    const float* l = engine.decode(t);
    std::copy_n(l, V, cur.begin());
  }
  out.stats = engine.stats();
  return out;
}

// All plans through BatchDecoder on one device, or with `two_devices` through TwoDeviceBatchDecoder
// (alspec sequences on both devices, the others on the first), joining and leaving on their schedule.
std::vector<SequenceOutput> run_batched(const Model& m, const std::vector<SequencePlan>& plans, int threads,
                                        bool two_devices = false) {
  Device dev({.name = "batch", .threads = threads, .cores = {}});
  Device dev_b({.name = "batch-b", .threads = threads, .cores = {}});
  BatchDecoder batch(m, dev);
  TwoDeviceBatchDecoder pair_batch(m, dev, dev_b);
  const int V = m.config().n_vocab;
  const size_t n = plans.size();
  std::vector<std::unique_ptr<Session>> sessions(n), peers(n);
  std::vector<PairState> pair_states(n);
  std::vector<Sampler> samplers;
  std::vector<std::vector<int32_t>> history(n);
  std::vector<std::vector<float>> cur(n, std::vector<float>(static_cast<size_t>(V)));
  std::vector<int64_t> steps(n, 0);
  std::vector<SequenceOutput> out(n);
  for (size_t i = 0; i < n; ++i) {
    samplers.emplace_back(plans[i].sampling, V);
    out[i].stats.reset(m.config().n_layers);
  }
  std::vector<int> spec_chunk(n);
  for (int step = 0;; ++step) {
    bool pending = false;
    std::vector<BatchRow> rows;
    std::vector<size_t> row_seq;
    for (size_t i = 0; i < n; ++i) {
      const SequencePlan& p = plans[i];
      if (step == p.join_step) {
        const int S = p.spec.spec_chunk;
        sessions[i] = std::make_unique<Session>(
            m, dev,
            SessionOptions{
                .ctx_size = kCtx, .kv_type = DType::F32, .spec_chunk = S, .layer_spec_chunk = p.layer_spec_chunk,
                .predictor = p.predictor, .prefill_batch = 64});
        sessions[i]->prefill(p.prompt, PrefillLogits::kLast,
                             [&](int64_t, const float* l) { std::copy_n(l, V, cur[i].begin()); });
        history[i] = p.prompt;
        if (two_devices && p.spec.mode == AttentionMode::kAlspec) {  // exact prefill on both devices
          peers[i] = std::make_unique<Session>(m, dev_b, sessions[i]->options());
          peers[i]->prefill(p.prompt, PrefillLogits::kNone, [](int64_t, const float*) {});
        }
      }
      if (step < p.join_step) pending = true;
      if (!sessions[i] || static_cast<int>(out[i].tokens.size()) == p.n_new) continue;
      out[i].logits.push_back(cur[i]);
      const int32_t t = samplers[i].sample(cur[i].data(), history[i]);
      history[i].push_back(t);
      out[i].tokens.push_back(t);
      if (static_cast<int>(out[i].tokens.size()) == p.n_new) {
        sessions[i].reset();  // leaves the batch
        continue;
      }
      rows.push_back(BatchRow{sessions[i].get(), t, &p.spec, steps[i]++, &out[i].stats, peers[i].get(), &pair_states[i]});
      row_seq.push_back(i);
    }
    if (rows.empty() && !pending) break;
    if (rows.empty()) continue;
    const float* logits = two_devices ? pair_batch.step(rows) : batch.step(rows);
    for (size_t r = 0; r < rows.size(); ++r) {
      std::copy_n(logits + r * static_cast<size_t>(V), V, cur[row_seq[r]].begin());
    }
  }
  return out;
}

void expect_same(const SequenceOutput& alone, const SequenceOutput& batched, size_t seq) {
  ASSERT_EQ(alone.tokens, batched.tokens) << "sequence " << seq;
  ASSERT_EQ(alone.logits.size(), batched.logits.size());
  for (size_t i = 0; i < alone.logits.size(); ++i) {
    ASSERT_EQ(0, std::memcmp(alone.logits[i].data(), batched.logits[i].data(), alone.logits[i].size() * sizeof(float)))
        << "sequence " << seq << " step " << i;
  }
  ASSERT_EQ(alone.stats.per_layer.size(), batched.stats.per_layer.size());
  for (size_t l = 0; l < alone.stats.per_layer.size(); ++l) {
    EXPECT_EQ(alone.stats.per_layer[l].checks, batched.stats.per_layer[l].checks) << "sequence " << seq << " layer " << l;
    EXPECT_EQ(alone.stats.per_layer[l].hits, batched.stats.per_layer[l].hits) << "sequence " << seq << " layer " << l;
    EXPECT_EQ(alone.stats.per_layer[l].trivial, batched.stats.per_layer[l].trivial) << "sequence " << seq << " layer " << l;
  }
}

SpecConfig spec(AttentionMode mode, float lambda, int S) {
  SpecConfig s;
  s.mode = mode;
  s.lambda = lambda;
  s.spec_chunk = S;
  return s;
}

SamplingParams sampled(uint64_t seed) {
  SamplingParams p;
  p.temperature = 0.8f;
  p.top_p = 0.95f;
  p.seed = seed;
  return p;
}

// Six sequences of every attention mode, both predictors, three S, greedy and sampled, joining
// at steps 0-9 and leaving after 20-160 tokens.
std::vector<SequencePlan> mixed_plans(const Model& m) {
  const Tokenizer& tok = m.tokenizer();
  std::vector<SequencePlan> p(6);
  p[0] = {tok.encode("Once upon a time", true), 0, 90, spec(AttentionMode::kExact, 0.1f, 16), {}};
  p[1] = {tok.encode("The little dog ran to the park and", true), 0, 70, spec(AttentionMode::kSimulate, 0.1f, 16), {}};
  p[2] = {tok.encode("Lily had a red ball", true), 3, 60, spec(AttentionMode::kStatic, 0.1f, 8), sampled(11)};
  p[3] = {tok.encode("One day, a big bird", true), 5, 80, spec(AttentionMode::kSimulate, 0.3f, 16), sampled(12)};
  // A test hook rejecting at some (step, layer): proves each sequence counts its own steps.
  p[3].spec.force_decision = [](int64_t step, int layer) -> std::optional<bool> {
    if ((step + layer) % 3 == 0) return false;
    return std::nullopt;
  };
  p[4] = {tok.encode("Tom and Sue", true), 9, 20, spec(AttentionMode::kAlspec, 0.2f, 16), sampled(13)};
  // The query-aware predictor in the same batch (its own kernel call: S and predictor differ).
  // 160 tokens: past 2S = 128 rows, where the quest plan runs.
  p[5] = {tok.encode("The sun was warm", true), 2, 160, spec(AttentionMode::kSimulate, 0.3f, kQuestMinSpecChunk), {}};
  p[5].predictor = SpecPredictor::kQuestPages;
  return p;
}

const Model& stories() {
  static std::unique_ptr<Model> m = Model::load(testing_paths::stories260k_gguf());
  return *m;
}

TEST(BatchDecoder, EachSequenceEqualsItsUnbatchedDecodeBitwise) {
  const auto plans = mixed_plans(stories());
  std::vector<SequenceOutput> alone;
  for (const auto& p : plans) alone.push_back(run_alone(stories(), p));
  // Speculation happened (positions past 2S), so the simulate rows exercised their own checks.
  EXPECT_GT(alone[1].stats.hits(), 0);
  EXPECT_GT(alone[3].stats.checks(), alone[3].stats.hits());
  EXPECT_GT(alone[5].stats.checks(), 0);
  for (int threads : {1, 2, 3}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    const auto batched = run_batched(stories(), plans, threads);
    for (size_t i = 0; i < plans.size(); ++i) expect_same(alone[i], batched[i], i);
  }
}

// Per-layer S (spec budgets): sequences whose layers use different S share the kernel calls of
// the layers where their S agree, and each still equals its unbatched decode.
TEST(BatchDecoder, PerLayerSpecChunkBitwise) {
  auto plans = mixed_plans(stories());
  const int L = stories().config().n_layers;
  ASSERT_GE(L, 3);
  for (size_t i : {size_t{1}, size_t{3}, size_t{4}}) {  // simulate, simulate with a hook, alspec
    plans[i].layer_spec_chunk.assign(static_cast<size_t>(L), 16);
    plans[i].layer_spec_chunk[0] = 8;
    plans[i].layer_spec_chunk[static_cast<size_t>(L - 1)] = i == 4 ? 4 : 24;
  }
  std::vector<SequenceOutput> alone;
  for (const auto& p : plans) alone.push_back(run_alone(stories(), p));
  // The per-layer S took effect: the layer with S = 24 covers its first 48 positions exactly.
  EXPECT_GT(alone[1].stats.per_layer[static_cast<size_t>(L - 1)].trivial, alone[1].stats.per_layer[0].trivial);
  EXPECT_GT(alone[1].stats.hits(), 0);
  for (int threads : {1, 2}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    const auto batched = run_batched(stories(), plans, threads);
    for (size_t i = 0; i < plans.size(); ++i) expect_same(alone[i], batched[i], i);
  }
}

TEST(BatchDecoder, QuantizedSyntheticModelBitwise) {
  SyntheticModelSpec s = synthetic_preset("qwen2-tiny");  // Q/K/V biases
  s.weight_type = DType::Q4_0;
  s.tokenizer_donor = testing_paths::stories260k_gguf();
  const std::string path = std::string(ALSPEC_BINARY_DIR) + "/batch_decoder_test_q4_0.gguf";
  write_synthetic_model(s, path);
  auto m = Model::load(path);
  const std::vector<int32_t> a{1, 5, 9, 200, 7}, b{1, 300, 301}, c{1, 42, 43, 44, 45, 46, 47, 48, 49};
  std::vector<SequencePlan> plans(3);
  plans[0] = {a, 0, 60, spec(AttentionMode::kSimulate, 0.2f, 16), {}};
  plans[1] = {b, 2, 45, spec(AttentionMode::kExact, 0.1f, 16), sampled(3)};
  plans[2] = {c, 4, 50, spec(AttentionMode::kSimulate, 0.05f, 16), sampled(4)};
  const auto batched = run_batched(*m, plans, 2);
  for (size_t i = 0; i < plans.size(); ++i) expect_same(run_alone(*m, plans[i]), batched[i], i);
}

// Prompt chunks of other sequences in the decode pass (the scheduler's chunked prefill): every
// prompt row's logits, the cache they leave and the decode rows beside them are bitwise those of
// Session::prefill / decode alone, whatever the split and the thread count.
TEST(BatchDecoder, PromptChunksInThePassEqualPrefillBitwise) {
  const Model& m = stories();
  const size_t V = static_cast<size_t>(m.config().n_vocab);
  const Tokenizer& tok = m.tokenizer();
  const std::vector<int32_t> pa = tok.encode("Once upon a time there was a little girl named Lily who loved to play", true);
  const std::vector<int32_t> pb = tok.encode("The little dog ran to the park", true);
  const std::vector<int32_t> pc = tok.encode("Tom and Sue", true);
  ASSERT_GT(pa.size(), 12u);
  auto opts = [](int S) {
    return SessionOptions{.ctx_size = kCtx, .kv_type = DType::F32, .spec_chunk = S, .prefill_batch = 64};
  };
  const int32_t next_a = 5, next_b = 7;
  const std::vector<int32_t> c_tokens{11, 12, 13};
  // Alone: A with every prompt row's logits, B with its last, C decoding.
  Device solo({.name = "solo", .threads = 1, .cores = {}});
  std::vector<std::vector<float>> a_ref, c_ref;
  std::vector<float> b_ref, a_next_ref, b_next_ref;
  {
    Session a(m, solo, opts(16)), b(m, solo, opts(8)), cs(m, solo, opts(16));
    a.prefill(pa, PrefillLogits::kAll, [&](int64_t, const float* l) { a_ref.emplace_back(l, l + V); });
    b.prefill(pb, PrefillLogits::kLast, [&](int64_t, const float* l) { b_ref.assign(l, l + V); });
    cs.prefill(pc, PrefillLogits::kNone, [](int64_t, const float*) {});
    for (int32_t t : c_tokens) {
      const float* l = cs.decode(t);
      c_ref.emplace_back(l, l + V);
    }
    const float* l = a.decode(next_a);
    a_next_ref.assign(l, l + V);
    l = b.decode(next_b);
    b_next_ref.assign(l, l + V);
  }
  for (int threads : {1, 3}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    Device dev({.name = "batch", .threads = threads, .cores = {}});
    BatchDecoder batch(m, dev);
    Session a(m, dev, opts(16)), b(m, dev, opts(8)), cs(m, dev, opts(16));
    cs.prefill(pc, PrefillLogits::kNone, [](int64_t, const float*) {});
    const SpecConfig exact;
    SpecStats stats;
    stats.reset(m.config().n_layers);
    std::vector<std::vector<float>> a_rows;
    std::vector<int64_t> a_index;
    std::vector<float> b_last;
    size_t a_done = 0;
    auto a_fn = [&](int64_t i, const float* l) {
      a_index.push_back(static_cast<int64_t>(a_done) + i);
      a_rows.emplace_back(l, l + V);
    };
    auto b_fn = [&](int64_t i, const float* l) {
      EXPECT_EQ(i, static_cast<int64_t>(pb.size()) - 1);
      b_last.assign(l, l + V);
    };
    const FunctionRef<void(int64_t, const float*)> on_a = a_fn, on_b = b_fn;
    const std::span<const int32_t> A(pa), B(pb);
    // Pass 1: C decodes; A's first 5 prompt tokens and all of B (its last row's logits).
    const BatchRow row1[] = {{&cs, c_tokens[0], &exact, 0, &stats}};
    const PrefillChunk pass1[] = {{&a, A.first(5), 0, &on_a}, {&b, B, static_cast<int64_t>(B.size()) - 1, &on_b}};
    const float* l = batch.step(row1, pass1);
    ASSERT_EQ(0, std::memcmp(l, c_ref[0].data(), V * sizeof(float)));
    a_done = 5;
    EXPECT_EQ(a.position(), 5);
    EXPECT_EQ(b.position(), static_cast<int64_t>(pb.size()));
    // Pass 2: the rest of A with no decode row; pass 3: C alone.
    const PrefillChunk pass2[] = {{&a, A.subspan(5), 0, &on_a}};
    batch.step({}, pass2);
    const BatchRow row3[] = {{&cs, c_tokens[1], &exact, 1, &stats}};
    l = batch.step(row3);
    ASSERT_EQ(0, std::memcmp(l, c_ref[1].data(), V * sizeof(float)));
    ASSERT_EQ(a_rows.size(), a_ref.size());
    for (size_t i = 0; i < a_rows.size(); ++i) {
      EXPECT_EQ(a_index[i], static_cast<int64_t>(i));
      ASSERT_EQ(0, std::memcmp(a_rows[i].data(), a_ref[i].data(), V * sizeof(float))) << "prompt row " << i;
    }
    ASSERT_EQ(0, std::memcmp(b_last.data(), b_ref.data(), V * sizeof(float)));
    // The caches they left: the next decode of every sequence, all three in one step.
    const BatchRow row4[] = {{&cs, c_tokens[2], &exact, 2, &stats}, {&a, next_a, &exact, 0, &stats}, {&b, next_b, &exact, 0, &stats}};
    l = batch.step(row4);
    ASSERT_EQ(0, std::memcmp(l, c_ref[2].data(), V * sizeof(float)));
    ASSERT_EQ(0, std::memcmp(l + V, a_next_ref.data(), V * sizeof(float)));
    ASSERT_EQ(0, std::memcmp(l + 2 * V, b_next_ref.data(), V * sizeof(float)));
  }
}

// The two-device protocol inside a batch: alspec sequences whose checks accept and reject at
// different layers of the same step (so each device sends some rows and receives others) each
// equal their unbatched two-device decode and simulate bit for bit, beside exact, static and
// simulate rows on device A, at 1 and 2 threads per device.
std::vector<SequencePlan> alspec_plans(const Model& m) {
  auto p = mixed_plans(m);
  const Tokenizer& tok = m.tokenizer();
  p[1].spec.mode = AttentionMode::kAlspec;  // lambda 0.1: hits and misses
  p[3].spec.mode = AttentionMode::kAlspec;  // lambda 0.3 and a hook rejecting every third (step + layer)
  p[5].spec.mode = AttentionMode::kAlspec;  // quest, its own kernel call
  p.push_back({tok.encode("A cat sat on the mat", true), 1, 100, spec(AttentionMode::kAlspec, 0.05f, 16), sampled(14)});
  p.push_back({tok.encode("Ben found a shiny stone", true), 0, 110, spec(AttentionMode::kAlspec, 1.0f, 16), {}});
  return p;
}

TEST(TwoDeviceBatchDecoder, EachSequenceEqualsItsUnbatchedAlspecAndSimulateBitwise) {
  const auto plans = alspec_plans(stories());
  std::vector<SequenceOutput> alone;
  for (const auto& p : plans) alone.push_back(run_alone(stories(), p));
  for (size_t i = 0; i < plans.size(); ++i) {
    if (plans[i].spec.mode != AttentionMode::kAlspec) continue;
    SequencePlan sim = plans[i];
    sim.spec.mode = AttentionMode::kSimulate;
    expect_same(run_alone(stories(), sim), alone[i], i);  // alspec == simulate (the reference)
    if (i != 4) {  // 4 stays within 2S: trivial
      EXPECT_GT(alone[i].stats.checks(), 0) << "sequence " << i;
    }
  }
  EXPECT_GT(alone[1].stats.hits(), 0);
  EXPECT_LT(alone[1].stats.hits(), alone[1].stats.checks());
  for (int threads : {1, 2}) {
    SCOPED_TRACE("threads per device " + std::to_string(threads));
    const auto batched = run_batched(stories(), plans, threads, /*two_devices=*/true);
    for (size_t i = 0; i < plans.size(); ++i) expect_same(alone[i], batched[i], i);
  }
}

// Per-layer S: alspec rows whose sender rows need several kernel calls in one layer (distinct S)
// publish O_spec once, after the last call's phase 1.
TEST(TwoDeviceBatchDecoder, PerLayerSpecChunkBitwise) {
  auto plans = alspec_plans(stories());
  const int L = stories().config().n_layers;
  for (size_t i : {size_t{1}, size_t{4}, size_t{7}}) {
    plans[i].layer_spec_chunk.assign(static_cast<size_t>(L), 16);
    plans[i].layer_spec_chunk[0] = 8;
    plans[i].layer_spec_chunk[static_cast<size_t>(L - 1)] = i == 4 ? 4 : 24;
  }
  const auto batched = run_batched(stories(), plans, 1, /*two_devices=*/true);
  for (size_t i = 0; i < plans.size(); ++i) expect_same(run_alone(stories(), plans[i]), batched[i], i);
}

// The roles of each sequence (which device sends at each layer, what it wrote) are those of its
// unbatched two-device decode.
TEST(TwoDeviceBatchDecoder, TraceMatchesTheUnbatchedProtocol) {
  const Model& m = stories();
  const Tokenizer& tok = m.tokenizer();
  std::vector<std::vector<TraceEvent>> alone_events(2), batched_events(2);
  std::vector<SequencePlan> plans(2);
  plans[0] = {tok.encode("Once upon a time", true), 0, 60, spec(AttentionMode::kAlspec, 0.1f, 8), {}};
  plans[1] = {tok.encode("The little dog", true), 0, 50, spec(AttentionMode::kAlspec, 0.3f, 8), {}};
  auto with_trace = [&](std::vector<std::vector<TraceEvent>>& sink) {
    auto p = plans;
    for (size_t i = 0; i < p.size(); ++i) p[i].spec.trace = [&sink, i](const TraceEvent& e) { sink[i].push_back(e); };
    return p;
  };
  for (const auto& p : with_trace(alone_events)) run_alone(m, p);
  run_batched(m, with_trace(batched_events), 1, /*two_devices=*/true);
  for (size_t i = 0; i < plans.size(); ++i) {
    ASSERT_EQ(alone_events[i].size(), batched_events[i].size()) << "sequence " << i;
    ASSERT_GT(alone_events[i].size(), 0u);
    int senders[2] = {0, 0};
    for (size_t k = 0; k < alone_events[i].size(); ++k) {
      const TraceEvent &a = alone_events[i][k], &b = batched_events[i][k];
      EXPECT_EQ(a.step, b.step);
      EXPECT_EQ(a.layer, b.layer);
      EXPECT_EQ(a.sender, b.sender) << "sequence " << i << " event " << k;
      EXPECT_EQ(a.receiver, b.receiver);
      EXPECT_EQ(a.sender_priority, b.sender_priority);
      EXPECT_EQ(a.accept, b.accept);
      EXPECT_EQ(a.dist2, b.dist2);
      ++senders[b.sender];
    }
    EXPECT_GT(senders[0], 0);  // roles alternate after hits: both devices sent
    EXPECT_GT(senders[1], 0);
  }
  // Some layer of some step had the two sequences' senders on different devices: each device
  // sent one row and received the other in the same layer.
  int mixed = 0;
  for (const TraceEvent& a : batched_events[0]) {
    for (const TraceEvent& b : batched_events[1]) mixed += a.step == b.step && a.layer == b.layer && a.sender != b.sender;
  }
  EXPECT_GT(mixed, 0);
}

TEST(TwoDeviceBatchDecoder, BadRowsFailBeforeAnySessionMoves) {
  const Model& m = stories();
  Device a({.name = "a", .threads = 1, .cores = {}}), b({.name = "b", .threads = 1, .cores = {}});
  EXPECT_THROW(TwoDeviceBatchDecoder(m, a, a), Error);
  TwoDeviceBatchDecoder batch(m, a, b);
  const SessionOptions o{.ctx_size = 64, .kv_type = DType::F32, .spec_chunk = 8, .prefill_batch = 64};
  Session sa(m, a, o), sb(m, b, o), other_a(m, a, o);
  SessionOptions o16 = o;
  o16.spec_chunk = 16;
  Session sb16(m, b, o16);
  const std::vector<int32_t> prompt{1, 2, 3};
  sa.prefill(prompt, PrefillLogits::kNone, [](int64_t, const float*) {});
  sb16.prefill(prompt, PrefillLogits::kNone, [](int64_t, const float*) {});
  const SpecConfig alspec = spec(AttentionMode::kAlspec, 0.1f, 8), exact;
  SpecStats stats;
  stats.reset(m.config().n_layers);
  PairState pair;
  const BatchRow no_peer[] = {{&other_a, 1, &exact, 0, &stats}, {&sa, 1, &alspec, 0, &stats, nullptr, &pair}};
  EXPECT_THROW(batch.step(no_peer), Error);
  const BatchRow behind[] = {{&other_a, 1, &exact, 0, &stats}, {&sa, 1, &alspec, 0, &stats, &sb, &pair}};
  EXPECT_THROW(batch.step(behind), Error);  // sb is at position 0, sa at 3
  const BatchRow other_s[] = {{&sa, 1, &alspec, 0, &stats, &sb16, &pair}};
  EXPECT_THROW(batch.step(other_s), Error);
  const BatchRow swapped[] = {{&sb16, 1, &alspec, 0, &stats, &sa, &pair}};
  EXPECT_THROW(batch.step(swapped), Error);
  PairState tie;
  tie.priority[1] = 1;
  sb.prefill(prompt, PrefillLogits::kNone, [](int64_t, const float*) {});
  const BatchRow tied[] = {{&sa, 1, &alspec, 0, &stats, &sb, &tie}};
  EXPECT_THROW(batch.step(tied), Error);
  EXPECT_EQ(other_a.position(), 0);
  EXPECT_EQ(sa.position(), 3);
  EXPECT_EQ(sb.position(), 3);
  // And a good step after the failures.
  const BatchRow good[] = {{&other_a, 1, &exact, 0, &stats}, {&sa, 1, &alspec, 0, &stats, &sb, &pair}};
  EXPECT_NE(batch.step(good), nullptr);
  EXPECT_EQ(other_a.position(), 1);
  EXPECT_EQ(sa.position(), 4);
  EXPECT_EQ(sb.position(), 4);
}

TEST(BatchDecoder, ErrorsLeaveEverySessionUntouched) {
  const Model& m = stories();
  Device dev({.name = "batch", .threads = 1, .cores = {}});
  Device other({.name = "other", .threads = 1, .cores = {}});
  BatchDecoder batch(m, dev);
  Session full(m, dev, {.ctx_size = 16, .kv_type = DType::F32, .spec_chunk = 0, .prefill_batch = 64});
  Session roomy(m, dev, {.ctx_size = 64, .kv_type = DType::F32, .spec_chunk = 0, .prefill_batch = 64});
  Session elsewhere(m, other, {.ctx_size = 64, .kv_type = DType::F32, .spec_chunk = 0, .prefill_batch = 64});
  const std::vector<int32_t> prompt(16, 1);
  full.prefill(prompt, PrefillLogits::kNone, [](int64_t, const float*) {});
  const SpecConfig exact;
  SpecStats stats;
  stats.reset(m.config().n_layers);
  const BatchRow rows[] = {{&roomy, 1, &exact, 0, &stats}, {&full, 1, &exact, 0, &stats}};
  EXPECT_THROW(batch.step(rows), Error);  // `full` has no room: nothing advanced
  EXPECT_EQ(roomy.position(), 0);
  EXPECT_EQ(full.position(), 16);
  const BatchRow bad_token[] = {{&roomy, m.config().n_vocab, &exact, 0, &stats}};
  EXPECT_THROW(batch.step(bad_token), Error);
  const BatchRow wrong_device[] = {{&elsewhere, 1, &exact, 0, &stats}};
  EXPECT_THROW(batch.step(wrong_device), Error);
  EXPECT_EQ(roomy.position(), 0);
  // A prompt chunk without room fails the pass before any session moves.
  const BatchRow one[] = {{&roomy, 1, &exact, 0, &stats}};
  const PrefillChunk too_long[] = {{&full, std::span<const int32_t>(prompt).first(1), 1, nullptr}};
  EXPECT_THROW(batch.step(one, too_long), Error);
  EXPECT_EQ(roomy.position(), 0);
  EXPECT_EQ(full.position(), 16);
}

}  // namespace
}  // namespace alspec
