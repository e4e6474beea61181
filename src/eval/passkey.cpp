#include "alspec/eval/passkey.h"

#include <cmath>

#include "alspec/core/error.h"
#include "alspec/core/read_file.h"
#include "alspec/eval/text_template.h"
#include "alspec/tokenizer/tokenizer.h"

namespace alspec::eval {
namespace {

uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Whitespace runs collapse to one space so that line breaks of the filler do not dominate.
std::string load_filler(const std::string& path) {
  const std::string text = read_file(path, "the passkey haystack");
  std::string out;
  bool space = false;
  for (char c : text) {
    const bool ws = c == ' ' || c == '\n' || c == '\r' || c == '\t';
    if (ws) {
      space = true;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += c;
  }
  if (out.size() < 1000) throw_invalid_argument(path + ": the passkey haystack text is too short (< 1000 bytes)");
  return out;
}

// `n_tokens` tokens of filler starting at the first sentence start at or after `offset`.
std::string filler_run(const std::string& filler, size_t offset, int64_t n_tokens, const Tokenizer& tok) {
  size_t start = filler.find(". ", offset);
  start = start == std::string::npos ? 0 : start + 2;
  std::vector<int32_t> ids;
  for (size_t chars = static_cast<size_t>(n_tokens) * 8 + 256;; chars *= 2) {
    std::string chunk(chars, ' ');
    for (size_t i = 0; i < chars; ++i) chunk[i] = filler[(start + i) % filler.size()];  // wraps around
    ids = tok.encode(chunk, false);
    if (static_cast<int64_t>(ids.size()) >= n_tokens + 1) break;
  }
  ids.resize(static_cast<size_t>(n_tokens));  // +1 above: the last token of a chunk may be cut mid-word
  return tok.decode(ids);
}

// Sentence boundary nearest to `at` (the needle goes between sentences), else the nearest space.
size_t insertion_point(const std::string& hay, double depth) {
  const size_t at = static_cast<size_t>(std::llround(depth * static_cast<double>(hay.size())));
  if (at == 0 || at >= hay.size()) return std::min(at, hay.size());
  size_t best = std::string::npos;
  for (const std::string sep : {". ", " "}) {
    const size_t before = hay.rfind(sep, at);
    const size_t after = hay.find(sep, at);
    for (size_t c : {before, after}) {
      if (c == std::string::npos) continue;
      c += sep.size();
      if (best == std::string::npos || (c > at ? c - at : at - c) < (best > at ? best - at : at - best)) best = c;
    }
    if (best != std::string::npos) return best;
  }
  return at;
}

}  // namespace

std::vector<TaskItem> make_passkey_items(const TaskSpec& task, const Tokenizer& tok) {
  const PasskeyParams& p = task.passkey;
  const std::string filler = load_filler(p.haystack);
  std::vector<TaskItem> items;
  for (size_t li = 0; li < p.lengths.size(); ++li) {
    for (size_t di = 0; di < p.depths.size(); ++di) {
      for (int s = 0; s < p.samples; ++s) {
        uint64_t state = p.seed ^ (li * 0x100000001b3ULL) ^ (di << 20) ^ (static_cast<uint64_t>(s) << 40);
        const int passkey = 10000 + static_cast<int>(splitmix64(state) % 90000);
        const size_t offset = splitmix64(state) % filler.size();
        const nlohmann::json fields = {{"passkey", std::to_string(passkey)}};
        const std::string where = task.file + ": passkey item";
        const std::string needle = render_template(p.needle, fields, where);
        const int64_t target = p.lengths[li];
        const int64_t overhead = static_cast<int64_t>(tok.encode(p.intro + needle + " " + p.question, true).size());
        int64_t hay_tokens = target - overhead;
        std::string prompt;
        int64_t actual = 0;
        for (int attempt = 0; attempt < 8; ++attempt) {
          if (hay_tokens < 1) {
            throw_invalid_argument(task.file + ": field 'lengths': " + std::to_string(target) +
                                   " tokens leave no room for a haystack (intro, needle and question take " +
                                   std::to_string(overhead) + ")");
          }
          const std::string hay = filler_run(filler, offset, hay_tokens, tok);
          const size_t at = insertion_point(hay, p.depths[di]);
          const std::string before = hay.substr(0, at), after = hay.substr(at);
          const char* pad_before = !before.empty() && before.back() != ' ' ? " " : "";
          const char* pad_after = !after.empty() && after.front() != ' ' ? " " : "";
          prompt = p.intro + before + pad_before + needle + pad_after + after + p.question;
          actual = static_cast<int64_t>(tok.encode(prompt, true).size());
          if (actual <= target) break;
          hay_tokens -= actual - target;  // re-tokenisation at the seams added tokens
        }
        TaskItem item;
        item.prompt = prompt;
        item.target = render_template(task.target, fields, where);
        item.meta = {{"passkey", passkey}, {"length", actual}, {"target_length", target}, {"depth", p.depths[di]},
                     {"sample", s}};
        items.push_back(std::move(item));
      }
    }
  }
  return items;
}

}  // namespace alspec::eval
