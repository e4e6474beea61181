#include "alspec/tokenizer/tokenizer.h"

#include <algorithm>
#include <array>
#include <optional>
#include <unordered_set>

#include "alspec/core/error.h"
#include "tokenizer/bpe_encoder.h"
#include "tokenizer/byte_unicode.h"
#include "tokenizer/spm_encoder.h"
#include "tokenizer/vocab_index.h"

namespace alspec {

using tokenizer_detail::BpeEncoder;
using tokenizer_detail::ByteUnicode;
using tokenizer_detail::PreTokenizerKind;
using tokenizer_detail::SpmEncoder;
using tokenizer_detail::VocabIndex;

namespace {

constexpr std::string_view kSpmSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's space marker

// Control tokens that end a turn in common chat formats, beyond the declared eos/eot/eom ids.
constexpr std::array<std::string_view, 10> kEndOfTurnTexts = {
    "<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
    "<|end_of_text|>", "<EOT>", "<|return|>", "<|end_of_turn|>",
};

struct PreInfo {
  PreTokenizerKind kind;
  bool ignore_merges;
  bool add_bos;
};

std::optional<PreInfo> pre_info(std::string_view pre) {
  // "default" is what old gpt2-model conversions carry; it is treated as the GPT-2 regex.
  if (pre == "default" || pre == "gpt-2" || pre == "gpt2") return PreInfo{PreTokenizerKind::kGpt2, false, false};
  if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3") {
    return PreInfo{PreTokenizerKind::kLlama3, true, true};
  }
  if (pre == "qwen2" || pre == "deepseek-r1-qwen") return PreInfo{PreTokenizerKind::kQwen2, false, false};
  if (pre == "smollm") return PreInfo{PreTokenizerKind::kSmollm, false, false};
  return std::nullopt;
}

// Byte value of a "<0xNN>" token text, or -1.
int byte_token_value(std::string_view text) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return -1;
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int hi = hex(text[3]);
  const int lo = hex(text[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  for (size_t hit; (hit = s.find(from, pos)) != std::string_view::npos; pos = hit + from.size()) {
    out.append(s.substr(pos, hit - pos)).append(to);
  }
  out.append(s.substr(pos));
  return out;
}

// A span of the input that is either raw text or an already recognised special token.
struct Fragment {
  std::string_view text;
  int32_t token = -1;
};

}  // namespace

struct Tokenizer::Impl {
  std::string source;
  std::string model;
  std::string pre;
  bool is_spm = false;
  VocabIndex vocab;
  int32_t bos = -1, eos = -1, unk = -1, eot = -1, eom = -1;
  bool add_bos = false, add_eos = false, add_space_prefix = false;
  std::unordered_set<int32_t> end_of_generation;
  // Special-token texts matched in the input, by first byte, longest first. "always" holds
  // user-defined tokens; "parsed" adds control and unknown tokens for parse_special.
  std::array<std::vector<int32_t>, 256> always_by_byte;
  std::array<std::vector<int32_t>, 256> parsed_by_byte;
  std::vector<std::string> pieces;  // streaming text of each token (skip_special = false)
  std::optional<SpmEncoder> spm;
  std::optional<BpeEncoder> bpe;

