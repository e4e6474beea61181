#include "alspec/model/synthetic_model.h"

#include <cmath>
#include <memory>
#include <numbers>
#include <string>
#include <vector>

#include "alspec/core/error.h"
#include "alspec/gguf/gguf_file.h"
#include "alspec/gguf/gguf_writer.h"
#include "alspec/kernels/quant.h"

namespace alspec {
namespace {

// Gains (std * sqrt(fan_in)) of the random matrices; see the header for the intent.
constexpr double kQkGain = 1.5;      // q.k/sqrt(d) has std ~ kQkGain^2
constexpr double kValueGain = 1.0;
constexpr double kResidualGain = 1.0;  // attn_output and ffn_down write O(1) into the stream
constexpr double kFfnGain = 1.0;
constexpr double kLogitGain = 4.0;   // logits have std ~4 over the vocabulary
constexpr double kBiasStd = 0.5;

// splitmix64: tiny, well-mixed, and defined purely by integer arithmetic, so the weights are
// identical on every machine and compiler.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  // Irwin-Hall sum of four uniforms, rescaled to unit variance: close enough to a normal for
  // weights and, unlike Box-Muller, free of libm calls whose last bits vary between systems.
  double normal() {
    const double s = uniform() + uniform() + uniform() + uniform();
    return (s - 2.0) * std::numbers::sqrt3;
  }

 private:
  uint64_t state_;
};

// Each tensor has its own stream (seed x name), so changing one shape or the layer count
// leaves every other tensor's values unchanged.
Rng tensor_rng(uint64_t seed, const std::string& name) {
  uint64_t h = 0xCBF29CE484222325ull;  // FNV-1a
  for (unsigned char c : name) h = (h ^ c) * 0x100000001B3ull;
  Rng mix(seed ^ h);
  return Rng(mix.next());
}

void require(bool ok, const std::string& what) {
  if (!ok) throw_invalid_argument("synthetic model: " + what);
}

// Random (rows x cols) matrix, std = gain/sqrt(cols), stored as `type` row by row
// (GGUF dims {cols, rows}).
void add_matrix(gguf::GgufWriter& w, const std::string& name, DType type, int rows, int cols,
                double gain, uint64_t seed) {
  require(cols % static_cast<int>(dtype_info(type).block_size) == 0,
          name + ": " + std::to_string(cols) + " columns are not a whole number of " +
              std::string(dtype_name(type)) + " blocks");
  Rng rng = tensor_rng(seed, name);
  const double std = gain / std::sqrt(static_cast<double>(cols));
  const size_t row_size = row_bytes(type, cols);
  std::vector<uint8_t> data(row_size * static_cast<size_t>(rows));
  std::vector<float> row(static_cast<size_t>(cols));
  for (int r = 0; r < rows; ++r) {
    for (float& x : row) x = static_cast<float>(rng.normal() * std);
    quantize_row(type, row.data(), data.data() + row_size * static_cast<size_t>(r), cols);
  }
  w.add_tensor(name, type,
               {static_cast<uint64_t>(cols), static_cast<uint64_t>(rows)}, data);
}

void add_f32_vector(gguf::GgufWriter& w, const std::string& name, const std::vector<float>& v) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(v.data());
  w.add_tensor(name, DType::F32, {v.size()}, {bytes, v.size() * sizeof(float)});
}

std::vector<float> norm_weights(int n, const std::string& name, uint64_t seed) {
  Rng rng = tensor_rng(seed, name);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = static_cast<float>(0.8 + 0.4 * rng.uniform());
  return v;
}

std::vector<float> bias(int n, const std::string& name, uint64_t seed) {
  Rng rng = tensor_rng(seed, name);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = static_cast<float>(kBiasStd * rng.normal());
  return v;
}

