// Task files, data items, templates and passkey haystacks.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "alspec/core/error.h"
#include "alspec/eval/passkey.h"
#include "alspec/eval/task.h"
#include "alspec/eval/text_template.h"
#include "alspec/model/model.h"
#include "alspec/tokenizer/tokenizer.h"

namespace alspec::eval {
namespace {
namespace fs = std::filesystem;

const std::string kTasks = std::string(ALSPEC_SOURCE_DIR) + "/tests/eval/tasks/";
const std::string kModel = std::string(ALSPEC_SOURCE_DIR) + "/assets/models/stories260K.gguf";

class TempDir {
 public:
  TempDir() : path_(fs::temp_directory_path() / ("alspec-eval-task-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
                                                 ::testing::UnitTest::GetInstance()->current_test_info()->name())) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name) << text;
    return (path_ / name).string();
  }

 private:
  fs::path path_;
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(TextTemplate, FillsFieldsAndEscapes) {
  const nlohmann::json row = {{"q", "2+2"}, {"n", 4}};
  EXPECT_EQ(render_template("Q: {q} = {n} {{x}}", row, "w"), "Q: 2+2 = 4 {x}");
  EXPECT_NE(error_of([&] { render_template("{missing}", row, "data.jsonl:3"); }).find("data.jsonl:3: field 'missing'"),
            std::string::npos);
  EXPECT_NE(error_of([&] { render_template("a {q", row, "w"); }).find("unclosed"), std::string::npos);
  EXPECT_NE(error_of([&] { render_template("a } b", row, "w"); }).find("unmatched"), std::string::npos);
}

TEST(TaskFile, ShippedTasksLoad) {
  for (const char* f : {"tiny_generate.json", "tiny_choice.json", "tiny_rolling.json", "tiny_passkey.json"}) {
    const TaskSpec t = load_task(kTasks + f);
    EXPECT_FALSE(t.name.empty()) << f;
  }
  const TaskSpec g = load_task(std::string(ALSPEC_SOURCE_DIR) + "/tasks/gsm8k.json");
  EXPECT_EQ(g.type, OutputType::kGenerateUntil);
  EXPECT_TRUE(fs::exists(g.data)) << g.data;  // assets/ resolved from an ancestor of tasks/
  for (const char* f : {"passkey.json", "passkey-512.json", "passkey-long.json"}) {
    const TaskSpec p = load_task(std::string(ALSPEC_SOURCE_DIR) + "/tasks/" + f);
    EXPECT_TRUE(fs::exists(p.passkey.haystack)) << f << ": " << p.passkey.haystack;
  }
}

TEST(TaskFile, ErrorsNameFileLineAndField) {
  TempDir d;
  d.write("items.jsonl", "{\"q\": \"a\", \"a\": \"1\"}\n");
  const std::string bad_json = d.write("bad.json", "{\n  \"name\": \"x\",\n  \"output_type\" \"generate_until\"\n}\n");
  EXPECT_NE(error_of([&] { load_task(bad_json); }).find("bad.json:3: invalid JSON"), std::string::npos)
      << error_of([&] { load_task(bad_json); });
  const std::string bad_field = d.write(
      "field.json",
      "{\n  \"name\": \"x\",\n  \"output_type\": \"generate_until\",\n  \"data\": \"items.jsonl\",\n  \"template\": \"{q}\",\n"
      "  \"target\": \"{a}\",\n  \"max_tokens\": \"many\"\n}\n");
  EXPECT_NE(error_of([&] { load_task(bad_field); }).find("field.json:7: field 'max_tokens'"), std::string::npos)
      << error_of([&] { load_task(bad_field); });
  const std::string bad_type = d.write("type.json", "{\"name\": \"x\", \"output_type\": \"essay\"}");
  EXPECT_NE(error_of([&] { load_task(bad_type); }).find("field 'output_type': 'essay'"), std::string::npos);
  const std::string unknown = d.write("unknown.json", "{\"name\": \"x\", \"output_type\": \"generate_until\", \"tempalte\": 1}");
  EXPECT_NE(error_of([&] { load_task(unknown); }).find("field 'tempalte': unknown field"), std::string::npos);
  const std::string no_data = d.write(
      "nodata.json", "{\"name\": \"x\", \"output_type\": \"generate_until\", \"data\": \"nope.jsonl\", \"template\": \"{q}\", \"target\": \"{a}\"}");
  EXPECT_NE(error_of([&] { load_task(no_data); }).find("field 'data': 'nope.jsonl' not found"), std::string::npos);
}

TEST(TaskItems, DataErrorsNameLineAndField) {
  TempDir d;
  auto tok_model = Model::load(kModel);
  d.write("rows.jsonl", "{\"q\": \"a\", \"a\": \"1\"}\n{\"q\": \"b\"}\n");
  const std::string task = d.write(
      "t.json", "{\"name\": \"x\", \"output_type\": \"generate_until\", \"data\": \"rows.jsonl\", \"template\": \"{q}\", \"target\": \"{a}\"}");
  const std::string e = error_of([&] { load_items(load_task(task), tok_model->tokenizer(), 0); });
  EXPECT_NE(e.find("rows.jsonl:2: field 'a' is missing"), std::string::npos) << e;
  d.write("broken.jsonl", "{\"q\": \"a\", \"a\": \"1\"}\n{\"q\": \n");
  const std::string task2 = d.write(
      "t2.json", "{\"name\": \"x\", \"output_type\": \"generate_until\", \"data\": \"broken.jsonl\", \"template\": \"{q}\", \"target\": \"{a}\"}");
  const std::string e2 = error_of([&] { load_items(load_task(task2), tok_model->tokenizer(), 0); });
  EXPECT_NE(e2.find("broken.jsonl:2: invalid JSON"), std::string::npos) << e2;
}

TEST(TaskItems, FewShotExamplesAreExcludedAndPrepended) {
  auto model = Model::load(kModel);
  const TaskSpec t = load_task(kTasks + "tiny_generate.json");
  const auto items = load_items(t, model->tokenizer(), 0);
  ASSERT_EQ(items.size(), 3u);  // 4 rows, 1 few-shot example
  EXPECT_EQ(items[0].prompt.rfind("Once upon a time", 0), 0u);
  EXPECT_NE(items[0].prompt.find("to the park with her mom. Lily\nTom had a red ball."), std::string::npos) << items[0].prompt;
  EXPECT_EQ(items[0].target, "Max");
  EXPECT_EQ(load_items(t, model->tokenizer(), 2).size(), 2u);
}

TEST(TaskItems, MultipleChoiceGoldByIndexOrText) {
  auto model = Model::load(kModel);
  const auto items = load_items(load_task(kTasks + "tiny_choice.json"), model->tokenizer(), 0);
  ASSERT_EQ(items.size(), 4u);
  EXPECT_EQ(items[0].gold, 0);
  EXPECT_EQ(items[3].gold, 1);  // given as the choice text "cry."
  EXPECT_EQ(items[3].choices.size(), 3u);
}

TEST(Passkey, NeedleAtDepthAndLengthNearTarget) {
  auto model = Model::load(kModel);
  const Tokenizer& tok = model->tokenizer();
  const TaskSpec t = load_task(kTasks + "tiny_passkey.json");
  const auto items = make_passkey_items(t, tok);
  ASSERT_EQ(items.size(), 6u);  // 2 lengths x 3 depths
  for (const auto& item : items) {
    const std::string key = std::to_string(item.meta["passkey"].get<int>());
    ASSERT_EQ(key.size(), 5u);
    EXPECT_EQ(item.target, key);
    const size_t at = item.prompt.find("The pass key is " + key + ".");
    ASSERT_NE(at, std::string::npos);
    const int64_t target = item.meta["target_length"].get<int64_t>();
    const int64_t actual = static_cast<int64_t>(tok.encode(item.prompt, true).size());
    EXPECT_EQ(actual, item.meta["length"].get<int64_t>());
    EXPECT_LE(actual, target);
    EXPECT_GE(actual, target - 8);  // re-tokenisation at the seams costs a few tokens at most
    const double rel = static_cast<double>(at) / static_cast<double>(item.prompt.size());
    const double depth = item.meta["depth"].get<double>();
    EXPECT_NEAR(rel, 0.1 + 0.7 * depth, 0.25) << "depth " << depth;  // intro before, question after
  }
  // Seeded: the same items every time.
  EXPECT_EQ(make_passkey_items(t, tok)[3].prompt, items[3].prompt);
}

}  // namespace
}  // namespace alspec::eval
