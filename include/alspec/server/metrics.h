// Server counters and histograms, rendered in the Prometheus text exposition format (0.0.4).
// Thread-safe; label values are bounded (known endpoints, status codes, attention modes).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "alspec/spec/spec_config.h"
#include "alspec/spec/spec_stats.h"

namespace alspec::server {

class Metrics {
 public:
  // Upper bounds (seconds) of the request latency histogram buckets; +Inf is implicit.
  static constexpr std::array<double, 13> kLatencyBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                            1.0,   2.5,  5.0,   10.0, 30.0, 60.0};

  void record_request(const std::string& endpoint, int status, double seconds);
  void record_tokens(int64_t prompt_tokens, int64_t generated_tokens);
  void record_speculation(AttentionMode mode, const SpecStats& stats);
  void record_cancelled();

  // `gauges`: current values such as in-flight and queued requests (name, help, value);
  // `counters`: totals kept elsewhere (the batch scheduler's steps), same shape.
  using Sample = std::tuple<std::string, std::string, double>;
  std::string render(const std::vector<Sample>& gauges, const std::vector<Sample>& counters = {}) const;

 private:
  struct Histogram {
    std::array<uint64_t, kLatencyBuckets.size()> buckets{};  // non-cumulative counts
    uint64_t count = 0;
    double sum = 0;
  };
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::map<std::string, Histogram> latency_;
  int64_t prompt_tokens_ = 0;
  int64_t generated_tokens_ = 0;
  int64_t cancelled_ = 0;
  std::map<std::string, std::pair<int64_t, int64_t>> speculation_;  // mode -> (checks, hits)
};

}  // namespace alspec::server
