#include "alspec/eval/task.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "alspec/core/error.h"
#include "alspec/core/read_file.h"
#include "alspec/eval/passkey.h"
#include "alspec/eval/text_template.h"

namespace alspec::eval {
namespace fs = std::filesystem;
using nlohmann::json;

const char* output_type_name(OutputType t) {
  switch (t) {
    case OutputType::kGenerateUntil: return "generate_until";
    case OutputType::kMultipleChoice: return "multiple_choice";
    case OutputType::kLoglikelihoodRolling: return "loglikelihood_rolling";
    case OutputType::kPasskey: return "passkey";
  }
  return "?";
}

namespace {

int64_t line_at(const std::string& text, size_t byte) {
  int64_t line = 1;
  for (size_t i = 0; i < byte && i < text.size(); ++i) line += text[i] == '\n';
  return line;
}

// Field errors point at the line where the key is written (line 1 when it is absent).
class TaskFileReader {
 public:
  TaskFileReader(std::string path, std::string text, json obj)
      : path_(std::move(path)), text_(std::move(text)), obj_(std::move(obj)) {}

  [[noreturn]] void fail(const std::string& field, const std::string& problem) const {
    const size_t at = text_.find("\"" + field + "\"");
    throw_invalid_argument(path_ + ":" + std::to_string(at == std::string::npos ? 1 : line_at(text_, at)) +
                           ": field '" + field + "': " + problem);
  }
  bool has(const std::string& f) const { return obj_.contains(f); }
  std::string str(const std::string& f, bool required, const std::string& def = "") const {
    if (!has(f)) {
      if (required) fail(f, "missing (a string is required)");
      return def;
    }
    if (!obj_[f].is_string()) fail(f, "expected a string, got " + obj_[f].dump());
    return obj_[f].get<std::string>();
  }
  int64_t integer(const std::string& f, int64_t def, int64_t min) const {
    if (!has(f)) return def;
    if (!obj_[f].is_number_integer() || obj_[f].get<int64_t>() < min) {
      fail(f, "expected an integer >= " + std::to_string(min) + ", got " + obj_[f].dump());
    }
    return obj_[f].get<int64_t>();
  }
  std::vector<std::string> strings(const std::string& f) const {
    std::vector<std::string> out;
    if (!has(f)) return out;
    if (!obj_[f].is_array()) fail(f, "expected a list of strings");
    for (const auto& v : obj_[f]) {
      if (!v.is_string()) fail(f, "expected a list of strings, found " + v.dump());
      out.push_back(v.get<std::string>());
    }
    return out;
  }
  template <typename T>
  std::vector<T> numbers(const std::string& f, double min, double max) const {
    if (!has(f) || !obj_[f].is_array() || obj_[f].empty()) fail(f, "expected a non-empty list of numbers");
    std::vector<T> out;
    for (const auto& v : obj_[f]) {
      if (!v.is_number() || v.get<double>() < min || v.get<double>() > max) {
        fail(f, "value " + v.dump() + " is not a number in [" + json(min).dump() + ", " + json(max).dump() + "]");
      }
      out.push_back(v.get<T>());
    }
    return out;
  }
  const json& obj() const { return obj_; }

