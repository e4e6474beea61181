#include "alspec/spec/generate.h"

#include <algorithm>

#include "alspec/core/error.h"
#include "alspec/core/timer.h"
#include "alspec/tokenizer/tokenizer.h"

namespace alspec {

GenerateResult generate(Engine& engine, const GenerateRequest& req) {
  const Model& model = engine.model();
  const Tokenizer& tok = model.tokenizer();
  const int n_vocab = model.config().n_vocab;
  if (req.prompt.empty()) throw_invalid_argument("the prompt is empty (no tokens)");
  if (req.n_predict < 0) throw_invalid_argument("n_predict must be >= 0");
  const int64_t reused = req.reuse_prefix ? engine.reuse_prefix(req.prompt, static_cast<int64_t>(req.prompt.size()) - 1) : 0;
  const std::span<const int32_t> to_prefill = std::span<const int32_t>(req.prompt).subspan(static_cast<size_t>(reused));
  const int64_t need = engine.position() + static_cast<int64_t>(to_prefill.size());
  if (need > engine.ctx_size()) {
    throw_invalid_argument("prompt of " + std::to_string(req.prompt.size()) + " tokens does not fit the context size " +
                           std::to_string(engine.ctx_size()));
  }
  GenerateResult res;
  res.prompt_tokens = static_cast<int64_t>(req.prompt.size());
  res.reused_prompt_tokens = reused;
  engine.reset_stats();
  Sampler sampler(req.sampling, n_vocab);
  std::vector<float> logits(static_cast<size_t>(n_vocab));
  const double t0 = now_seconds();
  for (size_t done = 0; done < to_prefill.size();) {
    if (req.keep_prefilling && !req.keep_prefilling()) {
      res.finish_reason = "cancelled";
      res.prefill_seconds = now_seconds() - t0;
      res.stats = engine.stats();
      return res;
    }
    const size_t n = std::min(to_prefill.size() - done, static_cast<size_t>(kPrefillCheckTokens));
    const bool last = done + n == to_prefill.size();
    engine.prefill(to_prefill.subspan(done, n), last ? PrefillLogits::kLast : PrefillLogits::kNone,
                   [&](int64_t, const float* l) { std::copy_n(l, n_vocab, logits.begin()); });
    done += n;
  }
  res.prefill_seconds = now_seconds() - t0;
  std::vector<int32_t> history(req.prompt);
  // Every generated token but the last needs a KV row.
  const int64_t max_new = std::min<int64_t>(req.n_predict, engine.ctx_size() - engine.position() + 1);
  res.finish_reason = "length";
  const double t1 = now_seconds();
  const float* cur = logits.data();
  size_t emitted = 0;  // bytes of res.text already handed to on_token
  for (int64_t i = 0; i < max_new; ++i) {
    if (req.on_logits) req.on_logits(cur);
    const int32_t next = sampler.sample(cur, history);
    if (req.stop_at_eos && tok.is_end_of_generation(next)) {
      res.finish_reason = "eos";
      break;
    }
    res.tokens.push_back(next);
    history.push_back(next);
    res.text += tok.token_to_piece(next);
    // Stop strings: cut the text at the first match (never streamed).
    bool stopped = false;
    for (const auto& s : req.stop) {
      if (s.empty()) continue;
      const size_t at = res.text.find(s, emitted > s.size() ? emitted - s.size() : 0);
      if (at != std::string::npos) {
        res.text.resize(at);
        stopped = true;
      }
    }
    if (req.on_token) {
      // Hold back a tail that could still grow into a stop string.
      size_t hold = 0;
      if (!stopped) {
        for (const auto& s : req.stop) {
          for (size_t k = std::min(s.size() - (s.empty() ? 0 : 1), res.text.size()); k > hold; --k) {
            if (res.text.compare(res.text.size() - k, k, s, 0, k) == 0) {
              hold = k;
              break;
            }
          }
        }
      }
      const size_t upto = res.text.size() - hold;
      if (upto > emitted) {
        if (!req.on_token(next, res.text.substr(emitted, upto - emitted))) {
          emitted = upto;
          res.finish_reason = "cancelled";
          break;
        }
        emitted = upto;
      }
    }
    if (stopped) {
      res.finish_reason = "stop";
      break;
    }
    if (i + 1 == max_new) break;  // the last token needs no decode step
    cur = engine.decode(next);
    ++res.decoded_tokens;
  }
  // Flush text held back for a stop string that never completed.
  if (req.on_token && res.finish_reason != "cancelled" && emitted < res.text.size()) {
    req.on_token(-1, res.text.substr(emitted));
  }
  res.decode_seconds = now_seconds() - t1;
  res.stats = engine.stats();
  return res;
}

}  // namespace alspec
