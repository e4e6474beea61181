#include "alspec/perf/calibrate.h"

#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <span>
#include <chrono>
#include <thread>

#include "alspec/core/dtype.h"
#include "alspec/core/error.h"
#include "alspec/core/page_buffer.h"
#include "alspec/core/timer.h"
#include "alspec/kernels/attention.h"
#include "alspec/kernels/matmul.h"
#include "alspec/kernels/matvec_benchmark.h"
#include "alspec/kernels/memory_bandwidth.h"
#include "alspec/kernels/ops.h"
#include "alspec/kernels/quant.h"
#include "alspec/runtime/channel.h"
#include "alspec/runtime/device.h"
#include "alspec/perf/tp_split.h"

namespace alspec::perf {

namespace {

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::string fmt(const char* f, double a) {
  char buf[160];
  std::snprintf(buf, sizeof buf, f, a);
  return buf;
}

// Seconds of one call of `fn`: the lowest of kBatches batch medians (n calls each, after `warm`
// untimed calls, batches 10 ms apart). On a shared machine a whole batch can fall into a window
// where another process holds one of the device's cores, and every multi-thread op then waits for
// the descheduled thread; the least disturbed batch is the machine's own cost.
constexpr int kBatches = 7;
template <class F>
double time_median(int warm, int n, F&& fn) {
  double best = 1e30;
  for (int b = 0; b < kBatches; ++b) {
    if (b > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    for (int i = 0; i < warm; ++i) fn();
    std::vector<double> s;
    s.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      const double t0 = now_seconds();
      fn();
      s.push_back(now_seconds() - t0);
    }
    best = std::min(best, median_of(std::move(s)));
  }
  return best;
}

struct RandomFloats {
  uint64_t state = 0x12345678;
  float next() {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<float>(static_cast<int64_t>(state >> 40) - (int64_t{1} << 23)) / static_cast<float>(1 << 23);
  }
};

// A KV cache of one layer in the engine's layout (f16 unless given, key blocks where the kernel uses them).
struct KvBuffer {
  PageBuffer k, v;
  KvCacheView view;
  KvBuffer(int n_kv, int head_dim, int64_t rows, DType t = DType::F16) {
    const bool blocks = prefer_key_blocks(t, head_dim);
    const int64_t cap = (rows + kKeyBlockRows - 1) / kKeyBlockRows * kKeyBlockRows;
    const size_t bytes = kv_cache_bytes(t, n_kv, head_dim, cap);
    k = PageBuffer(bytes);
    v = PageBuffer(bytes);
    view = {t, k.data(), v.data(), n_kv, head_dim, cap, blocks, 0};
    RandomFloats rng;
    std::vector<float> row(static_cast<size_t>(head_dim));
    for (int h = 0; h < n_kv; ++h) {
      for (int64_t r = 0; r < rows; ++r) {
        for (auto& x : row) x = rng.next();
        store_key_row(t, blocks, row.data(), k.data() + view.row_offset(h, 0), r, head_dim);
        for (auto& x : row) x = rng.next();
        store_kv_row(t, row.data(), v.data() + view.row_offset(h, r), head_dim);
      }
    }
  }
};

// Q8_0 rows x cols matrices filling `bytes` (at least two), cycled so that every matvec streams
// from memory. next() runs the next matrix's matvec; gbps() is the median rate of `passes` passes
// over all of them.
class StreamedMatvecs {
 public:
  StreamedMatvecs(int64_t rows, int64_t cols, size_t bytes) : rows_(rows), cols_(cols) {
    rb_ = row_bytes(DType::Q8_0, cols);
    mat_ = rb_ * static_cast<size_t>(rows);
    count_ = std::max<size_t>(2, bytes / mat_);
    w_.resize(mat_ * count_);
    RandomFloats rng;
    std::vector<float> src(static_cast<size_t>(cols));
    for (int64_t i = 0; i < 64; ++i) {
      for (auto& x : src) x = rng.next();
      quantize_row(DType::Q8_0, src.data(), w_.data() + static_cast<size_t>(i) * rb_, cols);
    }
    for (size_t off = 64 * rb_; off < w_.size(); off += 64 * rb_) std::memcpy(w_.data() + off, w_.data(), std::min(64 * rb_, w_.size() - off));
    x_.assign(static_cast<size_t>(cols), 0.25f);
    y_.resize(static_cast<size_t>(rows));
  }
  void next(Device& dev) {
    matvec(dev, WeightMatrix{DType::Q8_0, w_.data() + next_ * mat_, rows_, cols_, rb_}, x_.data(), y_.data());
    next_ = (next_ + 1) % count_;
  }
  double gbps(Device& dev, int passes) {
    std::vector<double> s;
    for (int p = 0; p < passes; ++p) {
      const double t0 = now_seconds();
      for (size_t k = 0; k < count_; ++k) next(dev);
      s.push_back(now_seconds() - t0);
    }
    return static_cast<double>(w_.size()) / median_of(std::move(s)) / 1e9;
  }