  std::vector<Fragment> partition(std::string_view text, bool parse_special) const;
  void encode_text(std::string_view text, bool space_prefix, std::vector<int32_t>& out) const;
  std::string piece(int32_t id) const;
  void check_id(int32_t id) const {
    if (id < 0 || id >= vocab.size()) {
      throw_invalid_argument(source + ": token id " + std::to_string(id) + " out of range [0, " +
                             std::to_string(vocab.size()) + ")");
    }
  }
};

std::vector<Fragment> Tokenizer::Impl::partition(std::string_view text, bool parse_special) const {
  const auto& table = parse_special ? parsed_by_byte : always_by_byte;
  std::vector<Fragment> out;
  size_t raw_start = 0;
  for (size_t pos = 0; pos < text.size();) {
    int32_t hit = -1;
    for (int32_t id : table[static_cast<uint8_t>(text[pos])]) {
      if (text.substr(pos).starts_with(vocab.tokens[id])) {
        hit = id;
        break;
      }
    }
    if (hit < 0) {
      ++pos;
      continue;
    }
    if (pos > raw_start) out.push_back({text.substr(raw_start, pos - raw_start)});
    out.push_back({std::string_view(vocab.tokens[hit]), hit});
    pos += vocab.tokens[hit].size();
    raw_start = pos;
  }
  if (raw_start < text.size()) out.push_back({text.substr(raw_start)});
  return out;
}

void Tokenizer::Impl::encode_text(std::string_view text, bool space_prefix, std::vector<int32_t>& out) const {
  if (is_spm) {
    std::string escaped = replace_all(text, " ", kSpmSpace);
    if (space_prefix) escaped.insert(0, kSpmSpace);
    spm->encode(escaped, out);
  } else {
    bpe->encode(text, out);
  }
}

std::string Tokenizer::Impl::piece(int32_t id) const {
  const std::string& text = vocab.tokens[id];
  switch (vocab.types[id]) {
    case TokenType::kControl: return text;
    case TokenType::kUnused: return {};
    case TokenType::kUnknown: return is_spm ? " \xE2\x81\x87 " : text;  // SentencePiece shows " ⁇ "
    case TokenType::kByte: {
      const int b = byte_token_value(text);
      if (b >= 0) return std::string(1, static_cast<char>(b));
      break;
    }
    case TokenType::kUserDefined:
      if (!is_spm) return text;  // stored as plain text, not byte-mapped
      break;
    default: break;
  }
  return is_spm ? replace_all(text, kSpmSpace, " ") : ByteUnicode::get().decode(text);
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

std::unique_ptr<Tokenizer> Tokenizer::from_vocab(TokenizerVocab v) {
  auto impl = std::make_unique<Impl>();
  Impl& t = *impl;
  t.source = v.source;
  const std::string& src = t.source;
  auto fail = [&](const std::string& why) { throw_invalid_model(src + ": " + why); };

  if (v.model.empty()) fail("no tokenizer.ggml.model");
  if (v.model != "llama" && v.model != "gpt2") fail("unsupported tokenizer model '" + v.model + "'");
  t.model = v.model;
  t.pre = v.pre;
  t.is_spm = v.model == "llama";
  const size_t n = v.tokens.size();
  if (n == 0) fail("tokenizer.ggml.tokens is missing or empty");
  if (n > static_cast<size_t>(INT32_MAX)) fail("too many tokens");

  if (t.is_spm && v.scores.empty()) fail("tokenizer.ggml.scores is missing (required for model 'llama')");
  if (!v.scores.empty() && v.scores.size() != n) {
    fail("tokenizer.ggml.scores has " + std::to_string(v.scores.size()) + " entries for " + std::to_string(n) +
         " tokens");
  }
  if (!v.token_types.empty() && v.token_types.size() != n) {
    fail("tokenizer.ggml.token_type has " + std::to_string(v.token_types.size()) + " entries for " +
         std::to_string(n) + " tokens");
  }
  t.vocab.types.resize(n, TokenType::kNormal);
  for (size_t i = 0; i < v.token_types.size(); ++i) {
    const int32_t ty = v.token_types[i];
    if (ty < 0 || ty > static_cast<int32_t>(TokenType::kByte)) {
      fail("tokenizer.ggml.token_type[" + std::to_string(i) + "] = " + std::to_string(ty) + " is not a token type");
    }
    t.vocab.types[i] = ty == 0 ? TokenType::kNormal : static_cast<TokenType>(ty);
  }
  t.vocab.tokens = std::move(v.tokens);
  t.vocab.scores = std::move(v.scores);
  t.vocab.ids.reserve(n);
  for (size_t i = 0; i < n; ++i) t.vocab.ids.try_emplace(t.vocab.tokens[i], static_cast<int32_t>(i));

  auto special = [&](const std::optional<int64_t>& value, const char* key, int32_t fallback) -> int32_t {
    if (!value) return fallback < static_cast<int64_t>(n) ? fallback : -1;
    if (*value == -1) return -1;  // some converters write -1 for "none"
    if (*value < 0 || *value >= static_cast<int64_t>(n)) {
      fail(std::string("tokenizer.ggml.") + key + " = " + std::to_string(*value) + " is out of range [0, " +
           std::to_string(n) + ")");
    }
    return static_cast<int32_t>(*value);
  };
  // SentencePiece vocabs conventionally put <unk>, <s>, </s> at 0, 1, 2.
  t.unk = special(v.unk_id, "unknown_token_id", t.is_spm ? 0 : -1);
  t.bos = special(v.bos_id, "bos_token_id", t.is_spm ? 1 : -1);
  t.eos = special(v.eos_id, "eos_token_id", t.is_spm ? 2 : -1);
  t.eot = special(v.eot_id, "eot_token_id", -1);
  t.eom = special(v.eom_id, "eom_token_id", -1);
  special(v.pad_id, "padding_token_id", -1);

  std::optional<PreInfo> pre;
  if (!t.is_spm) {
    pre = pre_info(v.pre);
    if (!pre) fail("unsupported pre-tokenizer '" + v.pre + "' (tokenizer.ggml.pre)");
  }
  t.add_bos = v.add_bos.value_or(t.is_spm || pre->add_bos);
  t.add_eos = v.add_eos.value_or(false);
  t.add_space_prefix = v.add_space_prefix.value_or(t.is_spm);
  if (t.add_bos && t.bos < 0) fail("add_bos_token is set but there is no bos_token_id");
  if (t.add_eos && t.eos < 0) fail("add_eos_token is set but there is no eos_token_id");

  if (t.is_spm) {
    t.spm.emplace(t.vocab, t.unk);
  } else {
    if (v.merges.empty()) fail("tokenizer.ggml.merges is missing (required for model 'gpt2')");
    t.bpe.emplace(t.vocab, v.merges, pre->kind, pre->ignore_merges, t.unk, src);
  }

  for (int32_t id : {t.eos, t.eot, t.eom}) {
    if (id >= 0) t.end_of_generation.insert(id);
  }
  for (int32_t id = 0; id < t.vocab.size(); ++id) {
    const TokenType ty = t.vocab.types[id];
    const std::string& text = t.vocab.tokens[id];
    if (ty == TokenType::kControl &&
        std::find(kEndOfTurnTexts.begin(), kEndOfTurnTexts.end(), text) != kEndOfTurnTexts.end()) {
      t.end_of_generation.insert(id);
    }
    if (text.empty()) continue;
    const auto first = static_cast<uint8_t>(text[0]);
    if (ty == TokenType::kUserDefined) t.always_by_byte[first].push_back(id);
    if (ty == TokenType::kUserDefined || ty == TokenType::kControl || ty == TokenType::kUnknown) {
      t.parsed_by_byte[first].push_back(id);
    }
  }
  auto longest_first = [&](int32_t a, int32_t b) {
    const size_t la = t.vocab.tokens[a].size();
    const size_t lb = t.vocab.tokens[b].size();
    return la != lb ? la > lb : a < b;
  };
  for (int b = 0; b < 256; ++b) {
    std::sort(t.always_by_byte[b].begin(), t.always_by_byte[b].end(), longest_first);
    std::sort(t.parsed_by_byte[b].begin(), t.parsed_by_byte[b].end(), longest_first);
  }
  t.pieces.resize(n);
  for (int32_t id = 0; id < t.vocab.size(); ++id) t.pieces[id] = t.piece(id);
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(impl)));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  const Impl& t = *impl_;
  std::vector<int32_t> out;
  if (add_special && t.add_bos) out.push_back(t.bos);
  // SentencePiece: text at the start or right after a special token gets the space prefix.
  bool after_special = true;
  for (const Fragment& f : t.partition(text, parse_special)) {
    if (f.token >= 0) {
      out.push_back(f.token);
      after_special = true;
    } else {
      t.encode_text(f.text, t.add_space_prefix && after_special, out);
      after_special = false;
    }
  }
  if (add_special && t.add_eos) out.push_back(t.eos);
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  const Impl& t = *impl_;
  std::string out;
  bool strip_space = t.is_spm && t.add_space_prefix;  // until the first text token
  for (int32_t id : ids) {
    t.check_id(id);
    const TokenType ty = t.vocab.types[id];
    if (ty == TokenType::kControl) {
      if (!skip_special) out += t.pieces[id];
      continue;
    }
    std::string_view p = t.pieces[id];
    if (strip_space && !p.empty() && p[0] == ' ') p.remove_prefix(1);
    strip_space = false;
    out += p;
  }
  return out;
}

