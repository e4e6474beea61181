#include "json_output.h"

#include <cstdio>

namespace alspec::cli {

nlohmann::json timings_json(const GenerateResult& r) {
  nlohmann::json t;
  t["prompt_tokens"] = r.prompt_tokens;
  t["generated_tokens"] = r.tokens.size();
  t["prefill_seconds"] = r.prefill_seconds;
  t["decode_seconds"] = r.decode_seconds;
  t["prefill_tokens_per_second"] = r.prefill_seconds > 0 ? static_cast<double>(r.prompt_tokens) / r.prefill_seconds : 0.0;
  t["decode_tokens_per_second"] =
      r.decode_seconds > 0 ? static_cast<double>(r.decoded_tokens) / r.decode_seconds : 0.0;
  return t;
}

std::string speculation_summary(const Engine& engine, const GenerateResult& r) {
  char buf[512];
  const double pf = r.prefill_seconds > 0 ? static_cast<double>(r.prompt_tokens) / r.prefill_seconds : 0.0;
  const double dc = r.decode_seconds > 0 ? static_cast<double>(r.decoded_tokens) / r.decode_seconds : 0.0;
  std::snprintf(buf, sizeof buf,
                "alspec: attention=%s lambda=%.3g S=%d predictor=%s devices=%d | checks=%lld hits=%lld hit_rate=%.1f%% trivial=%lld | "
                "prefill %.1f tok/s, decode %.1f tok/s",
                attention_mode_name(engine.mode()), static_cast<double>(engine.options().spec.lambda), engine.spec_chunk(),
                spec_predictor_name(engine.options().predictor), engine.n_devices(), static_cast<long long>(r.stats.checks()), static_cast<long long>(r.stats.hits()),
                100.0 * r.stats.hit_rate(), static_cast<long long>(r.stats.trivial()), pf, dc);
  std::string out = buf;
  if (const ProcessGroups* g = engine.options().groups; g != nullptr && g->distributed()) {
    out += " | ranks=" + std::to_string(g->world_size) + " tp=" + std::to_string(g->tp) +
           " groups=" + std::to_string(g->n_groups) + " C=" + std::to_string(engine.model().shard().chunks);
  }
  return out;
}

}  // namespace alspec::cli
