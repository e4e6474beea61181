#include "alspec/perf/decisions.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "alspec/core/error.h"

namespace alspec::perf {

namespace {

// SplitMix64 of (seed, step, layer): a reproducible uniform number in [0, 1) on every platform.
double uniform(uint64_t seed, int64_t step, int layer) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ull ^ (static_cast<uint64_t>(step) * 0xBF58476D1CE4E5B9ull) ^
               (static_cast<uint64_t>(layer) * 0x94D049BB133111EBull);
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

void check_rate(double h, const std::string& what) {
  if (!(h >= 0.0 && h <= 1.0)) throw_invalid_argument(what + " must be in [0, 1], got " + std::to_string(h));
}

// Value of `key=` in a whitespace-separated line, or nullopt.
bool field(const std::string& line, const std::string& key, std::string& out) {
  std::istringstream is(line);
  std::string tok;
  while (is >> tok) {
    if (tok.rfind(key + "=", 0) == 0) {
      out = tok.substr(key.size() + 1);
      return true;
    }
  }
  return false;
}

bool has_token(const std::string& line, const std::string& t) {
  std::istringstream is(line);
  std::string tok;
  while (is >> tok) {
    if (tok == t) return true;
  }
  return false;
}

}  // namespace

Decisions Decisions::from_hit_rate(double h, uint64_t seed) {
  check_rate(h, "--hit-rate");
  Decisions d;
  d.hit_rate_ = h;
  d.seed_ = seed;
  d.description_ = "hit rate " + std::to_string(h) + ", seed " + std::to_string(seed);
  return d;
}

Decisions Decisions::from_layer_rates(std::vector<double> rates, uint64_t seed, std::string description) {
  if (rates.empty()) throw_invalid_argument("per-layer hit rates: none given");
  for (double r : rates) check_rate(r, "per-layer hit rate");
  Decisions d;
  d.rates_ = std::move(rates);
  d.seed_ = seed;
  d.description_ = std::move(description);
  return d;
}

Decisions Decisions::from_sequence(std::vector<std::vector<int8_t>> steps, uint64_t seed, std::string description) {
  if (steps.empty()) throw_invalid_argument("decision trace: no steps");
  size_t n = 0;
  for (const auto& s : steps) n = std::max(n, s.size());
  std::vector<double> hits(n, 0), seen(n, 0);
  for (auto& s : steps) {
    s.resize(n, -1);
    for (size_t l = 0; l < n; ++l) {
      if (s[l] >= 0) {
        hits[l] += s[l];
        seen[l] += 1;
      }
    }
  }
  double all_hits = 0, all_seen = 0;
  for (size_t l = 0; l < n; ++l) {
    all_hits += hits[l];
    all_seen += seen[l];
  }
  if (all_seen == 0) throw_invalid_argument("decision trace '" + description + "': every call is trivial or missing");
  Decisions d;
  d.rates_.resize(n);
  for (size_t l = 0; l < n; ++l) d.rates_[l] = seen[l] > 0 ? hits[l] / seen[l] : all_hits / all_seen;
  d.steps_ = std::move(steps);
  d.seed_ = seed;
  d.description_ = std::move(description);
  return d;
}

Decisions Decisions::load(const std::string& path, const std::string& config, uint64_t seed) {
  std::ifstream f(path);
  if (!f) throw Error(ErrorKind::kIo, path + ": cannot open hit trace");
  std::string line;
  std::vector<std::vector<int8_t>> steps;
  std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> by_config;  // checks, hits
  int64_t cur_step = -1;
  int last_layer = -1;
  int64_t lines = 0;
  while (std::getline(f, line)) {
    ++lines;
    if (!line.empty() && line[0] == '{') {
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line);
      } catch (const nlohmann::json::parse_error& e) {
        throw_invalid_argument(path + ":" + std::to_string(lines) + ": malformed JSON line: " + e.what());
      }
      if (!j.contains("record") || !j.contains("config")) continue;
      const auto& st = j["record"].value("stats", nlohmann::json::object());
      if (!st.contains("checks") || !st.contains("hits")) continue;
      auto& [checks, hits] = by_config[j["config"].get<std::string>()];
      const auto& c = st["checks"];
      const auto& h = st["hits"];
      if (!c.is_array() || !h.is_array() || c.size() != h.size()) {
        throw_invalid_argument(path + ":" + std::to_string(lines) + ": stats.checks and stats.hits must be arrays of one length");
      }
      checks.resize(std::max(checks.size(), c.size()), 0);
      hits.resize(checks.size(), 0);
      for (size_t l = 0; l < c.size(); ++l) {
        checks[l] += c[l].get<double>();
        hits[l] += h[l].get<double>();
      }
      continue;
    }
    std::string layer_s, accept_s, step_s;
    if (!field(line, "layer", layer_s) || !field(line, "accept", accept_s)) continue;
    int layer = 0, acc = 0;
    try {
      layer = std::stoi(layer_s);
      acc = std::stoi(accept_s);
    } catch (const std::exception&) {
      throw_invalid_argument(path + ":" + std::to_string(lines) + ": bad layer= or accept= value");
    }
    if (layer < 0 || (acc != 0 && acc != 1)) throw_invalid_argument(path + ":" + std::to_string(lines) + ": layer must be >= 0 and accept 0 or 1");
    int64_t step = -1;
    if (field(line, "step", step_s)) {
      try {
        step = std::stoll(step_s);
      } catch (const std::exception&) {
        throw_invalid_argument(path + ":" + std::to_string(lines) + ": bad step= value");
      }
    }
    const bool new_step = step >= 0 ? step != cur_step : layer <= last_layer;
    if (new_step || steps.empty()) {
      steps.emplace_back();
      cur_step = step;
    }
    last_layer = layer;
    auto& s = steps.back();
    if (s.size() <= static_cast<size_t>(layer)) s.resize(static_cast<size_t>(layer) + 1, -1);
    s[static_cast<size_t>(layer)] = has_token(line, "trivial") ? -1 : static_cast<int8_t>(acc);
  }
  if (!steps.empty()) return from_sequence(std::move(steps), seed, path + " (decision trace)");
  std::vector<std::string> with_checks;
  for (const auto& [name, ch] : by_config) {
    double n = 0;
    for (double c : ch.first) n += c;
    if (n > 0) with_checks.push_back(name);
  }
  if (with_checks.empty()) throw_invalid_argument(path + ": no decisions (no `layer=... accept=...` lines, no eval records with checks)");
  std::string chosen = config;
  if (chosen.empty()) {
    if (with_checks.size() > 1) {
      std::string all;
      for (const auto& n : with_checks) all += (all.empty() ? "" : ", ") + n;
      throw_invalid_argument(path + ": several eval configs have checks; choose one with --trace-config (" + all + ")");
    }
    chosen = with_checks.front();
  }
  const auto it = by_config.find(chosen);
  if (it == by_config.end()) throw_invalid_argument(path + ": no eval records with config '" + chosen + "'");
  const auto& [checks, hits] = it->second;
  std::vector<double> rates(checks.size());
  double tc = 0, th = 0;
  for (size_t l = 0; l < checks.size(); ++l) {
    tc += checks[l];
    th += hits[l];
  }
  if (tc == 0) throw_invalid_argument(path + ": config '" + chosen + "' has no checks");
  for (size_t l = 0; l < checks.size(); ++l) rates[l] = checks[l] > 0 ? hits[l] / checks[l] : th / tc;
  return from_layer_rates(std::move(rates), seed, path + " (eval per-layer rates, " + chosen + ")");
}

bool Decisions::accept(int64_t step, int layer, int n_layers) const {
  if (rates_.empty()) return uniform(seed_, step, layer) < hit_rate_;
  const int n_trace = static_cast<int>(rates_.size());
  const int tl = n_layers == n_trace ? layer : static_cast<int>(static_cast<int64_t>(layer) * n_trace / n_layers);
  if (!steps_.empty()) {
    const int8_t v = steps_[static_cast<size_t>(step % static_cast<int64_t>(steps_.size()))][static_cast<size_t>(tl)];
    if (v >= 0) return v == 1;
  }
  return uniform(seed_, step, layer) < rates_[static_cast<size_t>(tl)];
}

double Decisions::mean_hit_rate() const {
  if (rates_.empty()) return hit_rate_;
  double s = 0;
  for (double r : rates_) s += r;
  return s / static_cast<double>(rates_.size());
}

Decisions Decisions::with_hit_rate(double h) const { return from_hit_rate(h, seed_); }

}  // namespace alspec::perf
