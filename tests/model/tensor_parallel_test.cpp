// Tensor parallelism inside one process: T ranks as threads with an in-memory communicator run
// the sharded model and must give bitwise the logits of one rank with the same reduction chunks
// C; the chunked products equal the sum of column-view matvecs for any thread count; bad layouts
// are rejected with a message naming the problem. (Across MPI processes: tests/mpi.)
#include <gtest/gtest.h>

#include <barrier>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "alspec/core/error.h"
#include "alspec/kernels/matmul.h"
#include "alspec/kernels/ops.h"
#include "alspec/model/model.h"
#include "alspec/model/session.h"
#include "alspec/model/synthetic_model.h"
#include "alspec/runtime/communicator.h"
#include "alspec/runtime/device.h"
#include "repo_paths.h"

namespace alspec {
namespace {

const std::string kStories = std::string(ALSPEC_SOURCE_DIR) + "/assets/models/stories260K.gguf";

// n ranks as threads: collectives through one shared buffer between barriers.
struct ThreadGroup {
  explicit ThreadGroup(int n) : size(n), bar(n) {}
  int size;
  std::barrier<> bar;
  std::vector<std::byte> buf;
};

class ThreadCommunicator final : public Communicator {
 public:
  ThreadCommunicator(std::shared_ptr<ThreadGroup> g, int rank) : g_(std::move(g)), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return g_->size; }
  const char* transport() const override { return "threads"; }
  [[noreturn]] void abort(const std::string& why, int) override { throw Error(ErrorKind::kRuntime, why); }

 protected:
  void do_allgather(std::span<const std::byte> mine, std::span<std::byte> all) override {
    std::vector<int> counts(static_cast<size_t>(g_->size), static_cast<int>(mine.size()));
    do_allgatherv(mine, counts, all);
  }
  void do_allgatherv(std::span<const std::byte> mine, std::span<const int> counts, std::span<std::byte> all) override {
    size_t off = 0;
    for (int r = 0; r < rank_; ++r) off += static_cast<size_t>(counts[static_cast<size_t>(r)]);
    g_->bar.arrive_and_wait();  // everyone has read the previous result
    if (rank_ == 0) g_->buf.resize(all.size());
    g_->bar.arrive_and_wait();
    std::memcpy(g_->buf.data() + off, mine.data(), mine.size());
    g_->bar.arrive_and_wait();
    std::memcpy(all.data(), g_->buf.data(), all.size());
  }
  void do_send(int, int, std::span<const std::byte>) override { throw Error(ErrorKind::kRuntime, "no p2p"); }
  void do_recv(int, int, std::span<std::byte>) override { throw Error(ErrorKind::kRuntime, "no p2p"); }
  void do_sendrecv(int, int, std::span<const std::byte>, std::span<std::byte>) override {
    throw Error(ErrorKind::kRuntime, "no p2p");
  }
  void do_barrier() override { g_->bar.arrive_and_wait(); }

