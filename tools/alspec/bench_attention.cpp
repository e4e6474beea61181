#include "alspec/median.h"
#include "alspec/bench_attention.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "alspec/core/error.h"
#include "alspec/core/timer.h"
#include "alspec/kernels/attention.h"
#include "alspec/kernels/cpu_features.h"
#include "alspec/kernels/memory_bandwidth.h"
#include "alspec/runtime/device.h"

namespace alspec::cli {
namespace {

struct BenchOptions {
  std::vector<int64_t> ctx = {1024, 4096, 16384, 65536, 131072};
  std::vector<int> threads = {1, 2};
  std::vector<int> batch = {1, 4};
  std::string kv_type = "f16";
  std::string key_layout = "auto";  // auto (the engine's choice), rows or blocks
  int spec_chunk = 128;
  std::string predictor = "sink-window";
  float lambda = 0.1f;
  int reps = 7;
  int n_heads = 32, n_kv_heads = 8, head_dim = 128;  // Llama-3-8B per layer
  size_t bandwidth_mib = 1024;
  bool warm = false;
  bool json = false;
};

// One sequence's cache, allocated and laid out like the engine's KV cache (PageBuffer: huge pages
// requested; K in key blocks where the engine uses them, prefer_key_blocks). Contents only need to
// be realistic numbers: a pool of random rows is encoded once and copied around in whole blocks of
// rows (encoding GiBs row by row would dominate the run).
struct BenchCache {
  PageBuffer k, v;
  PageBuffer key_pages;  // the page predictor's bounds, when it runs (as KvCache keeps them)
  KvCacheView view;
};

// Key page bounds of the cache as KvCache::store keeps them: each stored key, read back, folded
// into its page.
void add_key_pages(BenchCache& c) {
  KvCacheView& v = c.view;
  v.key_pages_per_head = key_pages_for_rows(v.capacity);
  const size_t per_head = static_cast<size_t>(v.key_pages_per_head) * key_page_record_bytes(v.head_dim);
  // In a PageBuffer (huge pages requested) like KvCache's, which holds every layer's records and so
  // spans whole 2 MiB pages: the records start on a 2 MiB boundary. On 4 KiB pages the bounds pass
  // took a TLB miss per 4 KiB of records after each flush, which the engine does not.
  constexpr size_t kHuge = size_t{2} << 20;
  const size_t bytes = static_cast<size_t>(v.n_kv_heads) * per_head;
  c.key_pages = PageBuffer((bytes + kHuge - 1) / kHuge * kHuge + kHuge);
  const auto base = reinterpret_cast<uintptr_t>(c.key_pages.data());
  KeyBound* records = c.key_pages.data() + ((kHuge - base % kHuge) % kHuge);
  v.key_pages = records;
  std::vector<float> key(static_cast<size_t>(v.head_dim)), staging(2 * static_cast<size_t>(v.head_dim));
  for (int h = 0; h < v.n_kv_heads; ++h) {
    KeyBound* head_pages = records + static_cast<size_t>(h) * per_head;
    for (int64_t r = 0; r < v.capacity; ++r) {
      load_key_row(v.type, v.k_blocks, v.k_row(h, 0), r, key.data(), v.head_dim);
      update_key_page_bounds(head_pages, staging.data(), r, key.data(), v.head_dim);
    }
  }
}

BenchCache make_cache(DType type, int n_kv, int d, int64_t ctx, uint32_t seed, bool blocks) {
  constexpr int kPoolRows = 1024;  // a multiple of kKeyBlockRows
  const int64_t capacity = blocks ? (ctx + kKeyBlockRows - 1) / kKeyBlockRows * kKeyBlockRows : ctx;
  const size_t rb = row_bytes(type, d);
  std::vector<uint8_t> k_pool(rb * kPoolRows), v_pool(rb * kPoolRows);
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> row(static_cast<size_t>(d));
  for (int r = 0; r < kPoolRows; ++r) {
    for (auto& x : row) x = nd(rng);
    store_key_row(type, blocks, row.data(), k_pool.data(), r, d);
    for (auto& x : row) x = nd(rng);
    store_kv_row(type, row.data(), v_pool.data() + rb * r, d);
  }
  BenchCache c;
  const size_t bytes = kv_cache_bytes(type, n_kv, d, capacity);
  c.k = PageBuffer(bytes);
  c.v = PageBuffer(bytes);
  constexpr size_t kCopyRows = kKeyBlockRows;
  const size_t copies = bytes / (rb * kCopyRows);
  for (size_t i = 0; i < copies; ++i) {
    const size_t from = (i % (kPoolRows / kCopyRows)) * rb * kCopyRows;
    const size_t v_from = ((i * 7 + 3) % (kPoolRows / kCopyRows)) * rb * kCopyRows;
    std::memcpy(c.k.data() + i * rb * kCopyRows, k_pool.data() + from, rb * kCopyRows);
    std::memcpy(c.v.data() + i * rb * kCopyRows, v_pool.data() + v_from, rb * kCopyRows);
  }
  c.view = {type, c.k.data(), c.v.data(), n_kv, d, capacity, blocks, 0};
  return c;
}

int run_bench(const BenchOptions& o) {
  const auto type = dtype_from_name(o.kv_type);
  if (!type) throw_invalid_argument("--kv-type: unknown type '" + o.kv_type + "'");
  check_kv_type(*type, o.head_dim);
  if (o.reps < 1) throw_invalid_argument("--reps must be >= 1");
  const bool blocks = o.key_layout == "auto" ? prefer_key_blocks(*type, o.head_dim) : o.key_layout == "blocks";
  if (o.key_layout != "auto" && o.key_layout != "rows" && o.key_layout != "blocks") {
    throw_invalid_argument("--key-layout: auto, rows or blocks, not '" + o.key_layout + "'");
  }
  if (blocks && !key_blocks_supported(*type)) {
    throw_invalid_argument("--key-layout blocks needs --kv-type f32, f16 or bf16");
  }
  const SpecPredictor predictor = parse_spec_predictor(o.predictor);
  if (predictor == SpecPredictor::kQuestPages && o.spec_chunk < kQuestMinSpecChunk) {
    throw_invalid_argument("--predictor quest needs --spec-chunk >= " + std::to_string(kQuestMinSpecChunk));
  }
  const AttentionShape shape{o.n_heads, o.n_kv_heads, o.head_dim};
  const size_t q_floats = static_cast<size_t>(o.n_heads) * static_cast<size_t>(o.head_dim);

  const std::string cpu = cpu_model_name();
  const std::string simd(simd_level_name(attention_simd_level(o.head_dim)));
  const std::string variant = attention_kernel_variant(*type, o.head_dim, blocks);
  if (!o.json) {
    std::printf("cpu: %s (features: %s)\nsimd level: %s (detected %s); attention kernel: %s\n", cpu.c_str(),
                cpu_feature_list().c_str(), simd.c_str(), std::string(simd_level_name(detected_simd_level())).c_str(),
                variant.c_str());
    std::printf("attention bench: %d q heads, %d kv heads, head_dim %d, kv %s (K in %s), S %d, predictor %s, %s, simd %s, "
                "%d reps (median)\n",
                o.n_heads, o.n_kv_heads, o.head_dim, std::string(dtype_name(*type)).c_str(), blocks ? "key blocks" : "rows",
                o.spec_chunk, o.predictor.c_str(),
                o.warm ? "warm caches" : "caches flushed before each call",
                std::string(simd_level_name(attention_simd_level(o.head_dim))).c_str(), o.reps);
  }
  for (int threads : o.threads) {
    Device dev({.name = "bench", .threads = threads, .cores = {}});
    // The yardstick and the cache flush are one buffer read with the probe's loop: once up front
    // (median of 5), then before every timed call, so that each call starts from DRAM as a
    // layer's cache does in a real decode step (the other layers evicted it), and the reads
    // interleaved with a point's calls see the same drift as the calls.
    ReadProbeBuffer probe(dev, o.bandwidth_mib << 20);
    std::vector<double> probe_times;
    for (int r = 0; r < 5; ++r) probe_times.push_back(probe.read_all(dev));
    const double probe_gbps = static_cast<double>(probe.bytes()) / median(probe_times) / 1e9;
    if (!o.json) {
      std::printf("\nthreads %d: memory read bandwidth probe %.2f GB/s (%zu MiB buffer)\n", threads, probe_gbps,
                  probe.bytes() >> 20);
      std::printf("%8s %6s %10s %10s %9s %9s %9s %9s %9s %8s %9s\n", "ctx", "batch", "plain_ms", "spec_ms", "GB/s",
                  "probe_GB/s", "flush_GB/s", "roofline", "spec_ovh", "accept", "pred_MB");
    }
    for (int batch : o.batch) {
      for (int64_t ctx : o.ctx) {
        std::vector<BenchCache> caches;
        for (int b = 0; b < batch; ++b) {
          caches.push_back(make_cache(*type, o.n_kv_heads, o.head_dim, ctx, static_cast<uint32_t>(b + 1), blocks));
          if (predictor == SpecPredictor::kQuestPages) add_key_pages(caches.back());
        }
        std::vector<float> q(q_floats * static_cast<size_t>(batch));
        std::mt19937 rng(99);
        std::normal_distribution<float> nd(0.0f, 1.0f);
        for (auto& x : q) x = nd(rng);
        std::vector<float> out(q.size()), out_spec(q.size());
        std::vector<DecodeQuery> plain;
        std::vector<SpecDecodeQuery> spec;
        for (int b = 0; b < batch; ++b) {
          const DecodeQuery dq{q.data() + q_floats * b, caches[static_cast<size_t>(b)].view, ctx - 1,
                               out.data() + q_floats * b};
          plain.push_back(dq);
          spec.push_back({dq, out_spec.data() + q_floats * b});
        }
        std::vector<SpecResult> results(static_cast<size_t>(batch));
        std::vector<double> tf;  // flush reads, timed
        auto time_plain = [&] {
          if (!o.warm) tf.push_back(probe.read_all(dev));
          const double t0 = now_seconds();
          flash_decode(dev, shape, plain, 0);
          return now_seconds() - t0;
        };
        std::vector<double> tr;  // call start to on_spec_ready (phase 1: O_spec published)
        auto time_spec = [&] {
          if (!o.warm) tf.push_back(probe.read_all(dev));
          const double t0 = now_seconds();
          double ready = 0.0;
          speculative_flash_decode(dev, shape, spec, o.spec_chunk, o.lambda, results, [&] { ready = now_seconds(); },
                                   {}, predictor);
          const double t = now_seconds() - t0;
          tr.push_back(ready - t0);
          return t;
        };
        time_plain();  // warm-up: page faults, thread start, scratch buffers
        time_spec();
        tf.clear();
        tr.clear();
        std::vector<double> tp, ts;
        for (int r = 0; r < o.reps; ++r) {  // interleaved, so drift hits both alike
          tp.push_back(time_plain());
          ts.push_back(time_spec());
        }
        const double plain_s = median(tp);
        const double spec_s = median(ts);
        // The bytes the kernels read: ctx rows of K and of V per KV head and sequence.
        const double kv_bytes = 2.0 * static_cast<double>(batch) *
                                static_cast<double>(kv_cache_bytes(*type, o.n_kv_heads, o.head_dim, ctx));
        const double gbps = kv_bytes / plain_s / 1e9;
        // The predictor's own reads on top of the K/V rows (which the spec call reads once either
        // way: the middle chunks skip the selected pages): the bounds of every middle page.
        double predictor_bytes = 0.0;
        if (predictor == SpecPredictor::kQuestPages && ctx > 2 * o.spec_chunk) {
          const QuestLayout lay = quest_layout(ctx, o.spec_chunk);
          predictor_bytes = static_cast<double>(batch) * o.n_kv_heads *
                            static_cast<double>((lay.window_begin - lay.sink_end) / kKeyPageRows) *
                            static_cast<double>(key_page_record_bytes(o.head_dim));
        }
        // The roofline is the faster of the up-front probe and the median of this point's flush
        // reads: the kernel is held to the best the memory gave in this run, never a slow moment.
        const double flush_gbps = tf.empty() ? 0.0 : static_cast<double>(probe.bytes()) / median(tf) / 1e9;
        const double read_gbps = std::max(probe_gbps, flush_gbps);
        const double roofline = gbps / read_gbps;
        const double overhead = spec_s / plain_s - 1.0;
        int accepted = 0;
        for (const auto& r : results) accepted += r.accept ? 1 : 0;
        if (o.json) {
          nlohmann::json j;
          j["ctx"] = ctx;
          j["threads"] = threads;
          j["kv_type"] = o.kv_type;
          j["key_layout"] = blocks ? "blocks" : "rows";
          j["batch"] = batch;
          j["plain_ms"] = plain_s * 1e3;
          j["spec_ms"] = spec_s * 1e3;
          j["gbps"] = gbps;
          j["roofline_ratio"] = roofline;
          j["spec_overhead"] = overhead;
          j["spec_ready_ms"] = median(tr) * 1e3;
          j["predictor"] = o.predictor;
          j["spec_chunk"] = o.spec_chunk;
          j["predictor_bytes"] = predictor_bytes;
          j["predictor_bytes_share"] = predictor_bytes / kv_bytes;
          j["read_gbps"] = read_gbps;
          j["probe_gbps"] = probe_gbps;
          j["flush_gbps"] = flush_gbps;
          j["cpu"] = cpu;
          j["simd"] = simd;
          j["kernel"] = variant;
          std::cout << j.dump() << std::endl;
        } else {
          std::printf("%8lld %6d %10.3f %10.3f %9.2f %9.2f %9.3f %9.3f %+9.3f %5d/%d %9.3f\n", static_cast<long long>(ctx),
                      batch, plain_s * 1e3, spec_s * 1e3, gbps, probe_gbps, flush_gbps, roofline, overhead, accepted,
                      batch, predictor_bytes / 1e6);
        }
      }
    }
    probe.check();
  }
  return 0;
}

}  // namespace

std::function<int()> setup_bench_attention(CLI::App& sub) {
  auto o = std::make_shared<BenchOptions>();
  sub.add_option("--ctx", o->ctx, "Context lengths (rows in the cache, L)")->delimiter(',');
  sub.add_option("--threads", o->threads, "Thread counts")->delimiter(',');
  sub.add_option("--batch", o->batch, "Batch sizes (sequences, each with its own cache)")->delimiter(',');
  sub.add_option("--kv-type", o->kv_type, "KV cache type: f32, f16, bf16, q8_0");
  sub.add_option("--key-layout", o->key_layout, "K layout: auto (what the engine uses), rows or blocks");
  sub.add_option("--spec-chunk", o->spec_chunk, "S: sink and window rows of the speculative kernel");
  sub.add_option("--predictor", o->predictor,
                 "O_spec rows: sink-window or quest (its page bounds are read in addition: pred_MB)")
      ->capture_default_str();
  sub.add_option("--lambda", o->lambda, "Acceptance threshold");
  sub.add_option("--reps", o->reps, "Timed repetitions per point (median reported)");
  sub.add_option("--heads", o->n_heads, "Query heads");
  sub.add_option("--kv-heads", o->n_kv_heads, "KV heads");
  sub.add_option("--head-dim", o->head_dim, "Head dimension");
  sub.add_option("--bandwidth-mib", o->bandwidth_mib, "Buffer for the bandwidth probe and the cache flush");
  sub.add_flag("--warm", o->warm, "Do not flush caches before each timed call");
  sub.add_flag("--json", o->json, "One JSON object per point");
  return [o] { return run_bench(*o); };
}

}  // namespace alspec::cli
