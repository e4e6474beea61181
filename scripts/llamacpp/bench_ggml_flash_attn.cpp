// Times ggml's CPU flash attention (ggml_flash_attn_ext) at the decode shapes of
// `alspec bench attention`: one new query token per sequence, n_heads query heads over n_kv_heads
// KV heads of head_dim, `ctx` cached rows per sequence, each sequence with its own cache (ggml's
// ne3 = one stream per sequence, as llama.cpp lays out non-unified per-sequence caches).
//
// Method (as in the alspec bench, so the two are comparable): per point one warm-up compute, then
// `reps` timed graph computes; before each, a buffer larger than the last-level cache is read with
// the same number of threads so the KV cache comes from DRAM, and that read is timed too
// (read_gbps = median). Prints one JSON object per point:
//   {"impl":"ggml","ctx":..,"threads":..,"batch":..,"kv_type":"f16","kv_layout":"token","ms":..,
//    "gbps":..,"read_gbps":..}
// ms = median compute time, gbps = K+V bytes / ms. With --check, sequence 0's output is also
// compared with a double-precision softmax attention over the same (decoded) cache values and
// max_abs_err and max_abs_ref (the outputs' scale) are added (not for timing runs: the reference
// is slow).
//
// KV layouts: "token" = llama.cpp's cache, per token all KV heads contiguous (a head's rows are
// strided by n_kv_heads * row bytes); "head" = alspec's, per KV head all rows contiguous.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "ggml-cpu.h"
#include "ggml.h"

namespace {

struct Options {
  std::vector<int64_t> ctx = {4096, 16384, 65536};
  std::vector<int> threads = {1, 2};
  std::vector<int> batch = {1, 4};
  std::string kv_type = "f16";
  std::string kv_layout = "token";
  int reps = 7;
  int n_heads = 32, n_kv_heads = 8, head_dim = 128;
  size_t flush_mib = 1024;
  bool check = false;
};

std::vector<int64_t> parse_list(const char* s) {
  std::vector<int64_t> out;
  std::string item;
  for (const char* p = s;; ++p) {
    if (*p == ',' || *p == '\0') {
      if (item.empty()) throw std::runtime_error(std::string("bad list '") + s + "'");
      out.push_back(std::stoll(item));
      item.clear();
      if (*p == '\0') break;
    } else {
      item += *p;
    }
  }
  return out;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    auto ints = [&](std::vector<int>& dst) {
      dst.clear();
      for (int64_t x : parse_list(value())) dst.push_back(static_cast<int>(x));
    };
    if (a == "--ctx") o.ctx = parse_list(value());
    else if (a == "--threads") ints(o.threads);
    else if (a == "--batch") ints(o.batch);
    else if (a == "--kv-type") o.kv_type = value();
    else if (a == "--kv-layout") o.kv_layout = value();
    else if (a == "--reps") o.reps = std::atoi(value());
    else if (a == "--heads") o.n_heads = std::atoi(value());
    else if (a == "--kv-heads") o.n_kv_heads = std::atoi(value());
    else if (a == "--head-dim") o.head_dim = std::atoi(value());
    else if (a == "--flush-mib") o.flush_mib = static_cast<size_t>(std::atoll(value()));
    else if (a == "--check") o.check = true;
    else {
      throw std::runtime_error("unknown option " + a +
                               " (--ctx L,.. --threads N,.. --batch B,.. --kv-type f16|f32|q8_0 --kv-layout "
                               "token|head --reps R --heads --kv-heads --head-dim --flush-mib --check)");
    }
  }
  if (o.reps < 1) throw std::runtime_error("--reps must be >= 1");
  if (o.kv_layout != "token" && o.kv_layout != "head") throw std::runtime_error("--kv-layout: token or head");
  if (o.n_heads <= 0 || o.n_kv_heads <= 0 || o.n_heads % o.n_kv_heads != 0 || o.head_dim <= 0) {
    throw std::runtime_error("bad head shape");
  }
  return o;
}