std::string Tokenizer::token_to_piece(int32_t id, bool skip_special) const {
  impl_->check_id(id);
  if (skip_special && impl_->vocab.types[id] == TokenType::kControl) return {};
  return impl_->pieces[id];
}

const std::string& Tokenizer::token_text(int32_t id) const {
  impl_->check_id(id);
  return impl_->vocab.tokens[id];
}

TokenType Tokenizer::token_type(int32_t id) const {
  impl_->check_id(id);
  return impl_->vocab.types[id];
}

int32_t Tokenizer::find_token(std::string_view text) const { return impl_->vocab.find(text); }
int32_t Tokenizer::n_vocab() const { return impl_->vocab.size(); }
int32_t Tokenizer::bos_id() const { return impl_->bos; }
int32_t Tokenizer::eos_id() const { return impl_->eos; }
int32_t Tokenizer::unk_id() const { return impl_->unk; }
int32_t Tokenizer::eot_id() const { return impl_->eot; }
bool Tokenizer::add_bos() const { return impl_->add_bos; }
bool Tokenizer::add_eos() const { return impl_->add_eos; }
bool Tokenizer::is_end_of_generation(int32_t id) const { return impl_->end_of_generation.contains(id); }
bool Tokenizer::is_control(int32_t id) const {
  return id >= 0 && id < impl_->vocab.size() && impl_->vocab.types[id] == TokenType::kControl;
}
std::string_view Tokenizer::model_name() const { return impl_->model; }
std::string_view Tokenizer::pre_name() const { return impl_->pre; }

}  // namespace alspec
