// In-process server on a free loopback port, driven with httplib::Client: the HTTP numbers are
// the library's numbers (echo log-probabilities == score_tokens, greedy text == generate).
#include "alspec/server/server.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "alspec/core/error.h"
#include "alspec/spec/generate.h"
#include "alspec/spec/scoring.h"
#include "alspec/tokenizer/tokenizer.h"
#include "server/server_test_model.h"

namespace alspec::server {
namespace {

using nlohmann::json;

class InProcessServer : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions o;
    o.port = 0;
    o.parallel = 2;
    o.engine.threads = 1;
    server_ = std::make_unique<Server>(testing::stories260k(), o);
    port_ = server_->bind();
    thread_ = std::thread([this] { server_->run(); });
  }
  void TearDown() override {
    server_->stop();
    thread_.join();
  }
  json post(const std::string& path, const json& body, int expect_status = 200) {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(60);
    auto r = c.Post(path.c_str(), body.dump(), "application/json");
    EXPECT_TRUE(r);
    if (!r) return {};
    EXPECT_EQ(r->status, expect_status) << r->body;
    return json::parse(r->body);
  }
  std::unique_ptr<Server> server_;
  int port_ = 0;
  std::thread thread_;
};

TEST_F(InProcessServer, EchoLogprobsEqualScoreTokens) {
  const Model& m = testing::stories260k();
  const auto ids = m.tokenizer().encode("Once upon a time, there was a little dog", true);
  const json r = post("/v1/completions", {{"prompt", ids}, {"max_tokens", 0}, {"echo", true}, {"logprobs", 2}});
  const json& lp = r["choices"][0]["logprobs"];
  EngineOptions o;
  o.threads = 1;
  Engine engine(m, o);
  ScoreOptions so;
  so.prefill_until = 1;  // all decode steps: exact mode gives the same numbers as batched prefill
  so.top_k = 2;
  const auto scores = score_tokens(engine, ids, so);
  ASSERT_EQ(lp["token_logprobs"].size(), ids.size());
  for (size_t i = 1; i < ids.size(); ++i) {
    EXPECT_EQ(lp["token_logprobs"][i].get<double>(), scores[i - 1].logprob) << i;
    EXPECT_EQ(lp["top_logprobs"][i].size(), 2u);
  }
  EXPECT_EQ(r["usage"]["prompt_tokens"].get<size_t>(), ids.size());
}

TEST_F(InProcessServer, GreedyCompletionEqualsGenerate) {
  const Model& m = testing::stories260k();
  EngineOptions o;
  o.threads = 1;
  Engine engine(m, o);
  GenerateRequest g;
  g.prompt = m.tokenizer().encode("The little cat", true);
  g.n_predict = 30;
  const GenerateResult ref = generate(engine, g);
  const json r = post("/v1/completions", {{"prompt", "The little cat"}, {"max_tokens", 30}, {"temperature", 0}});
  EXPECT_EQ(r["choices"][0]["text"].get<std::string>(), ref.text);
  EXPECT_EQ(r["usage"]["completion_tokens"].get<size_t>(), ref.tokens.size());
}

TEST_F(InProcessServer, ErrorsAreOpenAiShaped) {
  const json e = post("/v1/completions", {{"prompt", "x"}, {"n", 1000}}, 400);
  EXPECT_EQ(e["error"]["type"], "invalid_request_error");
  EXPECT_EQ(e["error"]["param"], "n");
  EXPECT_TRUE(e["error"]["message"].is_string());
  EXPECT_TRUE(e["error"].contains("code"));
  const json u = post("/v1/completions", {{"prompt", "x"}, {"model", "nope"}}, 404);
  EXPECT_EQ(u["error"]["code"], "model_not_found");
}

TEST_F(InProcessServer, ModelsRetrieveById) {
  httplib::Client c("127.0.0.1", port_);
  const auto list = c.Get("/v1/models");
  ASSERT_TRUE(list);
  const json model = json::parse(list->body)["data"][0];
  const auto one = c.Get(("/v1/models/" + model["id"].get<std::string>()).c_str());
  ASSERT_TRUE(one);
  EXPECT_EQ(one->status, 200);
  EXPECT_EQ(json::parse(one->body), model);
  const auto missing = c.Get("/v1/models/no-such-model");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(json::parse(missing->body)["error"]["code"], "model_not_found");
}

TEST_F(InProcessServer, SecondServerOnTheSamePortFailsToBind) {
  ServerOptions o;
  o.port = port_;
  o.engine.threads = 1;
  Server second(testing::stories260k(), o);
  try {
    second.bind();
    ADD_FAILURE() << "a second server bound port " << port_;
  } catch (const alspec::Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot bind (address in use?)"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace alspec::server