ggml_type type_from_name(const std::string& s) {
  if (s == "f16") return GGML_TYPE_F16;
  if (s == "f32") return GGML_TYPE_F32;
  if (s == "q8_0") return GGML_TYPE_Q8_0;
  throw std::runtime_error("--kv-type: f16, f32 or q8_0, got " + s);
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Reads a large buffer with n threads (evicts the KV cache from the caches); returns seconds.
class Flusher {
 public:
  explicit Flusher(size_t bytes) : words_(bytes / sizeof(uint64_t), 1) {}
  double flush(int threads) {
    const int64_t n = static_cast<int64_t>(words_.size());
    uint64_t sum = 0;
    const double t0 = now_s();
#pragma omp parallel for num_threads(threads) reduction(+ : sum) schedule(static)
    for (int64_t i = 0; i < n; ++i) sum += words_[static_cast<size_t>(i)];
    const double s = now_s() - t0;
    sink_ += sum;
    return s;
  }
  size_t bytes() const { return words_.size() * sizeof(uint64_t); }
  uint64_t sink() const { return sink_; }

 private:
  std::vector<uint64_t> words_;
  uint64_t sink_ = 0;
};

// One point: batch caches of ctx rows, the graph, its work buffer.
struct Point {
  std::vector<uint8_t> k, v;  // [batch][...] cache bytes in the chosen layout
  std::vector<float> q;       // [batch][n_heads][head_dim]
  ggml_context* ctx = nullptr;
  ggml_cgraph* graph = nullptr;
  ggml_tensor* out = nullptr;  // [head_dim][n_heads][1][batch]
  ~Point() {
    if (ctx) ggml_free(ctx);
  }
};

// Fills K and V from a pool of random rows (encoding GiBs row by row would dominate the run).
void fill_cache(std::vector<uint8_t>& dst, ggml_type type, int64_t head_dim, uint32_t seed) {
  constexpr int64_t kPoolRows = 1024;
  const size_t rb = ggml_row_size(type, head_dim);
  std::vector<float> rows(static_cast<size_t>(kPoolRows * head_dim));
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (auto& x : rows) x = nd(rng);
  std::vector<uint8_t> pool(rb * kPoolRows);
  ggml_quantize_chunk(type, rows.data(), pool.data(), 0, kPoolRows, head_dim, nullptr);
  const size_t n_rows = dst.size() / rb;
  for (size_t r = 0; r < n_rows; ++r) std::memcpy(dst.data() + r * rb, pool.data() + rb * ((r * 7 + 3) % kPoolRows), rb);
}

void build_point(Point& p, const Options& o, ggml_type type, int64_t ctx, int batch) {
  const int64_t d = o.head_dim, hk = o.n_kv_heads, hq = o.n_heads;
  const size_t rb = ggml_row_size(type, d);
  const size_t seq_bytes = rb * static_cast<size_t>(hk * ctx);
  p.k.assign(seq_bytes * static_cast<size_t>(batch), 0);
  p.v.assign(seq_bytes * static_cast<size_t>(batch), 0);
  fill_cache(p.k, type, d, 1);
  fill_cache(p.v, type, d, 2);
  p.q.resize(static_cast<size_t>(batch * hq * d));
  std::mt19937 rng(99);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (auto& x : p.q) x = nd(rng);

  ggml_init_params ip{};
  ip.mem_size = ggml_tensor_overhead() * 16 + ggml_graph_overhead() + (1 << 16);
  ip.mem_buffer = nullptr;
  ip.no_alloc = true;  // tensor data lives in p.k/p.v/p.q and a separately allocated output
  p.ctx = ggml_init(ip);
  if (!p.ctx) throw std::runtime_error("ggml_init failed");

  // q: [d, 1 token, hq, batch] (contiguous).
  ggml_tensor* q = ggml_new_tensor_4d(p.ctx, GGML_TYPE_F32, d, 1, hq, batch);
  q->data = p.q.data();
  // Caches [d, ctx, hk, batch]. Head-major is that tensor contiguous; token-major (llama.cpp's
  // cache) is [d, hk, ctx, batch] contiguous, permuted so that ctx is the row dimension.
  const bool token_major = o.kv_layout == "token";
  auto cache = [&](std::vector<uint8_t>& buf) {
    ggml_tensor* t = token_major ? ggml_new_tensor_4d(p.ctx, type, d, hk, ctx, batch)
                                 : ggml_new_tensor_4d(p.ctx, type, d, ctx, hk, batch);
    t->data = buf.data();
    return token_major ? ggml_permute(p.ctx, t, 0, 2, 1, 3) : t;
  };
  ggml_tensor* k = cache(p.k);
  ggml_tensor* v = cache(p.v);
  p.out = ggml_flash_attn_ext(p.ctx, q, k, v, nullptr, 1.0f / std::sqrt(static_cast<float>(d)), 0.0f, 0.0f);
  p.graph = ggml_new_graph(p.ctx);
  ggml_build_forward_expand(p.graph, p.out);
}

struct CheckResult {
  double max_abs_err = 0.0;  // max |ggml - reference|
  double max_abs_ref = 0.0;  // max |reference|, the scale of the outputs
};

// Double-precision softmax attention of sequence 0, all heads, on the decoded cache values.
CheckResult check_point(const Point& p, const Options& o, ggml_type type, int64_t ctx) {
  const int64_t d = o.head_dim, hk = o.n_kv_heads, hq = o.n_heads;
  const size_t rb = ggml_row_size(type, d);
  const ggml_type_traits* tr = ggml_get_type_traits(type);
  const bool token_major = o.kv_layout == "token";
  auto row = [&](const std::vector<uint8_t>& buf, int64_t head, int64_t pos, float* dst) {
    const size_t off = token_major ? (static_cast<size_t>(pos * hk + head)) * rb : (static_cast<size_t>(head * ctx + pos)) * rb;
    if (type == GGML_TYPE_F32) std::memcpy(dst, buf.data() + off, rb);
    else tr->to_float(buf.data() + off, dst, d);
  };
  const float* out = static_cast<const float*>(p.out->data);
  std::vector<float> kr(static_cast<size_t>(d)), vr(static_cast<size_t>(d));
  std::vector<double> s(static_cast<size_t>(ctx)), acc(static_cast<size_t>(d));
  CheckResult r;
  for (int64_t h = 0; h < hq; ++h) {
    const int64_t g = h / (hq / hk);
    const float* qh = p.q.data() + h * d;
    double mx = -INFINITY;
    for (int64_t t = 0; t < ctx; ++t) {
      row(p.k, g, t, kr.data());
      double dot = 0.0;
      for (int64_t i = 0; i < d; ++i) dot += static_cast<double>(qh[i]) * kr[static_cast<size_t>(i)];
      s[static_cast<size_t>(t)] = dot / std::sqrt(static_cast<double>(d));
      mx = std::max(mx, s[static_cast<size_t>(t)]);
    }
    std::fill(acc.begin(), acc.end(), 0.0);
    double l = 0.0;
    for (int64_t t = 0; t < ctx; ++t) {
      const double e = std::exp(s[static_cast<size_t>(t)] - mx);
      l += e;
      row(p.v, g, t, vr.data());
      for (int64_t i = 0; i < d; ++i) acc[static_cast<size_t>(i)] += e * vr[static_cast<size_t>(i)];
    }
    // ggml's output is [d][hq][1 token][batch]: head h of sequence 0 at h * d.
    for (int64_t i = 0; i < d; ++i) {
      const double ref = acc[static_cast<size_t>(i)] / l;
      r.max_abs_err = std::max(r.max_abs_err, std::fabs(out[h * d + i] - ref));
      r.max_abs_ref = std::max(r.max_abs_ref, std::fabs(ref));
    }
  }
  return r;
}

int run(const Options& o) {
  const ggml_type type = type_from_name(o.kv_type);
  ggml_cpu_init();
  Flusher flusher(o.flush_mib << 20);
  for (int threads : o.threads) {
    for (int batch : o.batch) {
      for (int64_t ctx : o.ctx) {
        Point p;
        build_point(p, o, type, ctx, batch);
        std::vector<float> out(static_cast<size_t>(batch * o.n_heads * o.head_dim));
        p.out->data = out.data();
        ggml_cplan plan = ggml_graph_plan(p.graph, threads, nullptr);
        std::vector<uint8_t> work(plan.work_size);
        plan.work_data = work.data();
        auto compute = [&] {
          if (ggml_graph_compute(p.graph, &plan) != GGML_STATUS_SUCCESS) throw std::runtime_error("graph compute failed");
        };
        flusher.flush(threads);
        compute();  // warm-up: page faults, OpenMP team start
        std::vector<double> tc, tf;
        for (int r = 0; r < o.reps; ++r) {
          tf.push_back(flusher.flush(threads));
          const double t0 = now_s();
          compute();
          tc.push_back(now_s() - t0);
        }
        const double sec = median(tc);
        const double kv_bytes = static_cast<double>(p.k.size() + p.v.size());
        std::printf("{\"impl\":\"ggml\",\"ctx\":%lld,\"threads\":%d,\"batch\":%d,\"kv_type\":\"%s\",\"kv_layout\":\"%s\","
                    "\"ms\":%.4f,\"gbps\":%.3f,\"read_gbps\":%.3f",
                    static_cast<long long>(ctx), threads, batch, o.kv_type.c_str(), o.kv_layout.c_str(), sec * 1e3,
                    kv_bytes / sec / 1e9, static_cast<double>(flusher.bytes()) / median(tf) / 1e9);
        if (o.check) {
          const CheckResult c = check_point(p, o, type, ctx);
          std::printf(",\"max_abs_err\":%.3g,\"max_abs_ref\":%.3g", c.max_abs_err, c.max_abs_ref);
        }
        std::printf("}\n");
        std::fflush(stdout);
      }
    }
  }
  return flusher.sink() == 1 ? 3 : 0;  // keeps the flush reads observable
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_ggml_flash_attn: %s\n", e.what());
    return 1;
  }
}