 private:
  int64_t rows_, cols_;
  size_t rb_ = 0, mat_ = 0, count_ = 0, next_ = 0;
  std::vector<uint8_t> w_;
  std::vector<float> x_, y_;
};

// Seconds of one flash_decode over `rows` rows (median), caches flushed by the probe buffer when `flush`.
double attention_seconds(Device& dev, ReadProbeBuffer* flush, int n_head, int n_kv, int head_dim, int64_t rows, int reps,
                         DType kv_type = DType::F16) {
  KvBuffer kv(n_kv, head_dim, rows, kv_type);
  RandomFloats rng;
  std::vector<float> q(static_cast<size_t>(n_head) * head_dim), out(q.size());
  for (auto& x : q) x = rng.next();
  const AttentionShape shape{n_head, n_kv, head_dim};
  const DecodeQuery dq{q.data(), kv.view, rows - 1, out.data()};
  std::vector<double> s;
  for (int i = 0; i < reps + 1; ++i) {
    if (flush != nullptr) flush->read_all(dev);
    const double t0 = now_seconds();
    flash_decode(dev, shape, std::span<const DecodeQuery>(&dq, 1), 128);
    if (i > 0) s.push_back(now_seconds() - t0);
  }
  return median_of(std::move(s));
}

}  // namespace

std::string cpu_model_name() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto p = line.find(':');
      if (p != std::string::npos) {
        std::string n = line.substr(p + 1);
        n.erase(0, n.find_first_not_of(' '));
        return n;
      }
    }
  }
  return "unknown CPU";
}

