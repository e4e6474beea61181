#include "alspec/server/completion_request.h"

#include <cmath>
#include <limits>

#include "alspec/core/error.h"
#include "alspec/server/api_error.h"
#include "alspec/tokenizer/tokenizer.h"

namespace alspec::server {

using nlohmann::json;

json parse_json_body(const std::string& body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw ApiError(400, "invalid_request_error", "invalid_json", "the request body is not valid JSON");
  if (!j.is_object()) throw ApiError(400, "invalid_request_error", "invalid_json", "the request body must be a JSON object");
  return j;
}

namespace {

const char* type_name(const json& v) { return v.type_name(); }

bool present(const json& body, const char* key) {
  const auto it = body.find(key);
  return it != body.end() && !it->is_null();
}

int64_t get_int(const json& body, const char* key, int64_t lo, int64_t hi, int64_t dflt) {
  if (!present(body, key)) return dflt;
  const json& v = body.at(key);
  if (!v.is_number_integer() && !v.is_number_unsigned()) {
    // 16.0 from clients that serialise every number as float is accepted.
    if (!(v.is_number_float() && std::isfinite(v.get<double>()) && std::floor(v.get<double>()) == v.get<double>())) {
      throw_bad_field(key, std::string("expected an integer, got ") + type_name(v), "invalid_type");
    }
  }
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    throw_bad_field(key, "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  const double d = v.get<double>();
  if (d < static_cast<double>(lo) || d > static_cast<double>(hi)) {
    throw_bad_field(key, "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  return v.is_number_float() ? static_cast<int64_t>(d) : v.get<int64_t>();
}

double get_number(const json& body, const char* key, double lo, double hi, double dflt) {
  if (!present(body, key)) return dflt;
  const json& v = body.at(key);
  if (!v.is_number()) throw_bad_field(key, std::string("expected a number, got ") + type_name(v), "invalid_type");
  const double d = v.get<double>();
  if (!std::isfinite(d) || d < lo || d > hi) {
    throw_bad_field(key, "must be a number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  return d;
}

bool get_bool(const json& body, const char* key, bool dflt) {
  if (!present(body, key)) return dflt;
  const json& v = body.at(key);
  if (!v.is_boolean()) throw_bad_field(key, std::string("expected a boolean, got ") + type_name(v), "invalid_type");
  return v.get<bool>();
}

void check_model(const json& body, const RequestLimits& lim) {
  if (!present(body, "model")) return;
  const json& v = body.at("model");
  if (!v.is_string()) throw_bad_field("model", std::string("expected a string, got ") + type_name(v), "invalid_type");
  if (lim.model_names.empty()) return;
  const auto name = v.get<std::string>();
  for (const auto& m : lim.model_names) {
    if (m == name) return;
  }
  throw ApiError(404, "invalid_request_error", "model_not_found",
                 "the model '" + name + "' does not exist; this server serves '" + lim.model_names.front() + "'", "model");
}

std::vector<int32_t> token_prompt(const json& arr, const Tokenizer& tok) {
  std::vector<int32_t> ids;
  ids.reserve(arr.size());
  for (const auto& t : arr) {
    if (!t.is_number_integer()) throw_bad_field("prompt", std::string("token ids must be integers, got ") + type_name(t), "invalid_type");
    const int64_t id = t.get<int64_t>();
    if (id < 0 || id >= tok.n_vocab()) {
      throw_bad_field("prompt", "token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                                    std::to_string(tok.n_vocab()) + ")", "invalid_token");
    }
    ids.push_back(static_cast<int32_t>(id));
  }
  return ids;
}

std::vector<int32_t> text_prompt(const std::string& text, const Tokenizer& tok) {
  try {
    return tok.encode(text, /*add_special=*/true, /*parse_special=*/true);
  } catch (const Error& e) {
    throw_bad_field("prompt", e.what());
  }
}

void check_prompt_fits(const std::vector<int32_t>& p, const RequestLimits& lim) {
  if (p.empty()) throw_bad_field("prompt", "a prompt must have at least one token", "empty_prompt");
  if (static_cast<int64_t>(p.size()) > lim.ctx_size) {
    throw_bad_field("prompt", "the prompt has " + std::to_string(p.size()) + " tokens, more than the context size " +
                                  std::to_string(lim.ctx_size), "context_length_exceeded");
  }
}

std::vector<std::vector<int32_t>> parse_prompts(const json& body, const Tokenizer& tok, const RequestLimits& lim) {
  if (!present(body, "prompt")) throw_bad_field("prompt", "is required", "missing_field");
  const json& p = body.at("prompt");
  std::vector<std::vector<int32_t>> out;
  if (p.is_string()) {
    out.push_back(text_prompt(p.get<std::string>(), tok));
  } else if (p.is_array()) {
    if (p.empty()) throw_bad_field("prompt", "an empty list is not a prompt", "empty_prompt");
    if (p.front().is_number()) {
      out.push_back(token_prompt(p, tok));  // one prompt as token ids
    } else {
      if (static_cast<int64_t>(p.size()) > lim.max_prompts) {
        throw_bad_field("prompt", "at most " + std::to_string(lim.max_prompts) + " prompts per request");
      }
      for (const auto& item : p) {
        if (item.is_string()) {
          out.push_back(text_prompt(item.get<std::string>(), tok));
        } else if (item.is_array()) {
          out.push_back(token_prompt(item, tok));
        } else {
          throw_bad_field("prompt", std::string("list items must be strings or token-id arrays, got ") + type_name(item),
                          "invalid_type");
        }
      }
    }
  } else {
    throw_bad_field("prompt", std::string("expected a string, a token-id array or a list of them, got ") + type_name(p),
                    "invalid_type");
  }
  for (const auto& ids : out) check_prompt_fits(ids, lim);
  return out;
}

std::vector<std::string> parse_stop(const json& body, const RequestLimits& lim) {
  std::vector<std::string> stop;
  if (!present(body, "stop")) return stop;
  const json& s = body.at("stop");
  if (s.is_string()) {
    stop.push_back(s.get<std::string>());
  } else if (s.is_array()) {
    if (static_cast<int64_t>(s.size()) > lim.max_stop) throw_bad_field("stop", "at most " + std::to_string(lim.max_stop) + " stop strings");
    for (const auto& x : s) {
      if (!x.is_string()) throw_bad_field("stop", std::string("stop strings must be strings, got ") + type_name(x), "invalid_type");
      stop.push_back(x.get<std::string>());
    }
  } else {
    throw_bad_field("stop", std::string("expected a string or a list of strings, got ") + type_name(s), "invalid_type");
  }
  return stop;
}

SpecOverride parse_alspec(const json& body, const RequestLimits& lim) {
  SpecOverride o;
  if (!present(body, "alspec")) return o;
  const json& a = body.at("alspec");
  if (!a.is_object()) throw_bad_field("alspec", std::string("expected an object, got ") + type_name(a), "invalid_type");
  for (const auto& [key, v] : a.items()) {
    if (key != "attention" && key != "lambda" && key != "spec_chunk" && key != "echo_prefill") {
      throw_bad_field("alspec", "unknown field '" + key + "' (expected attention, lambda, spec_chunk, echo_prefill)");
    }
  }
  if (present(a, "attention")) {
    const json& m = a.at("attention");
    if (!m.is_string()) throw_bad_field("alspec.attention", std::string("expected a string, got ") + type_name(m), "invalid_type");
    try {
      o.mode = parse_attention_mode(m.get<std::string>());
    } catch (const Error& e) {
      throw_bad_field("alspec.attention", e.what());
    }
  }
  if (present(a, "lambda")) o.lambda = static_cast<float>(get_number(a, "lambda", 0.0, 1e6, 0.0));
  if (present(a, "spec_chunk")) o.spec_chunk = static_cast<int>(get_int(a, "spec_chunk", 0, lim.ctx_size, 0));
  if (present(a, "echo_prefill")) o.echo_prefill = get_int(a, "echo_prefill", 1, lim.ctx_size, 1);
  return o;
}

// OpenAI fields the engine does not implement. Ignoring them would return unconstrained output
// with 200 OK, so any value other than the field's neutral default is refused.
void reject_unsupported(const json& body) {
  auto refuse = [](const char* key, const std::string& why) {
    throw_bad_field(key, why + " is not supported by this server", "unsupported_parameter");
  };
  for (const char* key : {"presence_penalty", "frequency_penalty"}) {
    if (present(body, key) && get_number(body, key, -2.0, 2.0, 0.0) != 0.0) refuse(key, std::string("a non-zero ") + key);
  }
  if (present(body, "logit_bias")) {
    const json& v = body.at("logit_bias");
    if (!v.is_object()) throw_bad_field("logit_bias", std::string("expected an object, got ") + type_name(v), "invalid_type");
    if (!v.empty()) refuse("logit_bias", "logit_bias");
  }
  if (present(body, "response_format")) {
    const json& v = body.at("response_format");
    if (!v.is_object() || v.value("type", "") != "text") {
      refuse("response_format", "a response_format other than {\"type\": \"text\"} (JSON mode, json_schema)");
    }
  }
  for (const char* key : {"tools", "functions"}) {
    if (present(body, key) && !(body.at(key).is_array() && body.at(key).empty())) refuse(key, std::string("tool calling ('") + key + "')");
  }
  for (const char* key : {"tool_choice", "function_call"}) {
    if (present(body, key) && body.at(key) != "none") refuse(key, std::string("tool calling ('") + key + "')");
  }
  if (present(body, "best_of") && get_int(body, "best_of", 1, 1 << 20, 1) != 1) refuse("best_of", "best_of > 1");
  if (present(body, "suffix")) refuse("suffix", "suffix (insertion)");
}

// Fields common to both endpoints.
void parse_common(const json& body, const RequestLimits& lim, CompletionRequest& r, const char* max_tokens_key) {
  check_model(body, lim);
  reject_unsupported(body);
  r.max_tokens = static_cast<int>(get_int(body, max_tokens_key, 0, lim.ctx_size, 16));
  r.sampling.temperature = static_cast<float>(get_number(body, "temperature", 0.0, 100.0, 1.0));
  r.sampling.top_p = static_cast<float>(get_number(body, "top_p", 0.0, 1.0, 1.0));
  r.sampling.top_k = static_cast<int>(get_int(body, "top_k", 0, 1 << 30, 0));
  r.sampling.min_p = static_cast<float>(get_number(body, "min_p", 0.0, 1.0, 0.0));
  r.sampling.seed = static_cast<uint64_t>(get_int(body, "seed", std::numeric_limits<int64_t>::min(),
                                                  std::numeric_limits<int64_t>::max(), 0));
  if (r.sampling.top_p <= 0.0f) throw_bad_field("top_p", "must be > 0");
  r.n = static_cast<int>(get_int(body, "n", 1, lim.max_n, 1));
  r.stream = get_bool(body, "stream", false);
  r.ignore_eos = get_bool(body, "ignore_eos", false);
  r.stop = parse_stop(body, lim);
  r.alspec = parse_alspec(body, lim);
}

}  // namespace

SpecConfig SpecOverride::apply(const SpecConfig& d) const {
  SpecConfig c;
  c.mode = mode.value_or(d.mode);
  c.lambda = lambda.value_or(d.lambda);
  c.spec_chunk = spec_chunk.value_or(d.spec_chunk);
  return c;
}

CompletionRequest parse_completion_request(const json& body, const Tokenizer& tok, const RequestLimits& lim) {
  CompletionRequest r;
  parse_common(body, lim, r, "max_tokens");
  r.echo = get_bool(body, "echo", false);
  if (present(body, "logprobs")) r.logprobs = static_cast<int>(get_int(body, "logprobs", 0, lim.max_logprobs, 0));
  r.prompts = parse_prompts(body, tok, lim);
  if (static_cast<int64_t>(r.prompts.size()) * r.n > static_cast<int64_t>(lim.max_prompts)) {
    throw_bad_field("n", "prompts x n must not exceed " + std::to_string(lim.max_prompts));
  }
  return r;
}

CompletionRequest parse_chat_request(const json& body, const Tokenizer& tok, const RequestLimits& lim, ChatFormat format) {
  CompletionRequest r;
  r.chat = true;
  parse_common(body, lim, r, present(body, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens");
  if (get_bool(body, "logprobs", false)) {
    throw_bad_field("logprobs", "log-probabilities are not available on /v1/chat/completions; use /v1/completions",
                    "unsupported_parameter");
  }
  if (!present(body, "messages")) throw_bad_field("messages", "is required", "missing_field");
  const json& ms = body.at("messages");
  if (!ms.is_array() || ms.empty()) throw_bad_field("messages", "expected a non-empty list of messages", "invalid_type");
  std::vector<ChatMessage> messages;
  for (const auto& m : ms) {
    if (!m.is_object()) throw_bad_field("messages", "each message must be an object", "invalid_type");
    if (!m.contains("role") || !m.at("role").is_string()) throw_bad_field("messages", "each message needs a string 'role'", "invalid_type");
    ChatMessage cm;
    cm.role = m.at("role").get<std::string>();
    // "developer" is OpenAI's newer name for the system role. Tool results need tool calling.
    if (cm.role == "developer") cm.role = "system";
    if (cm.role != "system" && cm.role != "user" && cm.role != "assistant") {
      throw_bad_field("messages", "unknown role '" + cm.role.substr(0, 64) + "' (expected system, developer, user or assistant)",
                      "invalid_value");
    }
    const json c = m.value("content", json());
    if (c.is_null()) throw_bad_field("messages", "each message needs its 'content' (a string or text parts)", "missing_field");
    if (c.is_string()) {
      cm.content = c.get<std::string>();
    } else if (c.is_array()) {  // content parts: only text parts are supported
      for (const auto& part : c) {
        if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part.at("text").is_string()) {
          throw_bad_field("messages", "only text content parts ({\"type\": \"text\", \"text\": ...}) are supported",
                          "unsupported_content");
        }
        cm.content += part.at("text").get<std::string>();
      }
    } else {
      throw_bad_field("messages", std::string("'content' must be a string or a list of text parts, got ") + type_name(c),
                      "invalid_type");
    }
    messages.push_back(std::move(cm));
  }
  const ChatPrompt prompt = format_chat(format, messages);
  r.prompts.push_back(text_prompt(prompt.text, tok));
  check_prompt_fits(r.prompts.back(), lim);
  for (const auto& s : prompt.stop) r.stop.push_back(s);
  return r;
}

}  // namespace alspec::server
