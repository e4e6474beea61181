// Evaluation task files (one JSON object per file, format in docs/eval.md) and the items they
// yield: prompts with targets, multiple-choice sets, texts to score, generated passkey haystacks.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace alspec {
class Tokenizer;
}

namespace alspec::eval {

enum class OutputType { kGenerateUntil, kMultipleChoice, kLoglikelihoodRolling, kPasskey };

const char* output_type_name(OutputType t);

// Passkey retrieval: a number hidden at several depths in haystacks of given token lengths.
struct PasskeyParams {
  std::string haystack;             // resolved path of the filler text
  std::vector<int64_t> lengths;     // prompt lengths in tokens
  std::vector<double> depths;       // needle position as a fraction of the haystack, in [0, 1]
  int samples = 1;                  // items per (length, depth)
  uint64_t seed = 1;
  std::string intro;                // text before the haystack
  std::string needle;               // must contain {passkey}
  std::string question;             // text after the haystack (the answer is generated after it)
};

struct TaskSpec {
  std::string name;
  std::string file;                 // the task file
  OutputType type = OutputType::kGenerateUntil;
  std::string data;                 // resolved data path (.jsonl); empty for passkey
  std::string prompt_template;      // "template": text with {field} placeholders
  std::string target;               // "target": e.g. "{answer}"
  std::string choices;              // multiple_choice: field holding the list of choices
  std::string choice_prefix = " ";  // multiple_choice: put between context and each choice
  std::string answer_regex;         // generate_until/passkey: group 1 (or whole match) is the answer
  bool answer_last_match = false;   // "answer_match": "first" (default) | "last"
  std::vector<std::string> ignore;  // regexes deleted from both answers before comparing
  std::vector<std::string> stop;
  int max_tokens = 256;
  int few_shot = 0;                 // first K items of the data become the examples
  std::string fewshot_separator = "\n\n";
  std::string target_delimiter = " ";  // between a few-shot example's prompt and its target
  int64_t window = 0;               // loglikelihood_rolling: window tokens (0 = context size)
  int64_t stride = 0;               // loglikelihood_rolling: new tokens per window (0 = window/2)
  PasskeyParams passkey;
};

// One scored unit of a task.
struct TaskItem {
  int64_t index = 0;                // among the scored items (few-shot examples excluded)
  std::string prompt;               // full prompt (few-shot included), MC context, or rolling text
  std::string target;               // generate_until/passkey: rendered target
  std::vector<std::string> choices; // multiple_choice
  int gold = -1;                    // multiple_choice: index of the right choice
  nlohmann::json meta = nlohmann::json::object();  // passkey: length, depth, passkey
};

// Parses and validates a task file. Errors name the file, the line and the field:
// Error(kInvalidArgument, "tasks/x.json:4: field 'max_tokens': expected an integer >= 1").
TaskSpec load_task(const std::string& path);

// Resolves a path written in a task file: relative to the task file's directory, then to each of
// its ancestors (so paths relative to the repository root also work). Throws kIo if none exists.
std::string resolve_task_path(const std::string& task_file, const std::string& field, const std::string& rel);

// Items of a task in order; limit > 0 keeps the first `limit`. The tokenizer sizes passkey
// haystacks. Errors name the data file, line and field.
std::vector<TaskItem> load_items(const TaskSpec& task, const Tokenizer& tokenizer, int64_t limit);

}  // namespace alspec::eval