HardwareProfile calibrate(const CalibrationOptions& o, const std::function<void(const std::string&)>& log) {
  if (o.threads.empty()) throw_invalid_argument("--calibrate needs at least one thread count");
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  HardwareProfile p;
  p.name = o.name.empty() ? cpu_model_name() + " (" + std::to_string(hw) + " threads)" : o.name;
  p.kind = ProfileKind::kCpuThreads;
  p.notes = "Measured by `alspec project --calibrate` (src/perf/calibrate.cpp); a device = a group of threads; "
            "every number's source names its measurement. Shared machine: see docs/performance-model.md.";
  const std::string cmd = "alspec project --calibrate: ";
  for (int t : o.threads) {
    if (t < 1) throw_invalid_argument("--threads values must be >= 1");
    Device dev({.name = "calibrate", .threads = t, .cores = {}});
    DeviceRates r;
    const std::string at = " at " + std::to_string(t) + " thread(s)";
    std::vector<double> bws;
    for (int k = 0; k < 3; ++k) bws.push_back(measure_read_bandwidth(dev, size_t{512} << 20, 5).gbps);
    const double bw = median_of(bws);
    r.mem_bw_gbps = {bw, cmd + "measure_read_bandwidth, 512 MiB, median of 3 runs of 5" + at};
    log(fmt("read bandwidth %.2f GB/s", bw) + at);
    for (DType type : {DType::F32, DType::F16, DType::Q8_0, DType::Q4_0, DType::Q5_0, DType::Q4_K, DType::Q6_K}) {
      try {
        // Three independent measurements (fresh matrices, seconds apart), the median kept: a single
        // one on a shared machine can land in another process's burst either way.
        std::vector<double> g;
        for (int k = 0; k < 3; ++k) g.push_back(benchmark_matvec(dev, type, 2048, 4096, o.matvec_bytes, o.reps).gbps);
        const double gbps = median_of(g);
        r.matvec_gbps[std::string(dtype_name(type))] = {
            gbps, cmd + "benchmark_matvec 2048x4096, " + std::to_string(o.matvec_bytes >> 20) + " MiB cycled, median of 3 runs of " +
                      std::to_string(o.reps) + " passes" + at};
        log(std::string(dtype_name(type)) + fmt(" matvec %.2f GB/s", gbps) + at);
      } catch (const Error& e) {
        log(std::string(dtype_name(type)) + " matvec skipped: " + e.what());
      }
    }
    {  // Cache-resident matvecs: 1 MiB of weights cycled (small models live in the caches).
      std::ifstream llc("/sys/devices/system/cpu/cpu0/cache/index3/size");
      std::string size;
      if (llc >> size && !size.empty()) {
        double bytes = std::atof(size.c_str());
        if (size.back() == 'K') bytes *= 1024;
        if (size.back() == 'M') bytes *= 1024 * 1024;
        r.cache_bytes = {bytes / 2, "half the last-level cache of /sys/devices/system/cpu/cpu0/cache/index3/size (" + size +
                                        "): a model whose weights + KV fit in it is assumed cache-resident"};
      }
      for (DType type : {DType::F32, DType::F16, DType::Q8_0, DType::Q4_0, DType::Q5_0, DType::Q4_K, DType::Q6_K}) {
        try {
          const MatvecBenchmarkResult m = benchmark_matvec(dev, type, 256, 1024, size_t{1} << 20, 200);
          r.matvec_cached_gbps[std::string(dtype_name(type))] = {
              m.gbps, cmd + "benchmark_matvec 256x1024 cycled over 1 MiB (cache-resident), median of 200" + at};
        } catch (const Error& e) {
          log(std::string(dtype_name(type)) + " cached matvec skipped: " + e.what());
        }
      }
      log(fmt("cached F32 matvec %.1f GB/s", r.matvec_cached_gbps.count("F32") ? r.matvec_cached_gbps["F32"].value : 0.0) + at);
    }
    {  // Fixed cost of one dispatched op: a matvec whose 8 KiB of weights stay in L1.
      const int64_t rows = 32, cols = 256;
      std::vector<uint8_t> wbuf(row_bytes(DType::Q8_0, cols) * rows);
      RandomFloats rng;
      std::vector<float> src(static_cast<size_t>(cols));
      for (int64_t i = 0; i < rows; ++i) {
        for (auto& x : src) x = rng.next();
        quantize_row(DType::Q8_0, src.data(), wbuf.data() + static_cast<size_t>(i) * row_bytes(DType::Q8_0, cols), cols);
      }
      const WeightMatrix w{DType::Q8_0, wbuf.data(), rows, cols, row_bytes(DType::Q8_0, cols)};
      std::vector<float> x(static_cast<size_t>(cols), 0.5f), y(static_cast<size_t>(rows));
      const double s = time_median(200, 3000, [&] { matvec(dev, w, x.data(), y.data()); });
      r.op_overhead_us = {s * 1e6, cmd + "lowest of 7 batch medians of 3000 matvecs of a 32x256 Q8_0 matrix (L1-resident)" + at};
      log(fmt("op overhead %.2f us", s * 1e6) + at);
    }
    {  // Attention: memory-bound rate, compute-bound rate, per-call overhead.
      ReadProbeBuffer flush(dev, size_t{256} << 20);
      const int64_t rows = 16384;
      const double s_mem = attention_seconds(dev, &flush, 8, 8, 128, rows, 3 * o.reps + 2);
      const double bytes = 2.0 * 8 * rows * 128 * 2;
      r.attention_gbps = {bytes / s_mem / 1e9, cmd + "flash_decode 8 q / 8 KV heads x 128, f16, 16384 rows, caches flushed, median of 11" + at};
      const double s_cmp = attention_seconds(dev, &flush, 32, 2, 128, rows, 3 * o.reps + 2);
      const double flops = 4.0 * 32 * 128 * rows;
      r.attention_gflops = {flops / s_cmp / 1e9, cmd + "flash_decode 32 q / 2 KV heads x 128 (compute-bound), f16, 16384 rows, median of 11" + at};
      KvBuffer kv_small(2, 64, 64);
      std::vector<float> q_small(8 * 64, 0.1f), o_small(q_small.size());
      const DecodeQuery dq_small{q_small.data(), kv_small.view, 63, o_small.data()};
      const double s_small = time_median(20, 200, [&] {
        flash_decode(dev, AttentionShape{8, 2, 64}, std::span<const DecodeQuery>(&dq_small, 1), 128);
      });
      r.attention_overhead_us = {s_small * 1e6, cmd + "flash_decode 8 q / 2 KV heads x 64, 64 rows, cache-resident, "
                                                      "lowest of 7 batch medians of 200" + at};
      log(fmt("attention %.2f GB/s", r.attention_gbps->value) + fmt(", %.1f GFLOP/s", r.attention_gflops->value) +
          fmt(", overhead %.2f us", s_small * 1e6) + at);
      r.peak_tflops = {r.attention_gflops->value / 1e3,
                       cmd + "the attention kernel's compute-bound rate (matvecs use their measured per-type rates)" + at};
    }
    {  // Serial element-wise ops (RMSNorm), and SwiGLU split over the device as the session runs it.
      std::vector<float> x(8192, 0.3f), w(8192, 1.0f), y(8192), g(8192, 0.2f), u(8192, 0.7f);
      const double s_small = time_median(500, 5000, [&] { rmsnorm(x.data(), w.data(), y.data(), 64, 1e-5f); });
      const double s_big = time_median(50, 2000, [&] { rmsnorm(x.data(), w.data(), y.data(), 8192, 1e-5f); });
      r.elementwise_overhead_us = {s_small * 1e6, cmd + "RMSNorm of 64 floats, one thread, lowest of 7 batch medians"};
      r.elementwise_ns_per_element = {std::max(0.0, (s_big - s_small) / (8192 - 64) * 1e9),
                                      cmd + "RMSNorm of 8192 vs 64 floats, per extra element, one thread"};
      const double s_act = time_median(50, 1000, [&] {
        dev.parallel_for(8, [&](size_t task, int) { swiglu(g.data() + task * 1024, u.data() + task * 1024, y.data() + task * 1024, 1024); });
      });
      r.activation_ns_per_element = {std::max(0.0, (s_act - r.op_overhead_us.value * 1e-6) / 8192 * 1e9),
                                     cmd + "SwiGLU of 8192 elements in 8 tasks on the device, minus the op overhead, per element" + at};
      log(fmt("element-wise %.2f us", s_small * 1e6) + fmt(" + %.3f ns/element", r.elementwise_ns_per_element->value) +
          fmt(", SwiGLU %.3f ns/element", r.activation_ns_per_element->value) + at);
    }
    if (2 * t <= static_cast<int>(hw)) {  // two such devices at once: each one's matvec rate over its rate alone
      // Both devices' matrices are built first and the timed passes start together (a barrier):
      // timing one device while the other fills its memory measures the fill, not the decode.
      Device other({.name = "calibrate-peer", .threads = t, .cores = {}});
      StreamedMatvecs mine(2048, 4096, o.matvec_bytes), theirs(2048, 4096, o.matvec_bytes);
      const int passes = 3 * o.reps;
      std::vector<double> alone, both;
      for (int k = 0; k < 3; ++k) {
        alone.push_back(mine.gbps(dev, passes));
        std::barrier sync(2);
        double g_peer = 0;
        std::thread peer([&] {
          sync.arrive_and_wait();
          g_peer = theirs.gbps(other, passes);
        });
        sync.arrive_and_wait();
        const double g_me = mine.gbps(dev, passes);
        peer.join();
        both.push_back((g_me + g_peer) / 2);
      }
      const double f = std::min(1.0, median_of(both) / median_of(alone));
      r.concurrent_factor = {f, cmd + "Q8_0 2048x4096 matvecs streamed from " + std::to_string(o.matvec_bytes >> 20) +
                                    " MiB on two devices of " + std::to_string(t) +
                                    " thread(s) started together (mean of the two) over one alone, medians of 3, at most 1"};
      log(fmt("two devices at once: %.3f of the rate alone", f) + at);
    }
    for (const ModelShape& m : o.shapes) {  // the models' own shapes
      std::vector<MatrixShape> mats{m.output};
      for (const auto& l : m.layers) {
        for (const MatrixShape* x : {&l.wq, &l.wk, &l.wv, &l.w_gate, &l.w_up}) mats.push_back(*x);
        for (const MatrixShape* x : {&l.wo, &l.w_down}) mats.push_back(column_chunk(*x, m.chunks_per_rank));
      }
      for (const MatrixShape& x : mats) {
        const auto rows = static_cast<int64_t>(x.rows), cols = static_cast<int64_t>(x.cols);
        const std::string key = matvec_shape_key(x.type, rows, cols);
        if (r.matvec_shape_gbps.count(key) != 0) continue;
        const auto type = dtype_from_name(x.type);
        if (!type) {
          log(key + ": no kernel type of that name, not measured");
          continue;
        }
        // A TP shard can split a row inside a block (e.g. Q4_K down 896 x 4864 over 2 ranks): such a
        // shape is measured with its columns rounded up to whole blocks.
        const int64_t block = dtype_info(*type).block_size;
        const int64_t cols_run = (cols + block - 1) / block * block;
        const std::string run = cols_run == cols ? key : matvec_shape_key(x.type, rows, cols_run) + " for " + key;
        // Three independent measurements (fresh matrices), the median kept, as for the per-type rates.
        std::vector<double> g;
        for (int k = 0; k < 3; ++k) g.push_back(benchmark_matvec(dev, *type, rows, cols_run, o.matvec_bytes, o.reps).gbps);
        r.matvec_shape_gbps[key] = {median_of(g), cmd + "benchmark_matvec " + run + " (shape of " + m.name + "), " +
                                                      std::to_string(o.matvec_bytes >> 20) + " MiB cycled, median of 3 runs of " +
                                                      std::to_string(o.reps) + " passes" + at};
        log(key + fmt(" matvec %.2f GB/s", r.matvec_shape_gbps[key].value) + at);
      }
      const std::string akey = attention_shape_key(m.n_head, m.n_head_kv, m.head_dim, m.kv_type);
      if (r.attention_shape_us.count(akey) != 0) continue;
      const auto kv_type = dtype_from_name(m.kv_type);
      if (!kv_type) {
        log(akey + ": no KV type of that name, attention not measured");
        continue;
      }
      ReadProbeBuffer flush(dev, size_t{256} << 20);
      for (int64_t rows : o.attention_rows) {
        const double s_att = attention_seconds(dev, &flush, m.n_head, m.n_head_kv, m.head_dim, rows, 3 * o.reps + 2, *kv_type);
        r.attention_shape_us[akey][rows] = {s_att * 1e6, cmd + "flash_decode " + akey + " (heads of " + m.name + "), " +
                                                             std::to_string(rows) + " rows, caches flushed, median of " +
                                                             std::to_string(3 * o.reps + 2) + at};
        log(akey + " attention " + std::to_string(rows) + fmt(" rows %.1f us", s_att * 1e6) + at);
      }
    }
    p.threads[t] = std::move(r);
  }
  {  // Messages between two devices: Channel ping-pong between two threads.
    auto [a, b] = make_local_channel_pair(size_t{1} << 18);
    Channel* ca = a.get();
    Channel* cb = b.get();
    auto pingpong = [&](size_t floats, int n) {
      std::vector<float> bufa(floats, 1.0f), bufb(floats);
      std::thread peer([&] {
        for (int i = 0; i < n; ++i) {
          cb->recv(MessageTag::kResidual, bufb);
          cb->send(MessageTag::kApproxOutput, bufb);
        }
      });
      const double t0 = now_seconds();
      for (int i = 0; i < n; ++i) {
        ca->send(MessageTag::kResidual, bufa);
        ca->recv(MessageTag::kApproxOutput, bufa);
      }
      const double s = now_seconds() - t0;
      peer.join();
      return s / (2.0 * n);  // one way
    };
    pingpong(1, 1000);
    double lat = 1e30, t_big = 1e30;
    const size_t big = size_t{1} << 18;
    for (int b = 0; b < kBatches; ++b) {  // least disturbed batch, as time_median
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      lat = std::min(lat, pingpong(1, 3000));
      t_big = std::min(t_big, pingpong(big, 30));
    }
    const double gbps = static_cast<double>(big * sizeof(float)) / std::max(1e-12, t_big - lat) / 1e9;
    Link l;
    l.latency_us = {lat * 1e6, cmd + "Channel ping-pong of one float between two threads, one way, lowest of 7 batch means of 3000"};
    l.bandwidth_gbps = {gbps, cmd + "Channel ping-pong of 1 MiB messages, one way, minus the latency, lowest of 7 batch means of 30"};
    p.collectives.sp_link = l;
    log(fmt("channel latency %.3f us", lat * 1e6) + fmt(", %.2f GB/s", gbps));
  }
  return p;
}

