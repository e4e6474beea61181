// Hardware profiles: JSON data files (profiles/*.json) in which every number carries its source
// (a measurement command, a datasheet, a fit, or the word "assumption" and why).
//
//   {"name": "...", "kind": "devices" | "cpu-threads", "notes": "...",
//    "device": {<rates>},                      // kind "devices": one accelerator or socket
//    "threads": {"1": {<rates>}, "2": {...}},  // kind "cpu-threads": a device = a group of threads
//    "collectives": {"algorithm": "ring" | "tree",
//                    "transport": "in-process" | "mpi",  // cpu-threads: devices are thread groups
//                                                        // of one process, or MPI ranks
//                    "reduction": "all-reduce" | "chunk-all-gather",  // how TP sums o/down
//                    "tp_link": {<link>},      // between the devices of one tensor-parallel group
//                    "sp_link": {<link>}}}     // between the two ALSpec sides
//   <number> = {"value": 288, "source": "..."}
//   <rates>: mem_bw_gbps, peak_tflops, op_overhead_us (required); matvec_efficiency,
//            matvec_gbps {"<type>": <number>}, cache_bytes, matvec_cached_gbps {"<type>": <number>}, attention_efficiency, attention_gbps,
//            attention_efficiency_by_kv_heads {"<heads>": <number>}, attention_gflops, attention_overhead_us, elementwise_overhead_us,
//            elementwise_ns_per_element, activation_ns_per_element,
//            matvec_shape_gbps {"<type> <rows>x<cols>": <number>}  (measured on a model's own shapes),
//            attention_shape_us {"<heads>/<kv heads>/<head dim>/<kv type>": {"<rows>": <number>}},
//            concurrent_factor (optional)
//   <link>: latency_us, bandwidth_gbps (required), fixed_us (optional, per collective call),
//           wait_fraction (optional: per collective, x the compute since the previous one)
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace alspec::perf {

struct Sourced {
  double value = 0;
  std::string source;
};

// One device's rates. Optional numbers fall back as documented per field.
struct DeviceRates {
  Sourced mem_bw_gbps;     // memory read bandwidth, 1e9 B/s
  Sourced peak_tflops;     // dense FP16/BF16 (or the CPU's vector FMA) peak, 1e12 FLOP/s
  Sourced op_overhead_us;  // fixed cost per dispatched op (kernel launch, thread barrier)
  std::optional<Sourced> matvec_efficiency;          // default 1: matvec reads at mem_bw
  std::map<std::string, Sourced> matvec_gbps;        // measured per weight type (upper-case GGUF name)
  // A model whose weights and KV bytes per token fit in cache_bytes is read from the caches: its
  // matvecs run at matvec_cached_gbps[type] (where measured) instead.
  std::optional<Sourced> cache_bytes;
  std::map<std::string, Sourced> matvec_cached_gbps;
  std::optional<Sourced> attention_efficiency;       // default 1: attention reads KV at mem_bw
  // Efficiency by KV heads per device, for kernels whose parallelism comes from the heads:
  // interpolated linearly in log(heads) between the given counts, clamped outside them. Overrides
  // attention_efficiency when present.
  std::map<int, Sourced> attention_efficiency_by_kv_heads;
  std::optional<Sourced> attention_gbps;             // overrides mem_bw * attention_efficiency
  std::optional<Sourced> attention_gflops;           // default peak_tflops
  std::optional<Sourced> attention_overhead_us;      // default op_overhead_us
  std::optional<Sourced> elementwise_overhead_us;    // serial small ops (norm, RoPE, add); default op_overhead_us
  std::optional<Sourced> elementwise_ns_per_element; // default 0 (bandwidth term only)
  std::optional<Sourced> activation_ns_per_element;  // SwiGLU per element on the device; default elementwise
  // Measured on the shapes of the models to be projected (`--calibrate --models`): a matvec of that
  // exact type and shape reads at this rate (Vidur-style per-op profiling; per-type rates of one
  // 2048x4096 matrix miss per-shape effects such as a 896-row projection reading at half the rate).
  std::map<std::string, Sourced> matvec_shape_gbps;
  // One attention call's time (us) for a head geometry at measured row counts, piecewise linear in
  // between (and along the last segment beyond); overrides the attention roofline for that shape.
  std::map<std::string, std::map<int64_t, Sourced>> attention_shape_us;
  // Memory rates of one such device while another identical one runs at the same time on the host,
  // over its rate alone (measured); a shared-bus rule needs no cap when present.
  std::optional<Sourced> concurrent_factor;

  double matvec_rate_gbps(const std::string& type, bool cached = false) const;  // matvec_gbps[type] or mem_bw * efficiency
  // matvec_shape_gbps[shape_key] where measured (not for cache-resident models), else matvec_rate_gbps.
  double matvec_rate_gbps(const std::string& type, const std::string& shape_key, bool cached) const;
  // The measured attention time of `rows` rows for this shape key, if the profile has the shape.
  std::optional<double> attention_shape_time_us(const std::string& shape_key, double rows) const;
  double attention_rate_gbps(int kv_heads_per_device = 0) const;
  double attention_rate_gflops() const;
  double attention_overhead() const;   // us
  double elementwise_overhead() const; // us
  double elementwise_ns() const;
  double activation_ns() const;
};

// Keys of the per-shape tables: "Q4_K 896x4864" (type, output rows x input columns) and
// "14/2/64/f16" (query heads / KV heads / head dim / KV type of one device).
std::string matvec_shape_key(const std::string& type, int64_t rows, int64_t cols);
std::string attention_shape_key(int n_head, int n_head_kv, int head_dim, const std::string& kv_type);

struct Link {
  Sourced latency_us;       // per step (message)
  Sourced bandwidth_gbps;   // per direction, 1e9 B/s
  std::optional<Sourced> fixed_us;  // per collective call, on top of the steps
  // Waiting for the slower device per collective, as a fraction of the compute since the previous
  // one (devices that run the same work drift apart by a share of it); default 0.
  std::optional<Sourced> wait_fraction;
  double fixed() const { return fixed_us ? fixed_us->value : 0.0; }
  double wait() const { return wait_fraction ? wait_fraction->value : 0.0; }
};

enum class CollectiveAlgorithm { kRing, kTree };
// How tensor parallelism sums the row-split o / down products: an all-reduce (Megatron, CCL
// libraries), or alspec's MPI runtime's all-gather of C fixed column chunks summed in chunk
// order on every rank (results independent of the rank count; include/alspec/model/model.h).
enum class TpReduction { kAllReduce, kChunkAllGather };
enum class Transport { kInProcess, kMpi };

struct CollectiveSpec {
  CollectiveAlgorithm algorithm = CollectiveAlgorithm::kRing;
  Transport transport = Transport::kInProcess;
  TpReduction reduction = TpReduction::kAllReduce;
  int chunks = 1;  // C of kChunkAllGather; set per model by project() (--tp-chunks)
  std::optional<Link> tp_link;  // required for tp > 1
  std::optional<Link> sp_link;  // required for --sp 2
};

enum class ProfileKind { kDevices, kCpuThreads };

struct HardwareProfile {
  std::string name;
  std::string origin;  // file it came from
  ProfileKind kind = ProfileKind::kDevices;
  std::string notes;
  DeviceRates device;                  // kDevices
  std::map<int, DeviceRates> threads;  // kCpuThreads
  CollectiveSpec collectives;

  // The rates of one device: kDevices ignores n_threads; kCpuThreads needs an entry for it
  // (Error(kInvalidArgument) listing the calibrated counts otherwise).
  const DeviceRates& rates(int n_threads) const;
};

// Parses a profile; `origin` names it in errors. Error(kInvalidArgument) with the JSON path of the
// offending field for: a missing required field, a number without a source, a non-positive rate,
// an unknown kind or algorithm.
HardwareProfile parse_profile(const nlohmann::json& j, const std::string& origin);
// Reads and parses a file; Error(kIo) if it cannot be read, Error(kInvalidArgument) if the JSON is malformed.
HardwareProfile load_profile(const std::string& path);
// The profile as JSON (the format above), e.g. to write a calibration result.
nlohmann::json profile_to_json(const HardwareProfile& p);

}  // namespace alspec::perf
