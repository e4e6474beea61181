#include "alspec/server/completion_request.h"

#include <gtest/gtest.h>

#include "alspec/server/api_error.h"
#include "alspec/tokenizer/tokenizer.h"
#include "server/server_test_model.h"

namespace alspec::server {
namespace {

using nlohmann::json;

RequestLimits limits() {
  RequestLimits l;
  l.ctx_size = 512;
  l.model_names = {"stories260K"};
  return l;
}

const Tokenizer& tok() { return testing::stories260k().tokenizer(); }

CompletionRequest parse(const json& body) { return parse_completion_request(body, tok(), limits()); }

// Status and the field the error names.
std::pair<int, std::string> error_of(const json& body) {
  try {
    parse(body);
  } catch (const ApiError& e) {
    EXPECT_FALSE(std::string(e.what()).empty());
    return {e.status(), e.param()};
  }
  return {0, ""};
}

TEST(CompletionRequest, DefaultsFollowTheOpenAiApi) {
  const auto r = parse({{"prompt", "Once upon a time"}});
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_EQ(r.prompts[0], tok().encode("Once upon a time", true, true));
  EXPECT_EQ(r.max_tokens, 16);
  EXPECT_EQ(r.sampling.temperature, 1.0f);
  EXPECT_EQ(r.sampling.top_p, 1.0f);
  EXPECT_EQ(r.n, 1);
  EXPECT_FALSE(r.logprobs.has_value());
  EXPECT_FALSE(r.echo);
  EXPECT_FALSE(r.stream);
}

TEST(CompletionRequest, EveryField) {
  const auto r = parse({{"model", "stories260K"}, {"prompt", json::array({json::array({1, 2, 3}), "Hi"})},
                        {"max_tokens", 0}, {"temperature", 0.5}, {"top_p", 0.9}, {"top_k", 40}, {"min_p", 0.05},
                        {"seed", 42}, {"stop", json::array({"a", "b"})}, {"n", 3}, {"logprobs", 5}, {"echo", true},
                        {"stream", true}, {"ignore_eos", true},
                        {"alspec", {{"attention", "simulate"}, {"lambda", 0.25}, {"spec_chunk", 32}, {"echo_prefill", 4}}}});
  ASSERT_EQ(r.prompts.size(), 2u);
  EXPECT_EQ(r.prompts[0], (std::vector<int32_t>{1, 2, 3}));  // token ids are used as given (no BOS added)
  EXPECT_EQ(r.prompts[1].front(), tok().bos_id());
  EXPECT_EQ(r.max_tokens, 0);
  EXPECT_FLOAT_EQ(r.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r.sampling.top_p, 0.9f);
  EXPECT_EQ(r.sampling.top_k, 40);
  EXPECT_FLOAT_EQ(r.sampling.min_p, 0.05f);
  EXPECT_EQ(r.sampling.seed, 42u);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.n, 3);
  EXPECT_EQ(r.logprobs, 5);
  EXPECT_TRUE(r.echo && r.stream && r.ignore_eos);
  const SpecConfig spec = r.alspec.apply(SpecConfig{});
  EXPECT_EQ(spec.mode, AttentionMode::kSimulate);
  EXPECT_FLOAT_EQ(spec.lambda, 0.25f);
  EXPECT_EQ(spec.spec_chunk, 32);
  EXPECT_EQ(r.alspec.echo_prefill, 4);
  // Overrides left out keep the server defaults.
  SpecConfig d;
  d.mode = AttentionMode::kStatic;
  d.lambda = 0.7f;
  const SpecConfig partial = parse({{"prompt", "x"}, {"alspec", {{"spec_chunk", 16}}}}).alspec.apply(d);
  EXPECT_EQ(partial.mode, AttentionMode::kStatic);
  EXPECT_FLOAT_EQ(partial.lambda, 0.7f);
  EXPECT_EQ(partial.spec_chunk, 16);
}

TEST(CompletionRequest, IntegralFloatsAreIntegers) {
  EXPECT_EQ(parse({{"prompt", "x"}, {"max_tokens", 8.0}}).max_tokens, 8);
  EXPECT_EQ(error_of({{"prompt", "x"}, {"max_tokens", 8.5}}).first, 400);
}

TEST(CompletionRequest, BadInputNamesTheField) {
  const std::vector<std::pair<json, std::pair<int, std::string>>> cases = {
      {{{"prompt", "x"}, {"model", "other"}}, {404, "model"}},
      {{{"prompt", "x"}, {"max_tokens", -1}}, {400, "max_tokens"}},
      {{{"prompt", "x"}, {"max_tokens", 513}}, {400, "max_tokens"}},
      {{{"prompt", "x"}, {"max_tokens", 1e300}}, {400, "max_tokens"}},
      {{{"prompt", "x"}, {"n", 17}}, {400, "n"}},
      {{{"prompt", "x"}, {"logprobs", 21}}, {400, "logprobs"}},
      {{{"prompt", "x"}, {"logprobs", -1}}, {400, "logprobs"}},
      {{{"prompt", "x"}, {"temperature", -0.5}}, {400, "temperature"}},
      {{{"prompt", "x"}, {"top_p", 0}}, {400, "top_p"}},
      {{{"prompt", "x"}, {"seed", "1"}}, {400, "seed"}},
      {{{"prompt", "x"}, {"stop", json::array({1})}}, {400, "stop"}},
      {{{"prompt", json::array({0, 512})}}, {400, "prompt"}},
      {{{"prompt", json::array({1, 1.5})}}, {400, "prompt"}},
      {{{"prompt", json::array({json::array({1}), 3})}}, {400, "prompt"}},
      {{{"prompt", std::vector<int>(513, 1)}}, {400, "prompt"}},
      {{{"prompt", json::array()}}, {400, "prompt"}},
      {{{"prompt", json::object()}}, {400, "prompt"}},
      {{{"prompt", "x"}, {"alspec", {{"spec_chunk", -1}}}}, {400, "spec_chunk"}},
      {{{"prompt", "x"}, {"alspec", {{"attention", 3}}}}, {400, "alspec.attention"}},
  };
  for (const auto& [body, expected] : cases) EXPECT_EQ(error_of(body), expected) << body.dump();
  // prompts x n is bounded too.
  EXPECT_EQ(error_of({{"prompt", std::vector<std::string>(100, "x")}, {"n", 3}}).second, "n");
}

TEST(CompletionRequest, ChatMessagesBecomeOnePromptWithTheFormatsStops) {
  const json body = {{"messages", json::array({{{"role", "user"}, {"content", "Hi"}}})}, {"max_completion_tokens", 5}};
  const auto r = parse_chat_request(body, tok(), limits(), ChatFormat::kPlain);
  EXPECT_TRUE(r.chat);
  EXPECT_EQ(r.max_tokens, 5);
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_EQ(r.prompts[0], tok().encode("User: Hi\nAssistant:", true, true));
  EXPECT_EQ(r.stop, std::vector<std::string>{"\nUser:"});
  EXPECT_THROW(parse_chat_request({{"messages", json::array()}}, tok(), limits(), ChatFormat::kPlain), ApiError);
  EXPECT_THROW(parse_chat_request({{"messages", json::array({{{"role", "user"}, {"content", 5}}})}}, tok(), limits(),
                                  ChatFormat::kPlain),
               ApiError);
}

TEST(CompletionRequest, UnsupportedOpenAiFieldsAreRefusedNotIgnored) {
  const json refused[] = {
      {{"prompt", "x"}, {"logit_bias", {{"50", 5}}}},
      {{"prompt", "x"}, {"presence_penalty", 0.5}},
      {{"prompt", "x"}, {"frequency_penalty", -1}},
      {{"prompt", "x"}, {"response_format", {{"type", "json_object"}}}},
      {{"prompt", "x"}, {"response_format", {{"type", "json_schema"}, {"json_schema", json::object()}}}},
      {{"prompt", "x"}, {"tools", json::array({{{"type", "function"}}})}},
      {{"prompt", "x"}, {"tool_choice", "auto"}},
      {{"prompt", "x"}, {"functions", json::array({json::object()})}},
      {{"prompt", "x"}, {"best_of", 3}},
      {{"prompt", "x"}, {"suffix", "end"}},
  };
  for (const auto& body : refused) {
    try {
      parse(body);
      ADD_FAILURE() << "accepted " << body.dump();
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status(), 400) << body.dump();
      EXPECT_EQ(e.code(), "unsupported_parameter") << body.dump();
      EXPECT_NE(std::string(e.what()).find("not supported"), std::string::npos) << e.what();
    }
  }
  // Their neutral values change nothing and are accepted (clients often send them).
  const json neutral = {{"prompt", "x"},          {"logit_bias", json::object()},
                        {"presence_penalty", 0},  {"frequency_penalty", 0.0},
                        {"response_format", {{"type", "text"}}},
                        {"tools", json::array()}, {"tool_choice", "none"},
                        {"best_of", 1}};
  EXPECT_NO_THROW(parse(neutral));
  EXPECT_EQ(error_of({{"prompt", "x"}, {"logit_bias", "no"}}), std::make_pair(400, std::string("logit_bias")));
}

