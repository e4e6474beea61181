#include "alspec/perf/hardware_profile.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <utility>
#include <nlohmann/json.hpp>

#include "alspec/core/error.h"
#include "alspec/core/read_file.h"

namespace alspec::perf {

using nlohmann::json;

double DeviceRates::matvec_rate_gbps(const std::string& type, bool cached) const {
  const auto it = matvec_gbps.find(type);
  const double dram = it != matvec_gbps.end() ? it->second.value
                                              : mem_bw_gbps.value * (matvec_efficiency ? matvec_efficiency->value : 1.0);
  if (cached) {
    // Reading from the caches is never slower than from memory (a lower cached figure is a disturbed measurement).
    const auto c = matvec_cached_gbps.find(type);
    if (c != matvec_cached_gbps.end()) return std::max(dram, c->second.value);
  }
  return dram;
}
double DeviceRates::matvec_rate_gbps(const std::string& type, const std::string& shape_key, bool cached) const {
  if (!cached) {
    const auto it = matvec_shape_gbps.find(shape_key);
    if (it != matvec_shape_gbps.end()) return it->second.value;
  }
  return matvec_rate_gbps(type, cached);
}

std::optional<double> DeviceRates::attention_shape_time_us(const std::string& shape_key, double rows) const {
  const auto it = attention_shape_us.find(shape_key);
  if (it == attention_shape_us.end() || it->second.empty()) return std::nullopt;
  const auto& t = it->second;
  if (t.size() == 1 || rows <= static_cast<double>(t.begin()->first)) return t.begin()->second.value;
  // The segment that holds `rows` (the last one beyond the largest measured count).
  auto hi = t.lower_bound(static_cast<int64_t>(std::ceil(rows)));
  if (hi == t.end()) hi = std::prev(t.end());
  const auto lo = std::prev(hi);
  const double x0 = static_cast<double>(lo->first), x1 = static_cast<double>(hi->first);
  const double y0 = lo->second.value, y1 = hi->second.value;
  return std::max(0.0, y0 + (rows - x0) * (y1 - y0) / (x1 - x0));
}

std::string matvec_shape_key(const std::string& type, int64_t rows, int64_t cols) {
  return type + " " + std::to_string(rows) + "x" + std::to_string(cols);
}
std::string attention_shape_key(int n_head, int n_head_kv, int head_dim, const std::string& kv_type) {
  return std::to_string(n_head) + "/" + std::to_string(n_head_kv) + "/" + std::to_string(head_dim) + "/" + kv_type;
}

double DeviceRates::attention_rate_gbps(int kv_heads) const {
  if (attention_gbps) return attention_gbps->value;
  if (!attention_efficiency_by_kv_heads.empty()) {
    const auto& m = attention_efficiency_by_kv_heads;
    double eff = 0;
    if (kv_heads <= m.begin()->first) {
      eff = m.begin()->second.value;
    } else if (kv_heads >= m.rbegin()->first) {
      eff = m.rbegin()->second.value;
    } else {
      const auto hi = m.lower_bound(kv_heads);
      const auto lo = std::prev(hi);
      const double f = (std::log(kv_heads) - std::log(lo->first)) / (std::log(hi->first) - std::log(lo->first));
      eff = lo->second.value + f * (hi->second.value - lo->second.value);
    }
    return mem_bw_gbps.value * eff;
  }
  return mem_bw_gbps.value * (attention_efficiency ? attention_efficiency->value : 1.0);
}
double DeviceRates::attention_rate_gflops() const {
  return attention_gflops ? attention_gflops->value : peak_tflops.value * 1e3;
}
double DeviceRates::attention_overhead() const {
  return attention_overhead_us ? attention_overhead_us->value : op_overhead_us.value;
}
double DeviceRates::elementwise_overhead() const {
  return elementwise_overhead_us ? elementwise_overhead_us->value : op_overhead_us.value;
}
double DeviceRates::elementwise_ns() const { return elementwise_ns_per_element ? elementwise_ns_per_element->value : 0.0; }
double DeviceRates::activation_ns() const {
  return activation_ns_per_element ? activation_ns_per_element->value : elementwise_ns();
}

const DeviceRates& HardwareProfile::rates(int n_threads) const {
  if (kind == ProfileKind::kDevices) return device;
  const auto it = threads.find(n_threads);
  if (it != threads.end()) return it->second;
  std::string have;
  for (const auto& [t, r] : threads) have += (have.empty() ? "" : ", ") + std::to_string(t);
  throw_invalid_argument("profile '" + name + "' (" + origin + "): no rates for " + std::to_string(n_threads) +
                         " thread(s); calibrated: " + have);
}

namespace {

[[noreturn]] void fail(const std::string& origin, const std::string& path, const std::string& what) {
  throw_invalid_argument("profile " + origin + ": " + path + ": " + what);
}

// $.collectives.<key>: one of `choices` (the first is the default when the key is absent).
template <class E>
E parse_choice(const json& c, const char* key, std::initializer_list<std::pair<const char*, E>> choices,
               const std::string& origin) {
  const std::string v = c.value(key, std::string(choices.begin()->first));
  std::string names;
  for (const auto& [name, value] : choices) {
    if (v == name) return value;
    names += (names.empty() ? "" : " | ") + std::string(name);
  }
  fail(origin, std::string("$.collectives.") + key, "unknown " + std::string(key) + " '" + v + "' (" + names + ")");
}

// A count used as an object key ("threads": {"2": ...}): its value if the whole key is an integer
// in [1, max], else 0.
int64_t count_key(const std::string& k, int64_t max) {
  try {
    size_t used = 0;
    const long long v = std::stoll(k, &used);
    return used == k.size() && v >= 1 && v <= max ? v : 0;
  } catch (const std::exception&) {
    return 0;
  }
}

Sourced number(const json& obj, const std::string& key, const std::string& origin, const std::string& path,
               bool allow_zero = true) {
  const std::string p = path + "." + key;
  const json& v = obj.at(key);
  if (!v.is_object()) fail(origin, p, "expected {\"value\": number, \"source\": \"...\"}");
  if (!v.contains("value") || !v["value"].is_number()) fail(origin, p, "missing numeric \"value\"");
  if (!v.contains("source") || !v["source"].is_string() || v["source"].get<std::string>().empty()) {
    fail(origin, p, "missing \"source\" (every number needs one: a command, a datasheet, or \"assumption: why\")");
  }
  Sourced s{v["value"].get<double>(), v["source"].get<std::string>()};
  if (!std::isfinite(s.value) || s.value < 0 || (!allow_zero && s.value == 0)) {
    fail(origin, p, "value must be " + std::string(allow_zero ? ">= 0" : "> 0") + ", got " + v["value"].dump());
  }
  return s;
}

Sourced required(const json& obj, const std::string& key, const std::string& origin, const std::string& path,
                 bool allow_zero = false) {
  if (!obj.contains(key)) fail(origin, path + "." + key, "required field missing");
  return number(obj, key, origin, path, allow_zero);
}

std::optional<Sourced> optional(const json& obj, const std::string& key, const std::string& origin,
                                const std::string& path, bool allow_zero = true) {
  if (!obj.contains(key)) return std::nullopt;
  return number(obj, key, origin, path, allow_zero);
}

DeviceRates parse_rates(const json& j, const std::string& origin, const std::string& path) {
  if (!j.is_object()) fail(origin, path, "expected an object");
  DeviceRates r;
  r.mem_bw_gbps = required(j, "mem_bw_gbps", origin, path);
  r.peak_tflops = required(j, "peak_tflops", origin, path);
  r.op_overhead_us = required(j, "op_overhead_us", origin, path, true);
  r.matvec_efficiency = optional(j, "matvec_efficiency", origin, path, false);
  if (j.contains("matvec_gbps")) {
    const json& m = j["matvec_gbps"];
    if (!m.is_object()) fail(origin, path + ".matvec_gbps", "expected an object of weight type -> number");
    for (const auto& [type, v] : m.items()) r.matvec_gbps[type] = number(m, type, origin, path + ".matvec_gbps", false);
  }
  r.cache_bytes = optional(j, "cache_bytes", origin, path);
  if (j.contains("matvec_cached_gbps")) {
    const json& m = j["matvec_cached_gbps"];
    if (!m.is_object()) fail(origin, path + ".matvec_cached_gbps", "expected an object of weight type -> number");
    for (const auto& [type, v] : m.items()) r.matvec_cached_gbps[type] = number(m, type, origin, path + ".matvec_cached_gbps", false);
  }
  r.attention_efficiency = optional(j, "attention_efficiency", origin, path, false);
  if (j.contains("attention_efficiency_by_kv_heads")) {
    const json& m = j["attention_efficiency_by_kv_heads"];
    const std::string mp = path + ".attention_efficiency_by_kv_heads";
    if (!m.is_object() || m.empty()) fail(origin, mp, "expected an object of KV heads per device -> number");
    for (const auto& [k, v] : m.items()) {
      const auto h = static_cast<int>(count_key(k, std::numeric_limits<int>::max()));
      if (h < 1) fail(origin, mp + "." + k, "key must be a head count >= 1");
      r.attention_efficiency_by_kv_heads[h] = number(m, k, origin, mp, false);
    }
  }
  r.attention_gbps = optional(j, "attention_gbps", origin, path, false);
  r.attention_gflops = optional(j, "attention_gflops", origin, path, false);
  r.attention_overhead_us = optional(j, "attention_overhead_us", origin, path);
  r.elementwise_overhead_us = optional(j, "elementwise_overhead_us", origin, path);
  r.elementwise_ns_per_element = optional(j, "elementwise_ns_per_element", origin, path);
  r.activation_ns_per_element = optional(j, "activation_ns_per_element", origin, path);
  if (j.contains("matvec_shape_gbps")) {
    const json& m = j["matvec_shape_gbps"];
    if (!m.is_object()) fail(origin, path + ".matvec_shape_gbps", "expected an object of \"TYPE ROWSxCOLS\" -> number");
    for (const auto& [key, v] : m.items()) r.matvec_shape_gbps[key] = number(m, key, origin, path + ".matvec_shape_gbps", false);
  }
  if (j.contains("attention_shape_us")) {
    const json& m = j["attention_shape_us"];
    const std::string mp = path + ".attention_shape_us";
    if (!m.is_object()) fail(origin, mp, "expected an object of \"HEADS/KV HEADS/DIM/KV TYPE\" -> {rows: number}");
    for (const auto& [key, by_rows] : m.items()) {
      if (!by_rows.is_object() || by_rows.empty()) fail(origin, mp + "." + key, "expected an object of row count -> number");
      for (const auto& [rk, v] : by_rows.items()) {
        const int64_t rows = count_key(rk, std::numeric_limits<int64_t>::max());
        if (rows < 1) fail(origin, mp + "." + key + "." + rk, "key must be a row count >= 1");
        r.attention_shape_us[key][rows] = number(by_rows, rk, origin, mp + "." + key, false);
      }
    }
  }
  r.concurrent_factor = optional(j, "concurrent_factor", origin, path, false);
  static const char* kKnown[] = {"mem_bw_gbps",             "peak_tflops",                "op_overhead_us",
                                 "matvec_efficiency",       "matvec_gbps",                "cache_bytes",
                                 "matvec_cached_gbps",      "attention_efficiency",       "attention_gbps",
                                 "attention_gflops",        "attention_efficiency_by_kv_heads", "attention_overhead_us",
                                 "elementwise_overhead_us", "elementwise_ns_per_element", "activation_ns_per_element",
                                 "matvec_shape_gbps",       "attention_shape_us",         "concurrent_factor"};
  for (const auto& [k, v] : j.items()) {
    bool known = false;
    for (const char* n : kKnown) known = known || k == n;
    if (!known) fail(origin, path + "." + k, "unknown field");
  }
  return r;
}

Link parse_link(const json& j, const std::string& origin, const std::string& path) {
  if (!j.is_object()) fail(origin, path, "expected an object");
  Link l;
  l.latency_us = required(j, "latency_us", origin, path, true);
  l.bandwidth_gbps = required(j, "bandwidth_gbps", origin, path);
  l.fixed_us = optional(j, "fixed_us", origin, path);
  l.wait_fraction = optional(j, "wait_fraction", origin, path);
  return l;
}

json sourced(const Sourced& s) { return {{"value", s.value}, {"source", s.source}}; }

json rates_json(const DeviceRates& r) {
  json j{{"mem_bw_gbps", sourced(r.mem_bw_gbps)}, {"peak_tflops", sourced(r.peak_tflops)},
         {"op_overhead_us", sourced(r.op_overhead_us)}};
  auto opt = [&](const char* k, const std::optional<Sourced>& v) {
    if (v) j[k] = sourced(*v);
  };
  opt("matvec_efficiency", r.matvec_efficiency);
  for (const auto& [t, v] : r.matvec_gbps) j["matvec_gbps"][t] = sourced(v);
  opt("cache_bytes", r.cache_bytes);
  for (const auto& [t, v] : r.matvec_cached_gbps) j["matvec_cached_gbps"][t] = sourced(v);
  opt("attention_efficiency", r.attention_efficiency);
  for (const auto& [h, v] : r.attention_efficiency_by_kv_heads) j["attention_efficiency_by_kv_heads"][std::to_string(h)] = sourced(v);
  opt("attention_gbps", r.attention_gbps);
  opt("attention_gflops", r.attention_gflops);
  opt("attention_overhead_us", r.attention_overhead_us);
  opt("elementwise_overhead_us", r.elementwise_overhead_us);
  opt("elementwise_ns_per_element", r.elementwise_ns_per_element);
  opt("activation_ns_per_element", r.activation_ns_per_element);
  for (const auto& [k, v] : r.matvec_shape_gbps) j["matvec_shape_gbps"][k] = sourced(v);
  for (const auto& [k, by_rows] : r.attention_shape_us) {
    for (const auto& [rows, v] : by_rows) j["attention_shape_us"][k][std::to_string(rows)] = sourced(v);
  }
  opt("concurrent_factor", r.concurrent_factor);
  return j;
}

json link_json(const Link& l) {
  json j{{"latency_us", sourced(l.latency_us)}, {"bandwidth_gbps", sourced(l.bandwidth_gbps)}};
  if (l.fixed_us) j["fixed_us"] = sourced(*l.fixed_us);
  if (l.wait_fraction) j["wait_fraction"] = sourced(*l.wait_fraction);
  return j;
}

}  // namespace

HardwareProfile parse_profile(const json& j, const std::string& origin) {
  if (!j.is_object()) fail(origin, "$", "expected a JSON object");
  HardwareProfile p;
  p.origin = origin;
  if (!j.contains("name") || !j["name"].is_string()) fail(origin, "$.name", "required string missing");
  p.name = j["name"].get<std::string>();
  if (j.contains("notes")) {
    if (!j["notes"].is_string()) fail(origin, "$.notes", "expected a string");
    p.notes = j["notes"].get<std::string>();
  }
  const std::string kind = j.value("kind", std::string("devices"));
  if (kind == "devices") {
    p.kind = ProfileKind::kDevices;
    if (!j.contains("device")) fail(origin, "$.device", "required for kind \"devices\"");
    p.device = parse_rates(j["device"], origin, "$.device");
  } else if (kind == "cpu-threads") {
    p.kind = ProfileKind::kCpuThreads;
    if (!j.contains("threads") || !j["threads"].is_object() || j["threads"].empty()) {
      fail(origin, "$.threads", "required for kind \"cpu-threads\": an object of thread count -> rates");
    }
    for (const auto& [k, v] : j["threads"].items()) {
      const auto t = static_cast<int>(count_key(k, std::numeric_limits<int>::max()));
      if (t < 1) fail(origin, "$.threads." + k, "key must be a thread count >= 1");
      p.threads[t] = parse_rates(v, origin, "$.threads." + k);
    }
  } else {
    fail(origin, "$.kind", "unknown kind '" + kind + "' (devices | cpu-threads)");
  }
  if (j.contains("collectives")) {
    const json& c = j["collectives"];
    if (!c.is_object()) fail(origin, "$.collectives", "expected an object");
    p.collectives.algorithm = parse_choice<CollectiveAlgorithm>(
        c, "algorithm", {{"ring", CollectiveAlgorithm::kRing}, {"tree", CollectiveAlgorithm::kTree}}, origin);
    p.collectives.transport =
        parse_choice<Transport>(c, "transport", {{"in-process", Transport::kInProcess}, {"mpi", Transport::kMpi}}, origin);
    p.collectives.reduction = parse_choice<TpReduction>(
        c, "reduction", {{"all-reduce", TpReduction::kAllReduce}, {"chunk-all-gather", TpReduction::kChunkAllGather}},
        origin);
    if (c.contains("tp_link")) p.collectives.tp_link = parse_link(c["tp_link"], origin, "$.collectives.tp_link");
    if (c.contains("sp_link")) p.collectives.sp_link = parse_link(c["sp_link"], origin, "$.collectives.sp_link");
  }
  return p;
}

HardwareProfile load_profile(const std::string& path) {
  const std::string text = read_file(path, "hardware profile");
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw_invalid_argument("profile " + path + ": malformed JSON: " + e.what());
  }
  return parse_profile(j, path);
}

json profile_to_json(const HardwareProfile& p) {
  json j{{"name", p.name}};
  if (!p.notes.empty()) j["notes"] = p.notes;
  if (p.kind == ProfileKind::kDevices) {
    j["kind"] = "devices";
    j["device"] = rates_json(p.device);
  } else {
    j["kind"] = "cpu-threads";
    for (const auto& [t, r] : p.threads) j["threads"][std::to_string(t)] = rates_json(r);
  }
  json c{{"algorithm", p.collectives.algorithm == CollectiveAlgorithm::kRing ? "ring" : "tree"},
         {"transport", p.collectives.transport == Transport::kMpi ? "mpi" : "in-process"},
         {"reduction", p.collectives.reduction == TpReduction::kChunkAllGather ? "chunk-all-gather" : "all-reduce"}};
  if (p.collectives.tp_link) c["tp_link"] = link_json(*p.collectives.tp_link);
  if (p.collectives.sp_link) c["sp_link"] = link_json(*p.collectives.sp_link);
  j["collectives"] = c;
  return j;
}

}  // namespace alspec::perf