// rope_freqs.weight holds the divisor of each pair's frequency: base_freq / llama3_freq.
std::vector<float> llama3_rope_divisors(const SyntheticModelSpec& s) {
  const int half = s.head_dim / 2;
  std::vector<float> out(static_cast<size_t>(half));
  const double original = s.rope_original_context;
  const double low = s.rope_low_freq_factor, high = s.rope_high_freq_factor;
  for (int i = 0; i < half; ++i) {
    const double f = std::pow(static_cast<double>(s.rope_base), -2.0 * i / s.head_dim);
    const double wavelen = 2.0 * std::numbers::pi / f;
    double scaled = f;
    if (wavelen > original / low) {
      scaled = f / s.rope_scaling_factor;
    } else if (wavelen >= original / high) {
      const double smooth = (original / wavelen - low) / (high - low);
      scaled = (1.0 - smooth) * f / s.rope_scaling_factor + smooth * f;
    }
    out[static_cast<size_t>(i)] = static_cast<float>(f / scaled);
  }
  return out;
}

uint32_t file_type_of(DType t) {  // general.file_type (llama_ftype) for a uniform weight type
  switch (t) {
    case DType::F32: return 0;
    case DType::F16: return 1;
    case DType::Q4_0: return 2;
    case DType::Q8_0: return 7;
    case DType::Q4_K: return 14;  // Q4_K_S: all matrices Q4_K
    case DType::Q6_K: return 18;
    case DType::BF16: return 32;
    default: throw_invalid_argument("synthetic model: unsupported weight type " + std::string(dtype_name(t)));
  }
}

void validate(const SyntheticModelSpec& s) {
  require(s.arch == "llama" || s.arch == "mistral" || s.arch == "qwen2",
          "arch '" + s.arch + "' (expected llama, mistral or qwen2)");
  require(s.n_layers > 0, "n_layers must be > 0");
  require(s.n_embd > 0 && s.n_head > 0 && s.n_head_kv > 0 && s.head_dim > 0 && s.n_ff > 0,
          "n_embd, n_head, n_head_kv, head_dim and n_ff must be > 0");
  require(s.n_head % s.n_head_kv == 0, "n_head must be a multiple of n_head_kv");
  require(s.head_dim % 2 == 0, "head_dim must be even (RoPE rotates pairs)");
  require(s.context_length > 0, "context_length must be > 0");
  require(s.rope_base > 1.0f, "rope_base must be > 1");
  require(s.rms_eps > 0.0f, "rms_eps must be > 0");
  if (s.rope_scaling != SyntheticRopeScaling::kNone) {
    require(s.rope_scaling_factor >= 1.0f, "rope_scaling_factor must be >= 1");
    require(s.rope_high_freq_factor > s.rope_low_freq_factor && s.rope_low_freq_factor > 0.0f,
            "need 0 < rope_low_freq_factor < rope_high_freq_factor");
    require(s.rope_original_context > 0, "rope_original_context must be > 0");
  }
  require(is_compute_type(s.weight_type),
          "weight type " + std::string(dtype_name(s.weight_type)) + " is not a compute type");
  require(s.tokenizer_donor.empty() ? s.n_vocab > 0 : true, "n_vocab must be > 0");
}

}  // namespace

std::vector<std::string> synthetic_preset_names() {
  return {"llama3-tiny", "llama3-mini", "llama-3.2-1b", "long-context", "qwen2-tiny", "mistral-tiny"};
}

