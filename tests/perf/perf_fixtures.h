// Shared fixtures of the performance-model tests: a tiny hand-checkable model and profile.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "alspec/perf/hardware_profile.h"
#include "alspec/perf/model_shape.h"

namespace alspec::perf::testing {

inline MatrixShape f16(double rows, double cols) { return {"F16", rows, cols, rows * cols * 2}; }

// 1 layer, n_embd 256, 4 query / 2 KV heads of 64, FFN 512, vocab 1000, f16 weights and KV.
// Weight bytes: wq 131072, wk 65536, wv 65536, wo 131072, gate/up/down 262144 each,
// LM head 512000: 1691648 in all. K+V per token: 2 x 128 x 2 = 512 bytes.
inline ModelShape tiny_shape(int n_layers = 1) {
  ModelShape s;
  s.name = "tiny";
  s.n_layers = n_layers;
  s.n_embd = 256;
  s.n_head = 4;
  s.n_head_kv = 2;
  s.head_dim = 64;
  s.n_ff = 512;
  s.n_vocab = 1000;
  s.layers.assign(static_cast<size_t>(n_layers),
                  LayerShape{f16(256, 256), f16(128, 256), f16(128, 256), f16(256, 256), f16(512, 256), f16(512, 256),
                             f16(256, 512)});
  s.output = f16(1000, 256);
  s.kv_type = "f16";
  s.kv_elem_bytes = 2;
  s.act_bytes = 2;
  return s;
}

inline nlohmann::json num(double v, const char* src = "test") { return {{"value", v}, {"source", src}}; }

// 100 GB/s, 1 TFLOP/s, 5 us per dispatched op, free element-wise ops; links of 2 us and 10 GB/s.
inline nlohmann::json tiny_profile_json() {
  return {{"name", "tiny-hw"},
          {"kind", "devices"},
          {"device",
           {{"mem_bw_gbps", num(100)},
            {"peak_tflops", num(1)},
            {"op_overhead_us", num(5)},
            {"elementwise_overhead_us", num(0)},
            {"elementwise_ns_per_element", num(0)},
            {"activation_ns_per_element", num(0)}}},
          {"collectives",
           {{"algorithm", "ring"},
            {"tp_link", {{"latency_us", num(2)}, {"bandwidth_gbps", num(10)}}},
            {"sp_link", {{"latency_us", num(2)}, {"bandwidth_gbps", num(10)}}}}}};
}

inline HardwareProfile tiny_profile() { return parse_profile(tiny_profile_json(), "tiny"); }

}  // namespace alspec::perf::testing
