#include "alspec/model/model_config.h"

#include <cmath>
#include <numbers>

#include "alspec/core/error.h"
#include "alspec/gguf/gguf_file.h"

namespace alspec {
namespace {

struct KeyReader {
  const gguf::GgufFile& f;
  std::string arch;

  [[noreturn]] void fail(const std::string& msg) const { throw_invalid_model(f.path() + ": " + msg); }

  int required_int(const std::string& suffix, int64_t lo, int64_t hi) const {
    const std::string key = arch + "." + suffix;
    const auto v = f.get_i64(key);
    if (!v) fail("missing metadata key '" + key + "'");
    if (*v < lo || *v > hi) {
      fail("metadata key '" + key + "' = " + std::to_string(*v) + " is out of range [" + std::to_string(lo) +
           ", " + std::to_string(hi) + "]");
    }
    return static_cast<int>(*v);
  }
  int optional_int(const std::string& suffix, int def, int64_t lo, int64_t hi) const {
    if (!f.find(arch + "." + suffix)) return def;
    return required_int(suffix, lo, hi);
  }
  float optional_float(const std::string& suffix, float def) const {
    const std::string key = arch + "." + suffix;
    const auto v = f.get_f32(key);
    if (!v) return def;
    if (!std::isfinite(*v)) fail("metadata key '" + key + "' is not finite");
    return *v;
  }
};

}  // namespace

const char* arch_name(Arch a) {
  switch (a) {
    case Arch::kLlama: return "llama";
    case Arch::kMistral: return "mistral";
    case Arch::kQwen2: return "qwen2";
    case Arch::kGemma3: return "gemma3";
  }
  return "?";
}

std::vector<float> rope_inv_freq(int rope_dim, float base, const std::string& scaling, float factor,
                                 float original_ctx, float low_freq_factor, float high_freq_factor) {
  std::vector<float> inv(static_cast<size_t>(rope_dim / 2));
  for (int i = 0; i < rope_dim / 2; ++i) {
    const double f = std::pow(static_cast<double>(base), -2.0 * i / rope_dim);
    double g = f;
    if (scaling == "linear") {
      g = f / factor;
    } else if (scaling == "llama3") {
      // Llama 3.1 scaling: keep high frequencies, divide low ones by `factor`, blend in between.
      const double wavelen = 2.0 * std::numbers::pi / f;
      const double low_wavelen = original_ctx / low_freq_factor;
      const double high_wavelen = original_ctx / high_freq_factor;
      if (wavelen < high_wavelen) {
        g = f;
      } else if (wavelen > low_wavelen) {
        g = f / factor;
      } else {
        const double smooth = (original_ctx / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
        g = (1.0 - smooth) * f / factor + smooth * f;
      }
    }
    inv[static_cast<size_t>(i)] = static_cast<float>(g);
  }
  return inv;
}

ModelConfig ModelConfig::from_gguf(const gguf::GgufFile& f) {
  ModelConfig c;
  const auto arch = f.get_string("general.architecture");
  if (!arch) throw_invalid_model(f.path() + ": missing metadata key 'general.architecture'");
  c.arch_name = *arch;
  if (*arch == "llama") {
    c.arch = Arch::kLlama;
  } else if (*arch == "mistral") {
    c.arch = Arch::kMistral;
  } else if (*arch == "qwen2") {
    c.arch = Arch::kQwen2;
  } else if (*arch == "gemma3") {
    c.arch = Arch::kGemma3;
  } else {
    throw_invalid_model(f.path() + ": unsupported architecture '" + *arch +
                        "' (supported: llama, mistral, qwen2, gemma3)");
  }
  c.name = f.get_string("general.name").value_or("");
  const KeyReader r{f, *arch};
  constexpr int64_t kMaxDim = 1 << 20;
  c.n_layers = r.required_int("block_count", 1, 4096);
  c.n_embd = r.required_int("embedding_length", 1, kMaxDim);
  c.n_ff = r.required_int("feed_forward_length", 1, kMaxDim);
  c.n_head = r.required_int("attention.head_count", 1, 4096);
  c.n_head_kv = r.optional_int("attention.head_count_kv", c.n_head, 1, 4096);
  c.context_length = r.required_int("context_length", 1, 1 << 24);
  if (c.n_head % c.n_head_kv != 0) {
    r.fail("attention.head_count (" + std::to_string(c.n_head) + ") is not a multiple of head_count_kv (" +
           std::to_string(c.n_head_kv) + ")");
  }
  const int default_head_dim = c.n_embd % c.n_head == 0 ? c.n_embd / c.n_head : 0;
  c.head_dim = r.optional_int("attention.key_length", default_head_dim, 1, 4096);
  const int v_dim = r.optional_int("attention.value_length", c.head_dim, 1, 4096);
  if (c.head_dim == 0) r.fail("embedding_length is not a multiple of head_count and key_length is absent");
  if (v_dim != c.head_dim) r.fail("attention.value_length != key_length is not supported");
  if (c.head_dim % 2 != 0) r.fail("head dimension " + std::to_string(c.head_dim) + " is odd");
  c.rms_eps = r.optional_float("attention.layer_norm_rms_epsilon", 1e-5f);
  if (!(c.rms_eps > 0.0f)) r.fail("attention.layer_norm_rms_epsilon must be > 0");
  c.rope_base = r.optional_float("rope.freq_base", 10000.0f);
  if (!(c.rope_base > 1.0f)) r.fail("rope.freq_base must be > 1");
  c.rope_dim = r.optional_int("rope.dimension_count", c.head_dim, 2, c.head_dim);
  if (c.rope_dim != c.head_dim) {
    r.fail("partial rotary embeddings (rope.dimension_count " + std::to_string(c.rope_dim) + " < head dim " +
           std::to_string(c.head_dim) + ") are not supported");
  }
  c.rope_style = (c.arch == Arch::kQwen2 || c.arch == Arch::kGemma3) ? RopeStyle::kNeox : RopeStyle::kAdjacent;
  c.has_qkv_bias = c.arch == Arch::kQwen2;
  if (c.arch == Arch::kGemma3) {
    // Defaults follow the reference Gemma 3 loader when keys are absent (see docs/models.md).
    c.has_qk_norm = true;
    c.has_post_norms = true;
    c.gelu_mlp = true;
    c.embed_scale = std::sqrt(static_cast<float>(c.n_embd));
    c.sliding_window = r.optional_int("attention.sliding_window", 0, 0, 1 << 24);
    c.swa_pattern = r.optional_int("attention.sliding_window_pattern", 6, 1, 4096);
    if (f.find(*arch + ".final_logit_softcapping")) r.fail("final_logit_softcapping is not supported");
  }

  // Vocabulary size: from the tokenizer (the embedding matrix is checked against it at load).
  const auto* tokens = f.find("tokenizer.ggml.tokens");
  if (tokens == nullptr) r.fail("missing tokenizer.ggml.tokens");
  c.n_vocab = static_cast<int>(tokens->array_size());
  if (c.n_vocab <= 0) r.fail("empty vocabulary");

  // RoPE frequency scaling.
  const std::string scaling_key = *arch + ".rope.scaling.type";
  c.rope_scaling = f.get_string(scaling_key).value_or("none");
  float original_ctx = static_cast<float>(c.context_length);
  float low = 1.0f;
  float high = 4.0f;
  if (c.rope_scaling == "none" || c.rope_scaling.empty()) {
    c.rope_scaling = "none";
  } else if (c.rope_scaling == "linear" || c.rope_scaling == "llama3") {
    c.rope_scaling_factor = r.optional_float("rope.scaling.factor", 1.0f);
    if (!(c.rope_scaling_factor >= 1.0f)) r.fail("rope.scaling.factor must be >= 1");
    original_ctx = static_cast<float>(r.optional_int("rope.scaling.original_context_length", c.context_length, 1, 1 << 24));
    low = r.optional_float("rope.scaling.low_freq_factor", 1.0f);
    high = r.optional_float("rope.scaling.high_freq_factor", 4.0f);
    if (c.rope_scaling == "llama3" && !(high > low && low > 0.0f)) {
      r.fail("rope.scaling: high_freq_factor must exceed low_freq_factor > 0");
    }
  } else if (c.rope_scaling == "yarn") {
    r.fail("rope scaling type 'yarn' is not supported");
  } else {
    r.fail("unknown rope scaling type '" + c.rope_scaling + "'");
  }
  c.inv_freq = rope_inv_freq(c.rope_dim, c.rope_base, c.rope_scaling, c.rope_scaling_factor, original_ctx, low, high);
  if (c.sliding_window > 0) {
    // Local (sliding-window) layers use their own base and no frequency scaling.
    const float base_swa = r.optional_float("rope.freq_base_swa", 10000.0f);
    c.inv_freq_swa = rope_inv_freq(c.rope_dim, base_swa, "none", 1.0f, 0, 1, 4);
  }
  return c;
}

}  // namespace alspec