 private:
  std::string path_, text_;
  json obj_;
};

const std::vector<std::string> kKnownFields = {
    "name", "output_type", "data", "template", "target", "choices", "choice_prefix", "answer_regex", "answer_match",
    "ignore", "stop", "max_tokens", "few_shot", "fewshot_separator", "target_delimiter", "window", "stride",
    "haystack", "lengths", "depths", "samples", "seed", "intro", "needle", "question", "description"};

}  // namespace

std::string resolve_task_path(const std::string& task_file, const std::string& field, const std::string& rel) {
  const fs::path p(rel);
  if (p.is_absolute()) {
    if (fs::exists(p)) return p.string();
  } else {
    // The task file's real location first (symlinks resolved), then the path as given.
    for (const fs::path& file : {fs::weakly_canonical(fs::path(task_file)), fs::absolute(fs::path(task_file))}) {
      for (fs::path dir = file.parent_path();; dir = dir.parent_path()) {
        if (fs::exists(dir / p)) return fs::weakly_canonical(dir / p).string();
        if (dir == dir.parent_path()) break;
      }
    }
  }
  throw Error(ErrorKind::kIo, task_file + ": field '" + field + "': '" + rel +
                                  "' not found (tried relative to the task file's directory and its ancestors)");
}

TaskSpec load_task(const std::string& path) {
  const std::string text = read_file(path);
  json obj;
  try {
    obj = json::parse(text);
  } catch (const json::parse_error& e) {
    throw_invalid_argument(path + ":" + std::to_string(line_at(text, e.byte == 0 ? 0 : e.byte - 1)) +
                           ": invalid JSON: " + e.what());
  }
  if (!obj.is_object()) throw_invalid_argument(path + ":1: a task file holds one JSON object");
  const TaskFileReader r(path, text, obj);
  for (const auto& [k, v] : obj.items()) {
    if (std::find(kKnownFields.begin(), kKnownFields.end(), k) == kKnownFields.end()) r.fail(k, "unknown field");
  }
  TaskSpec t;
  t.file = path;
  t.name = r.str("name", true);
  if (t.name.empty()) r.fail("name", "must not be empty");
  const std::string type = r.str("output_type", true);
  if (type == "generate_until") t.type = OutputType::kGenerateUntil;
  else if (type == "multiple_choice") t.type = OutputType::kMultipleChoice;
  else if (type == "loglikelihood_rolling") t.type = OutputType::kLoglikelihoodRolling;
  else if (type == "passkey") t.type = OutputType::kPasskey;
  else r.fail("output_type", "'" + type + "' is not generate_until, multiple_choice, loglikelihood_rolling or passkey");

  const bool generates = t.type == OutputType::kGenerateUntil || t.type == OutputType::kPasskey;
  if (t.type != OutputType::kPasskey) {
    t.data = resolve_task_path(path, "data", r.str("data", true));
    t.prompt_template = r.str("template", true);
  }
  t.target = r.str("target", t.type == OutputType::kGenerateUntil || t.type == OutputType::kMultipleChoice);
  t.choices = r.str("choices", t.type == OutputType::kMultipleChoice);
  t.choice_prefix = r.str("choice_prefix", false, " ");
  t.answer_regex = r.str("answer_regex", false, t.type == OutputType::kPasskey ? "([0-9]+)" : "");
  const std::string match = r.str("answer_match", false, "first");
  if (match != "first" && match != "last") r.fail("answer_match", "expected \"first\" or \"last\"");
  t.answer_last_match = match == "last";
  t.ignore = r.strings("ignore");
  t.stop = r.strings("stop");
  t.max_tokens = static_cast<int>(r.integer("max_tokens", t.type == OutputType::kPasskey ? 8 : 256, 1));
  t.few_shot = static_cast<int>(r.integer("few_shot", 0, 0));
  if (t.few_shot > 0 && t.type != OutputType::kGenerateUntil && t.type != OutputType::kMultipleChoice) {
    r.fail("few_shot", "only generate_until and multiple_choice tasks take few-shot examples");
  }
  t.fewshot_separator = r.str("fewshot_separator", false, "\n\n");
  t.target_delimiter = r.str("target_delimiter", false, " ");
  t.window = r.integer("window", 0, 0);
  t.stride = r.integer("stride", 0, 0);
  if (t.window == 1) r.fail("window", "a window needs at least 2 tokens");
  if (t.window > 0 && t.stride >= t.window) r.fail("stride", "must be smaller than the window");
  if (!generates && (r.has("answer_regex") || r.has("stop"))) {
    r.fail(r.has("stop") ? "stop" : "answer_regex", "only generate_until and passkey tasks generate text");
  }
  if (t.type == OutputType::kPasskey) {
    auto& p = t.passkey;
    p.haystack = resolve_task_path(path, "haystack", r.str("haystack", true));
    p.lengths = r.numbers<int64_t>("lengths", 16, 1e9);
    p.depths = r.numbers<double>("depths", 0, 1);
    p.samples = static_cast<int>(r.integer("samples", 1, 1));
    p.seed = static_cast<uint64_t>(r.integer("seed", 1, 0));
    p.intro = r.str("intro", false,
                    "There is important information hidden in the text below. Find it and remember it.\n");
    p.needle = r.str("needle", false, "The pass key is {passkey}. Remember it. {passkey} is the pass key.");
    p.question = r.str("question", false, "\nWhat is the pass key? The pass key is");
    if (p.needle.find("{passkey}") == std::string::npos) r.fail("needle", "must contain {passkey}");
    if (t.target.empty()) t.target = "{passkey}";
  }
  return t;
}

namespace {

std::vector<json> read_jsonl(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::kIo, path + ": cannot open");
  std::vector<json> rows;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      rows.push_back(json::parse(line));
    } catch (const json::parse_error& e) {
      throw_invalid_argument(path + ":" + std::to_string(n) + ": invalid JSON: " + e.what());
    }
    if (!rows.back().is_object()) throw_invalid_argument(path + ":" + std::to_string(n) + ": expected a JSON object");
    rows.back()["__line"] = n;
  }
  return rows;
}