void calibrate_mpi_links(HardwareProfile& p, Communicator& world, const std::function<void(const std::string&)>& log) {
  const int n = world.size(), me = world.rank();
  if (n < 2) throw_invalid_argument("--calibrate-mpi needs at least 2 MPI ranks (mpirun -np 2 ...)");
  const std::string cmd = "alspec project --calibrate-mpi, " + std::to_string(n) + " MPI ranks: ";
  // Ranks 0 and 1 ping-pong; the others wait at the barrier. One-way time of `bytes`.
  auto pingpong = [&](size_t bytes, int warm, int calls) {
    std::vector<std::byte> buf(bytes);
    double t = 0;
    if (me < 2) {
      t = time_median(warm, calls, [&] {
        if (me == 0) {
          world.send(CommOp::kControl, 1, 7, buf);
          world.recv(CommOp::kControl, 1, 7, buf);
        } else {
          world.recv(CommOp::kControl, 0, 7, buf);
          world.send(CommOp::kControl, 0, 7, buf);
        }
      }) / 2;
    }
    world.barrier();
    return t;
  };
  // All ranks: one all-gather of `per_rank` floats from each.
  auto allgather = [&](size_t per_rank, int warm, int calls) {
    std::vector<float> mine(per_rank, 1.0f), all(per_rank * static_cast<size_t>(n));
    const double t = time_median(warm, calls, [&] { world.allgather(CommOp::kControl, mine, all); });
    world.barrier();
    return t;
  };
  const size_t big = size_t{1} << 20;
  const double lat = pingpong(4, 200, 2000), t_big = pingpong(big, 5, 30);
  const size_t ag_small = 4, ag_big = 16384;
  const double ag0 = allgather(ag_small, 200, 2000), ag1 = allgather(ag_big, 20, 200);
  // A collective after real work: both ranks stream weights (a Q8_0 matvec of R x 2048 from 64 MiB
  // cycled, as a TP shard's o or down projection), then all-gather; against the same matvecs alone.
  // Two effects the isolated all-gathers above do not see: the ranks finish their matvecs apart
  // (the skew grows with the matvec: wait_fraction, with a fixed part), and the gather's buffers
  // are cold after the weights went through the caches (the link bandwidth is measured this way).
  Device seg_dev({.name = "calibrate-mpi", .threads = 1, .cores = {}});
  // Seconds of one matvec of `mats` followed, when floats > 0, by an all-gather of that many floats.
  auto segment = [&](StreamedMatvecs& mats, size_t floats, int calls) {
    std::vector<float> mine(std::max<size_t>(floats, 1), 1.0f), all(mine.size() * static_cast<size_t>(n));
    world.barrier();
    const double t = time_median(3, calls, [&] {
      mats.next(seg_dev);
      if (floats > 0) world.allgather(CommOp::kControl, mine, all);
    });
    world.barrier();
    return t;
  };
  // Wait after a segment = with - without - the (warm) 4-float all-gather, at five matvec lengths
  // (~40-600 us here); one length alone is noisy on a shared host, so the fraction is the median of
  // the five ratios and the fixed part the median of what is left.
  std::vector<double> segs, waits, ratios;
  const size_t seg_bytes = size_t{64} << 20;
  for (int64_t rows : {512, 1024, 2048, 4096, 8192}) {
    const int calls = static_cast<int>(std::max<int64_t>(30, 200 * 512 / rows));
    StreamedMatvecs mats(rows, 2048, seg_bytes);
    const double alone = segment(mats, 0, calls), with = segment(mats, ag_small, calls);
    segs.push_back(alone);
    waits.push_back(std::max(0.0, with - alone - ag0));
    ratios.push_back(waits.back() / alone);
  }
  const double frac = median_of(ratios);
  std::vector<double> rest;
  for (size_t i = 0; i < segs.size(); ++i) rest.push_back(std::max(0.0, waits[i] - frac * segs[i]));
  const double fixed = median_of(rest);
  StreamedMatvecs short_mats(512, 2048, seg_bytes);
  const double s_lo = segment(short_mats, ag_small, 200), s_hi = segment(short_mats, ag_big, 200);
  const double cold_extra = std::max(1e-9, s_hi - s_lo);  // 16384 vs 4 floats after the same matvec
  std::string curve;
  for (size_t i = 0; i < segs.size(); ++i) curve += fmt(" %.0f us:", segs[i] * 1e6) + fmt(" %.3f", ratios[i]);
  log("wait / matvec segment:" + curve + fmt("; wait %.2f us", fixed * 1e6) + fmt(" + %.3f x segment", frac));
  // Both ranks measured; rank 0's figures are the ones written (it is the one that writes).
  Link sp;
  sp.latency_us = {lat * 1e6, cmd + "ping-pong of 4 bytes between ranks 0 and 1, one way, lowest of 7 batch medians of 2000"};
  sp.bandwidth_gbps = {static_cast<double>(big) / std::max(1e-12, t_big - lat) / 1e9,
                       cmd + "ping-pong of 1 MiB between ranks 0 and 1, one way, minus the latency, lowest of 7 batch medians of 30"};
  // Ring all-gather model: (n-1) steps and (n-1)/n of the gathered bytes over the busiest link.
  const double steps = n - 1;
  const double gathered_extra = steps * static_cast<double>((ag_big - ag_small) * sizeof(float));
  Link tp;
  tp.latency_us = {ag0 * 1e6 / steps, cmd + "all-gather of 4 floats per rank over all ranks, per ring step (/ (n-1)), lowest of 7 batch medians of 2000"};
  tp.bandwidth_gbps = {gathered_extra / cold_extra / 1e9,
                       cmd + "all-gather of 16384 vs 4 floats per rank, each after a Q8_0 512x2048 matvec streamed from 64 MiB (cold "
                             "buffers, as in a decode): extra bytes over the link / extra time, lowest of 7 batch medians of 200"};
  tp.fixed_us = {fixed * 1e6, cmd + "Q8_0 R x 2048 matvecs (R = 512 ... 8192) each followed by an all-gather of 4 floats per rank, "
                                    "minus the matvecs alone and the all-gather alone, less wait_fraction x the matvec: the median over "
                                    "the five R (each the lowest of 7 batch medians)"};
  tp.wait_fraction = {frac, cmd + "the same: the median over the five R of the wait / the matvec's time"};
  log(fmt("warm all-gather of 16K floats %.1f us", ag1 * 1e6) + fmt(", after a matvec %.1f us more than 4 floats", cold_extra * 1e6));
  p.collectives.transport = Transport::kMpi;
  p.collectives.reduction = TpReduction::kChunkAllGather;
  p.collectives.algorithm = CollectiveAlgorithm::kRing;
  p.collectives.sp_link = sp;
  p.collectives.tp_link = tp;
  log(fmt("MPI p2p latency %.2f us", lat * 1e6) + fmt(", %.2f GB/s", sp.bandwidth_gbps.value) +
      fmt("; all-gather step %.2f us", tp.latency_us.value) + fmt(", %.2f GB/s", tp.bandwidth_gbps.value));
}

}  // namespace alspec::perf
