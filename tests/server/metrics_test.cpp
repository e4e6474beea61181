#include "alspec/server/metrics.h"

#include <gtest/gtest.h>

namespace alspec::server {
namespace {

TEST(Metrics, RendersCountersAndCumulativeHistogram) {
  Metrics m;
  m.record_request("/v1/completions", 200, 0.003);
  m.record_request("/v1/completions", 200, 0.2);
  m.record_request("/v1/completions", 400, 100.0);  // beyond the last bound: only +Inf
  m.record_tokens(10, 5);
  m.record_tokens(3, 0);
  SpecStats s;
  s.reset(2);
  s.record(0, false, true);
  s.record(1, false, false);
  s.record(1, true, true);  // trivial: not a check
  m.record_speculation(AttentionMode::kSimulate, s);
  m.record_cancelled();
  const std::string t = m.render({{"alspec_queue_depth", "Waiting.", 3}});
  EXPECT_NE(t.find("alspec_requests_total{endpoint=\"/v1/completions\",status=\"200\"} 2\n"), std::string::npos) << t;
  EXPECT_NE(t.find("alspec_requests_total{endpoint=\"/v1/completions\",status=\"400\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("alspec_request_duration_seconds_bucket{endpoint=\"/v1/completions\",le=\"0.005\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("alspec_request_duration_seconds_bucket{endpoint=\"/v1/completions\",le=\"0.25\"} 2\n"), std::string::npos);
  EXPECT_NE(t.find("alspec_request_duration_seconds_bucket{endpoint=\"/v1/completions\",le=\"60\"} 2\n"), std::string::npos);
  EXPECT_NE(t.find("alspec_request_duration_seconds_bucket{endpoint=\"/v1/completions\",le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(t.find("alspec_request_duration_seconds_count{endpoint=\"/v1/completions\"} 3\n"), std::string::npos);
  EXPECT_NE(t.find("alspec_prompt_tokens_total 13\n"), std::string::npos);
  EXPECT_NE(t.find("alspec_generated_tokens_total 5\n"), std::string::npos);
  EXPECT_NE(t.find("alspec_speculation_checks_total{mode=\"simulate\"} 2\n"), std::string::npos);
  EXPECT_NE(t.find("alspec_speculation_hits_total{mode=\"simulate\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("alspec_cancelled_total 1\n"), std::string::npos);
  EXPECT_NE(t.find("# TYPE alspec_queue_depth gauge\nalspec_queue_depth 3\n"), std::string::npos);
}

}  // namespace
}  // namespace alspec::server
