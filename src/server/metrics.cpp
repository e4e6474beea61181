#include "alspec/server/metrics.h"

#include <cstdio>
#include <sstream>

namespace alspec::server {

void Metrics::record_request(const std::string& endpoint, int status, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{endpoint, status}];
  Histogram& h = latency_[endpoint];
  size_t b = 0;
  while (b < kLatencyBuckets.size() && seconds > kLatencyBuckets[b]) ++b;
  if (b < kLatencyBuckets.size()) ++h.buckets[b];
  ++h.count;
  h.sum += seconds;
}

void Metrics::record_tokens(int64_t prompt_tokens, int64_t generated_tokens) {
  std::lock_guard<std::mutex> lock(mu_);
  prompt_tokens_ += prompt_tokens;
  generated_tokens_ += generated_tokens;
}

void Metrics::record_speculation(AttentionMode mode, const SpecStats& stats) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& s = speculation_[attention_mode_name(mode)];
  s.first += stats.checks();
  s.second += stats.hits();
}

void Metrics::record_cancelled() {
  std::lock_guard<std::mutex> lock(mu_);
  ++cancelled_;
}

namespace {

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string bound(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

std::string Metrics::render(const std::vector<Sample>& gauges, const std::vector<Sample>& counters) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::ostringstream o;
  o << "# HELP alspec_requests_total HTTP requests answered, by endpoint and status code.\n"
       "# TYPE alspec_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    o << "alspec_requests_total{endpoint=\"" << key.first << "\",status=\"" << key.second << "\"} " << n << "\n";
  }
  o << "# HELP alspec_request_duration_seconds Time from request start to the last byte of the response.\n"
       "# TYPE alspec_request_duration_seconds histogram\n";
  for (const auto& [endpoint, h] : latency_) {
    uint64_t cum = 0;
    for (size_t b = 0; b < kLatencyBuckets.size(); ++b) {
      cum += h.buckets[b];
      o << "alspec_request_duration_seconds_bucket{endpoint=\"" << endpoint << "\",le=\"" << bound(kLatencyBuckets[b])
        << "\"} " << cum << "\n";
    }
    o << "alspec_request_duration_seconds_bucket{endpoint=\"" << endpoint << "\",le=\"+Inf\"} " << h.count << "\n";
    o << "alspec_request_duration_seconds_sum{endpoint=\"" << endpoint << "\"} " << number(h.sum) << "\n";
    o << "alspec_request_duration_seconds_count{endpoint=\"" << endpoint << "\"} " << h.count << "\n";
  }
  o << "# HELP alspec_prompt_tokens_total Prompt tokens processed.\n# TYPE alspec_prompt_tokens_total counter\n"
    << "alspec_prompt_tokens_total " << prompt_tokens_ << "\n";
  o << "# HELP alspec_generated_tokens_total Tokens generated.\n# TYPE alspec_generated_tokens_total counter\n"
    << "alspec_generated_tokens_total " << generated_tokens_ << "\n";
  o << "# HELP alspec_cancelled_total Generations stopped because the client went away.\n"
       "# TYPE alspec_cancelled_total counter\n"
    << "alspec_cancelled_total " << cancelled_ << "\n";
  o << "# HELP alspec_speculation_checks_total Verified non-trivial speculative attention calls, by mode.\n"
       "# TYPE alspec_speculation_checks_total counter\n";
  for (const auto& [mode, s] : speculation_) o << "alspec_speculation_checks_total{mode=\"" << mode << "\"} " << s.first << "\n";
  o << "# HELP alspec_speculation_hits_total Accepted speculations, by mode.\n"
       "# TYPE alspec_speculation_hits_total counter\n";
  for (const auto& [mode, s] : speculation_) o << "alspec_speculation_hits_total{mode=\"" << mode << "\"} " << s.second << "\n";
  for (const auto& [name, help, value] : gauges) {
    o << "# HELP " << name << " " << help << "\n# TYPE " << name << " gauge\n" << name << " " << number(value) << "\n";
  }
  for (const auto& [name, help, value] : counters) {
    o << "# HELP " << name << " " << help << "\n# TYPE " << name << " counter\n" << name << " " << number(value) << "\n";
  }
  return o.str();
}

}  // namespace alspec::server