 private:
  std::shared_ptr<ThreadGroup> g_;
  int rank_;
};

using Logits = std::vector<std::vector<float>>;

// Prefill of the first `n_prefill` tokens (logits of all) then decode of the rest, on rank `rank`.
Logits run_rank(const Model& m, Communicator* comm, const std::vector<int32_t>& toks, size_t n_prefill, int threads) {
  Device dev({.name = "tp", .threads = threads, .cores = {}});
  Session s(m, dev, {.ctx_size = 128, .kv_type = DType::F16, .spec_chunk = 8, .prefill_batch = 7}, comm);
  Logits out;
  const size_t V = static_cast<size_t>(m.config().n_vocab);
  s.prefill(std::span<const int32_t>(toks.data(), n_prefill), PrefillLogits::kAll,
            [&](int64_t, const float* l) { out.emplace_back(l, l + V); });
  for (size_t i = n_prefill; i < toks.size(); ++i) {
    const float* l = s.decode(toks[i]);
    out.emplace_back(l, l + V);
  }
  return out;
}

// T ranks in threads; returns every rank's logits.
std::vector<Logits> run_group(const std::string& path, int T, int C, const std::vector<int32_t>& toks, size_t n_prefill) {
  auto group = std::make_shared<ThreadGroup>(T);
  std::vector<std::unique_ptr<Model>> models;
  std::vector<std::unique_ptr<Communicator>> comms;
  for (int r = 0; r < T; ++r) {
    models.push_back(Model::load(path, Shard{r, T, C}));
    comms.push_back(std::make_unique<ThreadCommunicator>(group, r));
  }
  std::vector<Logits> out(static_cast<size_t>(T));
  std::vector<std::string> errors(static_cast<size_t>(T));
  std::vector<std::thread> threads;
  for (int r = 0; r < T; ++r) {
    threads.emplace_back([&, r] {
      try {
        out[static_cast<size_t>(r)] = run_rank(*models[static_cast<size_t>(r)], comms[static_cast<size_t>(r)].get(),
                                               toks, n_prefill, 1 + r % 2);
      } catch (const std::exception& e) {
        errors[static_cast<size_t>(r)] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& e : errors) EXPECT_EQ(e, "");
  return out;
}

std::vector<int32_t> tokens(int n, int vocab) {
  std::vector<int32_t> t{1};
  for (int i = 1; i < n; ++i) t.push_back(static_cast<int32_t>((i * 37 + 11) % vocab));
  return t;
}

void expect_same(const Logits& a, const Logits& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(0, std::memcmp(a[i].data(), b[i].data(), a[i].size() * sizeof(float))) << what << ", position " << i;
  }
}

TEST(TensorParallel, ShardedRanksEqualOneRankBitwise) {
  const auto toks = tokens(30, 512);
  // One rank with C = 4 (views into the mapping) is the reference for every T dividing 4.
  auto one = Model::load(kStories, Shard{0, 1, 4});
  const Logits ref = run_rank(*one, nullptr, toks, 17, 1);
  // Chunked prefill (matmul per chunk) == chunked decode (matvec per chunk), bit for bit.
  expect_same(run_rank(*one, nullptr, toks, 1, 2), ref, "C=4 prefill 1 vs 17");
  for (int T : {1, 2, 4}) {
    const auto ranks = run_group(kStories, T, 4, toks, 17);
    for (int r = 0; r < T; ++r) expect_same(ranks[static_cast<size_t>(r)], ref, "T=" + std::to_string(T) + " rank " + std::to_string(r));
  }
  // C = 1 is the unchunked model: its logits are today's plain ones.
  auto plain = Model::load(kStories);
  auto c1 = Model::load(kStories, Shard{0, 1, 1});
  expect_same(run_rank(*c1, nullptr, toks, 17, 2), run_rank(*plain, nullptr, toks, 17, 1), "C=1");
}

// qwen2 (Q/K/V biases are sliced with the heads) with Q4_0 weights: column slices on 32-blocks.
TEST(TensorParallel, QuantizedWithBiasesEqualsOneRank) {
  SyntheticModelSpec spec = synthetic_preset("qwen2-tiny");  // 8 heads, 2 KV heads
  spec.weight_type = DType::Q4_0;
  spec.tokenizer_donor = testing_paths::stories260k_gguf();
  const std::string path = std::string(ALSPEC_BINARY_DIR) + "/tp_test_qwen2_q4_0.gguf";
  write_synthetic_model(spec, path);
  const auto toks = tokens(20, 512);
  auto one = Model::load(path, Shard{0, 1, 2});
  const Logits ref = run_rank(*one, nullptr, toks, 9, 2);
  const auto ranks = run_group(path, 2, 2, toks, 9);
  for (int r = 0; r < 2; ++r) expect_same(ranks[static_cast<size_t>(r)], ref, "rank " + std::to_string(r));
  // Memory per rank: each holds about half the matrices.
  auto half = Model::load(path, Shard{1, 2, 2});
  EXPECT_LT(half->weight_bytes_per_token(), one->weight_bytes_per_token() * 6 / 10);
  EXPECT_EQ(half->config().n_head, 4);
  EXPECT_EQ(half->config().n_head_kv, 1);
}

// y = sum over chunks c in order of W[:, c] x[c]; per chunk bitwise the matvec of the column view,
// whether the view points into the full matrix (T = 1) or into a rank's copied columns (T = 2),
// and for any thread count.
TEST(TensorParallel, ChunkProductsAreColumnViewMatvecs) {
  auto one = Model::load(kStories, Shard{0, 1, 4});
  auto r1 = Model::load(kStories, Shard{1, 2, 4});
  const auto& c = one->full_config();
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> x(static_cast<size_t>(c.n_ff));
  for (auto& v : x) v = u(rng);
  for (int threads : {1, 2, 3}) {
    Device dev({.name = "t", .threads = threads, .cores = {}});
    const auto& L1 = one->layer(2);
    const auto& L2 = r1->layer(2);
    ASSERT_EQ(L1.down_chunks.size(), 4u);
    ASSERT_EQ(L2.down_chunks.size(), 2u);
    // A rank (T > 1) owns each chunk with contiguous rows (strided views stream slower).
    for (const auto* chunks : {&L2.down_chunks, &L2.wo_chunks}) {
      for (const WeightMatrix& w : *chunks) EXPECT_EQ(w.row_bytes, row_bytes(w.type, w.cols));
    }
    std::vector<float> y(static_cast<size_t>(c.n_embd)), part(y.size()), part2(y.size());
    int64_t col = 0;
    for (size_t k = 0; k < 4; ++k) {
      const WeightMatrix& w = L1.down_chunks[k];
      matvec(dev, w, x.data() + col, part.data());
      // A contiguous copy of the chunk's columns gives the same bits.
      std::vector<float> dense(static_cast<size_t>(w.rows * w.cols));
      for (int64_t r = 0; r < w.rows; ++r) {
        std::memcpy(&dense[static_cast<size_t>(r * w.cols)],
                    static_cast<const uint8_t*>(w.data) + w.row_bytes * static_cast<size_t>(r), sizeof(float) * w.cols);
      }
      const WeightMatrix wd{w.type, dense.data(), w.rows, w.cols, sizeof(float) * static_cast<size_t>(w.cols)};
      matvec(dev, wd, x.data() + col, part2.data());
      ASSERT_EQ(part, part2) << "chunk " << k;
      if (k >= 2) {  // rank 1 of 2 owns chunks 2 and 3 in copied memory
        matvec(dev, L2.down_chunks[k - 2], x.data() + col, part2.data());
        ASSERT_EQ(part, part2) << "rank 1 chunk " << k;
      }
      if (k == 0) {
        y = part;
      } else {
        add_inplace(y.data(), part.data(), c.n_embd);
      }
      col += w.cols;
    }
    EXPECT_EQ(col, c.n_ff);
    // The chunk boundaries of this model: round(i * 172 / 4) to 32 columns.
    EXPECT_EQ(L1.down_chunks[0].cols, 32);
    EXPECT_EQ(L1.down_chunks[3].cols, 172 - 128);
    static std::vector<float> first;
    if (threads == 1) first = y;
    EXPECT_EQ(y, first) << "threads " << threads;
  }
}

void expect_error(const std::string& path, Shard s, const std::string& needle) {
  try {
    Model::load(path, s);
    FAIL() << "no error for " << needle;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(TensorParallel, BadLayoutsAreRejected) {
  expect_error(kStories, Shard{0, 3, 3}, "the model has 8 query heads and 4 KV heads; T must divide both");
  expect_error(kStories, Shard{0, 2, 3}, "T must divide C");
  expect_error(kStories, Shard{0, 2, 8}, "C must be <= the 4 KV heads");
  expect_error(kStories, Shard{2, 2, 4}, "rank 2 is outside [0, T)");
  SyntheticModelSpec spec = synthetic_preset("qwen2-tiny");
  spec.weight_type = DType::Q4_K;  // 256-column blocks; KV groups are 128 columns of o_proj
  spec.tokenizer_donor = testing_paths::stories260k_gguf();
  const std::string path = std::string(ALSPEC_BINARY_DIR) + "/tp_test_qwen2_q4_k.gguf";
  write_synthetic_model(spec, path);
  expect_error(path, Shard{0, 2, 2}, "which KV-group boundaries (every 128 columns) split");
  EXPECT_EQ(default_tp_chunks(4), 4);
  EXPECT_EQ(default_tp_chunks(8), 8);
  EXPECT_EQ(default_tp_chunks(32), 8);
  EXPECT_EQ(default_tp_chunks(6), 2);
  EXPECT_EQ(default_tp_chunks(1), 1);
}

TEST(TensorParallel, SessionChecksItsGroup) {
  auto m = Model::load(kStories, Shard{1, 2, 4});
  Device dev({.name = "t", .threads = 1, .cores = {}});
  // A sharded model needs a communicator of its T ranks.
  EXPECT_THROW(Session(*m, dev, {.ctx_size = 8, .kv_type = DType::F16, .spec_chunk = 0, .prefill_batch = 4}), Error);
}

TEST(Communicator, SingleRankCopiesAndCounts) {
  auto c = make_single_communicator();
  const std::vector<float> mine{1, 2, 3};
  std::vector<float> all(3);
  c->allgather(CommOp::kAttnReduce, mine, all);
  EXPECT_EQ(all, mine);
  const double d[2] = {0.5, 0.25};
  double dall[2] = {};
  c->allgather(CommOp::kCheck, std::span<const double>(d, 2), std::span<double>(dall, 2));
  EXPECT_EQ(dall[1], 0.25);
  EXPECT_EQ(c->stats()[CommOp::kAttnReduce].calls, 1);
  EXPECT_EQ(c->stats()[CommOp::kCheck].calls, 1);
  EXPECT_EQ(c->stats().total().bytes_sent, 0);  // nothing leaves a single rank
  std::vector<float> wrong(4);
  EXPECT_THROW(c->allgather(CommOp::kAttnReduce, mine, wrong), Error);
  std::byte b{};
  EXPECT_THROW(c->send(CommOp::kResidual, 1, 0, std::span<const std::byte>(&b, 1)), Error);
  c->reset_stats();
  EXPECT_EQ(c->stats().total().calls, 0);
}

}  // namespace
}  // namespace alspec