TEST(CompletionRequest, ChatRolesAndContentAreChecked) {
  auto chat = [](const json& messages) { return parse_chat_request({{"messages", messages}}, tok(), limits(), ChatFormat::kPlain); };
  EXPECT_NO_THROW(chat(json::array({{{"role", "system"}, {"content", "Be brief."}},
                                    {{"role", "user"}, {"content", "Hi"}},
                                    {{"role", "assistant"}, {"content", "Hello"}},
                                    {{"role", "user"}, {"content", "Bye"}}})));
  // "developer" is the system role under its newer name.
  EXPECT_EQ(chat(json::array({{{"role", "developer"}, {"content", "Be brief."}}, {{"role", "user"}, {"content", "Hi"}}})).prompts,
            chat(json::array({{{"role", "system"}, {"content", "Be brief."}}, {{"role", "user"}, {"content", "Hi"}}})).prompts);
  for (const json& bad : {json::array({{{"role", "wizard"}, {"content", "Hi"}}}),
                          json::array({{{"role", "tool"}, {"content", "42"}}}),
                          json::array({{{"role", "user"}, {"content", nullptr}}}),
                          json::array({{{"role", "user"}}})}) {
    try {
      chat(bad);
      ADD_FAILURE() << "accepted " << bad.dump();
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status(), 400) << bad.dump();
      EXPECT_EQ(e.param(), "messages") << bad.dump();
    }
  }
}

TEST(CompletionRequest, JsonBodyMustBeAnObject) {
  EXPECT_NO_THROW(parse_json_body("{\"a\": 1}"));
  for (const char* bad : {"", "{", "[1]", "\"x\"", "{\"a\": 1} trailing"}) {
    try {
      parse_json_body(bad);
      ADD_FAILURE() << bad;
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status(), 400);
      EXPECT_EQ(e.code(), "invalid_json");
    }
  }
}

}  // namespace
}  // namespace alspec::server
