// Decision sources: hit rates, generate --trace lines, eval items.jsonl.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "alspec/core/error.h"
#include "alspec/perf/decisions.h"

namespace alspec::perf {
namespace {

std::string write_temp(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(Decisions, HitRateIsReproducibleAndNearTheRate) {
  const Decisions d = Decisions::from_hit_rate(0.3, 7);
  int hits = 0;
  for (int s = 0; s < 1000; ++s) {
    for (int l = 0; l < 32; ++l) {
      const bool a = d.accept(s, l, 32);
      EXPECT_EQ(a, Decisions::from_hit_rate(0.3, 7).accept(s, l, 32));
      hits += a ? 1 : 0;
    }
  }
  EXPECT_NEAR(hits / 32000.0, 0.3, 0.01);
  EXPECT_THROW(Decisions::from_hit_rate(1.5, 1), Error);
}

TEST(Decisions, ReplaysGenerateTrace) {
  // Two steps of a 3-layer model as `alspec generate --trace` prints them; a trivial call and
  // unrelated lines are skipped.
  const std::string path = write_temp("gen_trace.txt",
                                      "Once upon a time\n"
                                      "trace step=0 layer=0 sender=0 receiver=1 priority=0 dist2=1 norm2=2 rel=0.7 accept=1\n"
                                      "trace step=0 layer=1 sender=1 receiver=0 priority=2 dist2=1 norm2=2 rel=0.7 accept=0\n"
                                      "trace step=0 layer=2 sender=1 receiver=0 priority=0 dist2=0 norm2=2 rel=0 accept=1 trivial\n"
                                      "trace step=1 layer=0 sender=0 receiver=1 priority=2 dist2=1 norm2=2 rel=0.7 accept=0\n"
                                      "trace step=1 layer=1 sender=0 receiver=1 priority=0 dist2=1 norm2=2 rel=0.7 accept=1\n"
                                      "trace step=1 layer=2 sender=1 receiver=0 priority=0 dist2=1 norm2=2 rel=0.7 accept=1\n");
  const Decisions d = Decisions::load(path, "", 1);
  EXPECT_EQ(d.trace_layers(), 3);
  EXPECT_TRUE(d.accept(0, 0, 3));
  EXPECT_FALSE(d.accept(0, 1, 3));
  EXPECT_FALSE(d.accept(1, 0, 3));
  EXPECT_TRUE(d.accept(1, 1, 3));
  EXPECT_TRUE(d.accept(1, 2, 3));
  EXPECT_TRUE(d.accept(2, 0, 3));   // cycles: step 2 replays step 0
  EXPECT_TRUE(d.accept(0, 2, 3));   // trivial in the trace: drawn from layer 2's rate (1 of 1)
  EXPECT_NEAR(d.mean_hit_rate(), (0.5 + 0.5 + 1.0) / 3, 1e-12);
  // A 6-layer model reads trace layer floor(l * 3 / 6).
  EXPECT_FALSE(d.accept(0, 2, 6));
  EXPECT_FALSE(d.accept(0, 3, 6));
  EXPECT_TRUE(d.accept(0, 1, 6));
}

TEST(Decisions, EvalItemsGivePerLayerRates) {
  const std::string path = write_temp(
      "items.jsonl",
      "{\"header\":{\"ctx_size\":2048}}\n"
      "{\"config\":\"exact\",\"item\":0,\"record\":{\"stats\":{\"checks\":[0,0],\"hits\":[0,0],\"trivial\":[0,0]}}}\n"
      "{\"config\":\"simulate/S128/l0.1\",\"item\":0,\"record\":{\"stats\":{\"checks\":[10,10],\"hits\":[10,0],\"trivial\":[0,0]}}}\n"
      "{\"config\":\"simulate/S128/l0.1\",\"item\":1,\"record\":{\"stats\":{\"checks\":[10,10],\"hits\":[10,2],\"trivial\":[0,0]}}}\n"
      "{\"config\":\"static/S128\",\"item\":1,\"record\":{\"stats\":{\"checks\":[5,5],\"hits\":[5,5],\"trivial\":[0,0]}}}\n");
  try {
    Decisions::load(path, "", 1);
    FAIL() << "two configs with checks need --trace-config";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("simulate/S128/l0.1, static/S128"), std::string::npos) << e.what();
  }
  const Decisions d = Decisions::load(path, "simulate/S128/l0.1", 3);
  EXPECT_EQ(d.trace_layers(), 2);
  EXPECT_NEAR(d.mean_hit_rate(), (1.0 + 0.1) / 2, 1e-12);
  for (int s = 0; s < 50; ++s) EXPECT_TRUE(d.accept(s, 0, 2));  // layer 0 always accepted
  EXPECT_THROW(Decisions::load(path, "simulate/S64/l0.1", 1), Error);
}

TEST(Decisions, FileErrors) {
  try {
    Decisions::load("/nonexistent/trace.txt", "", 1);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
  }
  const std::string empty = write_temp("empty_trace.txt", "no decisions here\n");
  try {
    Decisions::load(empty, "", 1);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("no decisions"), std::string::npos) << e.what();
  }
  const std::string bad = write_temp("bad_trace.txt", "trace step=0 layer=0 accept=3\n");
  EXPECT_THROW(Decisions::load(bad, "", 1), Error);
}

}  // namespace
}  // namespace alspec::perf