std::string where(const TaskSpec& t, const json& row) {
  return t.data + ":" + std::to_string(row["__line"].get<int64_t>());
}

TaskItem multiple_choice_item(const TaskSpec& t, const json& row, const std::string& context) {
  TaskItem item;
  item.prompt = context;
  const std::string w = where(t, row);
  if (!row.contains(t.choices) || !row[t.choices].is_array() || row[t.choices].size() < 2) {
    throw_invalid_argument(w + ": field '" + t.choices + "' must be a list of at least 2 choices");
  }
  for (const auto& c : row[t.choices]) {
    if (!c.is_string() || c.get<std::string>().empty()) {
      throw_invalid_argument(w + ": field '" + t.choices + "': every choice must be a non-empty string");
    }
    item.choices.push_back(c.get<std::string>());
  }
  const std::string gold = render_template(t.target, row, w);
  for (size_t i = 0; i < item.choices.size(); ++i) {
    if (gold == std::to_string(i) || gold == item.choices[i]) item.gold = static_cast<int>(i);
  }
  if (item.gold < 0) {
    throw_invalid_argument(w + ": target '" + gold + "' is neither a choice index nor one of the choices");
  }
  return item;
}

}  // namespace

std::vector<TaskItem> load_items(const TaskSpec& t, const Tokenizer& tokenizer, int64_t limit) {
  std::vector<TaskItem> items;
  if (t.type == OutputType::kPasskey) {
    items = make_passkey_items(t, tokenizer);
  } else {
    const std::vector<json> rows = read_jsonl(t.data);
    if (rows.size() <= static_cast<size_t>(t.few_shot)) {
      throw_invalid_argument(t.file + ": field 'few_shot': " + std::to_string(t.few_shot) + " examples leave no item in " +
                             t.data + " (" + std::to_string(rows.size()) + " rows)");
    }
    std::string shots;
    for (int k = 0; k < t.few_shot; ++k) {
      const json& ex = rows[static_cast<size_t>(k)];
      std::string target = render_template(t.target, ex, where(t, ex));
      if (t.type == OutputType::kMultipleChoice) {  // the example's answer is the gold choice text
        const TaskItem mc = multiple_choice_item(t, ex, "");
        target = mc.choices[static_cast<size_t>(mc.gold)];
      }
      shots += render_template(t.prompt_template, ex, where(t, ex)) + t.target_delimiter + target + t.fewshot_separator;
    }
    for (size_t i = static_cast<size_t>(t.few_shot); i < rows.size(); ++i) {
      if (limit > 0 && static_cast<int64_t>(items.size()) >= limit) break;
      const json& row = rows[i];
      const std::string context = shots + render_template(t.prompt_template, row, where(t, row));
      TaskItem item;
      if (t.type == OutputType::kMultipleChoice) {
        item = multiple_choice_item(t, row, context);
      } else {
        item.prompt = context;
        if (t.type == OutputType::kGenerateUntil) item.target = render_template(t.target, row, where(t, row));
        if (item.prompt.empty()) throw_invalid_argument(where(t, row) + ": the rendered text is empty");
      }
      item.meta["line"] = row["__line"];
      items.push_back(std::move(item));
    }
  }
  if (limit > 0 && static_cast<int64_t>(items.size()) > limit) items.resize(static_cast<size_t>(limit));
  for (size_t i = 0; i < items.size(); ++i) items[i].index = static_cast<int64_t>(i);
  return items;
}

}  // namespace alspec::eval