SyntheticModelSpec synthetic_preset(std::string_view name) {
  SyntheticModelSpec s;
  s.name = "synthetic-" + std::string(name);
  if (name == "llama3-tiny") {
    // Real Llama-3-8B attention shape (32 x 128 heads, GQA 4) with everything else tiny.
    s.n_layers = 2; s.n_embd = 4096; s.n_head = 32; s.n_head_kv = 8; s.head_dim = 128;
    s.n_ff = 512; s.context_length = 4096; s.rope_base = 500000.0f;
    s.rope_scaling = SyntheticRopeScaling::kLlama3; s.rope_scaling_factor = 8.0f;
    s.rope_original_context = 8192;
    s.tied_output = false;
  } else if (name == "llama3-mini") {
    // Small and fast for exhaustive type sweeps. The llama3 scaling window (original context
    // 256) is placed so that pairs in all three bands turn by visibly different angles within a
    // few dozen positions; with Llama 3's 8192 a scaling bug would only show at long range.
    s.n_layers = 2; s.n_embd = 256; s.n_head = 8; s.n_head_kv = 2; s.head_dim = 32;
    s.n_ff = 512; s.context_length = 4096; s.rope_base = 10000.0f;
    s.rope_scaling = SyntheticRopeScaling::kLlama3; s.rope_scaling_factor = 4.0f;
    s.rope_original_context = 256;
    s.tied_output = false;
  } else if (name == "llama-3.2-1b") {
    s.n_layers = 16; s.n_embd = 2048; s.n_head = 32; s.n_head_kv = 8; s.head_dim = 64;
    s.n_ff = 8192; s.context_length = 131072; s.rope_base = 500000.0f;
    s.rope_scaling = SyntheticRopeScaling::kLlama3; s.rope_scaling_factor = 32.0f;
    s.rope_original_context = 8192;
    s.tied_output = true;
  } else if (name == "long-context") {
    // Attention-bound at long context: every query head has its own KV head, tiny FFN.
    s.n_layers = 2; s.n_embd = 1024; s.n_head = 16; s.n_head_kv = 16; s.head_dim = 64;
    s.n_ff = 256; s.context_length = 131072; s.rope_base = 500000.0f;
    s.rope_scaling = SyntheticRopeScaling::kLlama3; s.rope_scaling_factor = 32.0f;
    s.rope_original_context = 8192;
    s.tied_output = true;
  } else if (name == "qwen2-tiny") {
    s.arch = "qwen2";
    s.n_layers = 2; s.n_embd = 256; s.n_head = 8; s.n_head_kv = 2; s.head_dim = 32;
    s.n_ff = 512; s.context_length = 4096; s.rope_base = 1000000.0f; s.rms_eps = 1e-6f;
    s.tied_output = true;
  } else if (name == "mistral-tiny") {
    s.arch = "mistral";
    s.n_layers = 2; s.n_embd = 256; s.n_head = 8; s.n_head_kv = 2; s.head_dim = 32;
    s.n_ff = 768; s.context_length = 4096; s.rope_base = 1000000.0f;
    s.tied_output = false;
  } else {
    std::string known;
    for (const auto& n : synthetic_preset_names()) known += (known.empty() ? "" : ", ") + n;
    throw_invalid_argument("synthetic model: unknown preset '" + std::string(name) + "' (known: " + known + ")");
  }
  return s;
}

std::string synthetic_preset_vocab(std::string_view name) {
  (void)synthetic_preset(name);  // rejects unknown names
  return name == "llama-3.2-1b" ? "llama-bpe" : "stories260K";
}

