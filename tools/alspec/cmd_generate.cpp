// `alspec generate`: prompt -> streamed text (or one JSON object), with speculation statistics.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "alspec/command.h"
#include "alspec/core/error.h"
#include "alspec/model/model.h"
#include "alspec/spec/generate.h"
#include "alspec/tokenizer/tokenizer.h"
#include "engine_options.h"
#include "json_output.h"

namespace alspec::cli {
namespace {

struct GenerateArgs {
  EngineArgs engine;
  std::string prompt;
  std::string prompt_tokens;
  int n_predict = 128;
  SamplingParams sampling;
  bool json = false;
  bool no_bos = false;
  bool trace = false;
  std::string logits_out;
  std::vector<std::string> stop;
  bool ignore_eos = false;
};

std::vector<int32_t> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t pos = 0;
      const long v = std::stol(item, &pos);
      if (pos != item.size() || v < INT32_MIN || v > INT32_MAX) throw std::invalid_argument(item);
      ids.push_back(static_cast<int32_t>(v));
    } catch (const std::exception&) {
      throw_invalid_argument("--prompt-tokens: '" + item + "' is not a token id");
    }
  }
  return ids;
}

int run(const GenerateArgs& a) {
  EngineOptions eo = a.engine.to_options();
  validate(a.sampling);
  auto model = Model::load(a.engine.model);
  const Tokenizer& tok = model->tokenizer();
  if (a.trace) {
    eo.spec.trace = [](const TraceEvent& e) {
      std::fprintf(stderr,
                   "trace step=%lld layer=%d sender=%d receiver=%d priority=%d dist2=%.6g norm2=%.6g rel=%.4f accept=%d%s%s\n",
                   static_cast<long long>(e.step), e.layer, e.sender, e.receiver, e.sender_priority, e.dist2, e.norm2,
                   e.norm2 > 0 ? std::sqrt(e.dist2 / e.norm2) : 0.0, e.accept ? 1 : 0, e.trivial ? " trivial" : "",
                   e.forced ? " forced" : "");
    };
  }
  Engine engine(*model, eo);
  GenerateRequest req;
  req.prompt = a.prompt_tokens.empty() ? tok.encode(a.prompt, !a.no_bos) : parse_ids(a.prompt_tokens);
  req.n_predict = a.n_predict;
  req.sampling = a.sampling;
  req.stop = a.stop;
  req.stop_at_eos = !a.ignore_eos;
  std::ofstream logits_file;
  if (!a.logits_out.empty()) {
    logits_file.open(a.logits_out, std::ios::binary);
    if (!logits_file) throw Error(ErrorKind::kIo, a.logits_out + ": cannot open for writing");
    const int n_vocab = model->config().n_vocab;
    req.on_logits = [&logits_file, n_vocab](const float* l) {
      logits_file.write(reinterpret_cast<const char*>(l), static_cast<std::streamsize>(sizeof(float) * n_vocab));
    };
  }
  if (!a.json) {
    std::cout << tok.decode(req.prompt) << std::flush;
    req.on_token = [](int32_t, const std::string& piece) {
      std::cout << piece << std::flush;
      return true;
    };
  }
  const GenerateResult r = generate(engine, req);
  if (a.json) {
    nlohmann::json j;
    j["model"] = a.engine.model;
    j["prompt_tokens"] = req.prompt;
    j["tokens"] = r.tokens;
    j["text"] = r.text;
    j["finish_reason"] = r.finish_reason;
    j["timings"] = timings_json(r);
    j["speculation"] = speculation_json(engine, r.stats);
    std::cout << j.dump() << "\n";
  } else {
    std::cout << "\n";
    std::fprintf(stderr, "%s\n", speculation_summary(engine, r).c_str());
  }
  return 0;
}

const CommandRegistrar kGenerate({"generate", "Generate text from a prompt", [](CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  a->engine.add_to(app);
  auto* p = app.add_option("-p,--prompt", a->prompt, "Prompt text");
  auto* pt = app.add_option("--prompt-tokens", a->prompt_tokens, "Prompt as comma-separated token ids (no BOS added)");
  p->excludes(pt);
  app.add_option("-n,--n-predict", a->n_predict, "Number of tokens to generate")->capture_default_str();
  app.add_option("--temperature,--temp", a->sampling.temperature, "Sampling temperature (0 = greedy)")->capture_default_str();
  app.add_option("--top-k", a->sampling.top_k, "Top-k (0 = off)");
  app.add_option("--top-p", a->sampling.top_p, "Top-p (1 = off)");
  app.add_option("--min-p", a->sampling.min_p, "Min-p (0 = off)");
  app.add_option("--repeat-penalty", a->sampling.repeat_penalty, "Repetition penalty (1 = off)");
  app.add_option("--repeat-last-n", a->sampling.repeat_last_n, "Tokens the repetition penalty looks back");
  app.add_option("-s,--seed", a->sampling.seed, "Sampling seed");
  app.add_option("--stop", a->stop, "Stop string (repeatable)");
  app.add_flag("--ignore-eos", a->ignore_eos, "Do not stop at end-of-generation tokens");
  app.add_flag("--no-bos", a->no_bos, "Do not add the BOS token");
  app.add_flag("--json", a->json, "Print one JSON object instead of streaming text");
  app.add_flag("--trace", a->trace, "Debug trace of every speculation (per token, per layer) on stderr");
  app.add_option("--logits-out", a->logits_out, "Write the float32 logits of every sampled step to this file");
  return std::function<int()>([a] {
    if (a->prompt.empty() && a->prompt_tokens.empty()) throw_invalid_argument("give --prompt or --prompt-tokens");
    return run(*a);
  });
}});

}  // namespace
}  // namespace alspec::cli