void write_synthetic_model(const SyntheticModelSpec& s, const std::string& path) {
  validate(s);
  gguf::GgufWriter w;
  const std::string a = s.arch;

  int n_vocab = s.n_vocab;
  std::unique_ptr<gguf::GgufFile> donor;
  if (!s.tokenizer_donor.empty()) {
    donor = gguf::GgufFile::open(s.tokenizer_donor);
    const auto tokens = donor->find("tokenizer.ggml.tokens");
    if (tokens == nullptr || !tokens->is_array() || tokens->array_size() == 0)
      throw_invalid_model(s.tokenizer_donor + ": no tokenizer.ggml.tokens to copy");
    n_vocab = static_cast<int>(tokens->array_size());
  }

  w.set_string("general.architecture", a);
  w.set_string("general.name", s.name);
  w.set_u32("general.file_type", file_type_of(s.weight_type));
  w.set_u32(a + ".context_length", s.context_length);
  w.set_u32(a + ".embedding_length", static_cast<uint32_t>(s.n_embd));
  w.set_u32(a + ".block_count", static_cast<uint32_t>(s.n_layers));
  w.set_u32(a + ".feed_forward_length", static_cast<uint32_t>(s.n_ff));
  w.set_u32(a + ".attention.head_count", static_cast<uint32_t>(s.n_head));
  w.set_u32(a + ".attention.head_count_kv", static_cast<uint32_t>(s.n_head_kv));
  w.set_u32(a + ".attention.key_length", static_cast<uint32_t>(s.head_dim));
  w.set_u32(a + ".attention.value_length", static_cast<uint32_t>(s.head_dim));
  w.set_f32(a + ".attention.layer_norm_rms_epsilon", s.rms_eps);
  w.set_f32(a + ".rope.freq_base", s.rope_base);
  w.set_u32(a + ".rope.dimension_count", static_cast<uint32_t>(s.head_dim));
  w.set_u32(a + ".vocab_size", static_cast<uint32_t>(n_vocab));
  if (s.rope_scaling == SyntheticRopeScaling::kLlama3) {
    w.set_string(a + ".rope.scaling.type", "llama3");
    w.set_f32(a + ".rope.scaling.factor", s.rope_scaling_factor);
    w.set_u32(a + ".rope.scaling.original_context_length", s.rope_original_context);
    w.set_f32(a + ".rope.scaling.low_freq_factor", s.rope_low_freq_factor);
    w.set_f32(a + ".rope.scaling.high_freq_factor", s.rope_high_freq_factor);
  }
  if (donor) {
    for (const std::string& key : donor->keys()) {
      if (key.starts_with("tokenizer.")) w.set(key, *donor->find(key));
    }
  }

  const DType wt = s.weight_type;
  const uint64_t seed = s.seed;
  const int q_dim = s.n_head * s.head_dim;
  const int kv_dim = s.n_head_kv * s.head_dim;
  const double embd_gain = s.tied_output ? kLogitGain : std::sqrt(static_cast<double>(s.n_embd));
  // Rows of the embedding have unit rms when untied; when tied they double as the classifier.
  add_matrix(w, "token_embd.weight", wt, n_vocab, s.n_embd, embd_gain, seed);
  if (s.rope_scaling == SyntheticRopeScaling::kFreqsTensor)
    add_f32_vector(w, "rope_freqs.weight", llama3_rope_divisors(s));

  for (int i = 0; i < s.n_layers; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    add_f32_vector(w, p + "attn_norm.weight", norm_weights(s.n_embd, p + "attn_norm.weight", seed));
    add_matrix(w, p + "attn_q.weight", wt, q_dim, s.n_embd, kQkGain, seed);
    add_matrix(w, p + "attn_k.weight", wt, kv_dim, s.n_embd, kQkGain, seed);
    add_matrix(w, p + "attn_v.weight", wt, kv_dim, s.n_embd, kValueGain, seed);
    if (s.arch == "qwen2") {
      add_f32_vector(w, p + "attn_q.bias", bias(q_dim, p + "attn_q.bias", seed));
      add_f32_vector(w, p + "attn_k.bias", bias(kv_dim, p + "attn_k.bias", seed));
      add_f32_vector(w, p + "attn_v.bias", bias(kv_dim, p + "attn_v.bias", seed));
    }
    add_matrix(w, p + "attn_output.weight", wt, s.n_embd, q_dim, kResidualGain, seed);
    add_f32_vector(w, p + "ffn_norm.weight", norm_weights(s.n_embd, p + "ffn_norm.weight", seed));
    add_matrix(w, p + "ffn_gate.weight", wt, s.n_ff, s.n_embd, kFfnGain, seed);
    add_matrix(w, p + "ffn_up.weight", wt, s.n_ff, s.n_embd, kFfnGain, seed);
    // silu(g)*u has rms ~0.5, hence twice the residual gain.
    add_matrix(w, p + "ffn_down.weight", wt, s.n_embd, s.n_ff, 2.0 * kResidualGain, seed);
  }
  add_f32_vector(w, "output_norm.weight", norm_weights(s.n_embd, "output_norm.weight", seed));
  if (!s.tied_output) add_matrix(w, "output.weight", wt, n_vocab, s.n_embd, kLogitGain, seed);

  w.write_file(path);
}

}  // namespace alspec
