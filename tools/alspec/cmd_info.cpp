// `alspec info`: architecture, shapes, tensor types, tokenizer, context of a model.
#include <iostream>
#include <nlohmann/json.hpp>

#include "alspec/command.h"
#include "alspec/core/error.h"
#include "alspec/core/read_file.h"
#include "alspec/gguf/gguf_file.h"
#include "alspec/model/model.h"
#include "alspec/tokenizer/tokenizer.h"

namespace alspec::cli {
namespace {

const char* rope_style_name(RopeStyle s) { return s == RopeStyle::kNeox ? "neox" : "adjacent-pairs"; }

const CommandRegistrar kInfo({"info", "Show a model's architecture, shapes, tensor types, tokenizer", [](CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  app.add_option("-m,--model", *path, "GGUF model file")->required();
  app.add_flag("--json", *json, "Print JSON");
  return std::function<int()>([path, json] {
    auto m = Model::load(*path);
    const auto& c = m->config();
    const auto& t = m->tokenizer();
    nlohmann::json j;
    j["path"] = *path;
    j["name"] = c.name;
    j["gguf_version"] = m->file().version();
    j["architecture"] = c.arch_name;
    j["layers"] = c.n_layers;
    j["embedding"] = c.n_embd;
    j["heads"] = c.n_head;
    j["kv_heads"] = c.n_head_kv;
    j["head_dim"] = c.head_dim;
    j["ffn"] = c.n_ff;
    j["vocab"] = c.n_vocab;
    j["context_length"] = c.context_length;
    j["rms_eps"] = c.rms_eps;
    j["rope"] = {{"style", rope_style_name(c.rope_style)}, {"base", c.rope_base}, {"dim", c.rope_dim},
                 {"scaling", c.rope_scaling}, {"factor", c.rope_scaling_factor}};
    j["qkv_bias"] = c.has_qkv_bias;
    j["tied_output"] = c.tied_output;
    nlohmann::json types;
    for (const auto& [name, n] : m->tensor_type_counts()) types[name] = n;
    j["tensor_types"] = types;
    j["tensors"] = m->file().tensors().size();
    j["weight_bytes_per_token"] = m->weight_bytes_per_token();
    j["tokenizer"] = {{"model", t.model_name()}, {"pre", t.pre_name()}, {"bos", t.bos_id()}, {"eos", t.eos_id()},
                      {"add_bos", t.add_bos()}};
    if (*json) {
      std::cout << j.dump(2) << "\n";
      return 0;
    }
    std::cout << "model        " << *path << (c.name.empty() ? "" : " (" + c.name + ")") << "\n"
              << "architecture " << c.arch_name << ", GGUF v" << m->file().version() << "\n"
              << "layers       " << c.n_layers << "\n"
              << "embedding    " << c.n_embd << ", ffn " << c.n_ff << "\n"
              << "attention    " << c.n_head << " query heads, " << c.n_head_kv << " KV heads, head_dim " << c.head_dim
              << (c.has_qkv_bias ? ", QKV bias" : "") << "\n"
              << "rope         " << rope_style_name(c.rope_style) << ", base " << c.rope_base << ", scaling "
              << c.rope_scaling << "\n"
              << "context      " << c.context_length << "\n"
              << "vocab        " << c.n_vocab << " (" << t.model_name() << ", pre " << t.pre_name() << ", bos "
              << t.bos_id() << ", eos " << t.eos_id() << ")\n"
              << "output       " << (c.tied_output ? "tied to token embedding" : "separate") << "\n"
              << "tensors      " << m->file().tensors().size() << ":";
    for (const auto& [name, n] : m->tensor_type_counts()) std::cout << " " << name << " x" << n;
    std::cout << "\nweights/token " << (m->weight_bytes_per_token() / 1e6) << " MB read per decode step\n";
    return 0;
  });
}});

const CommandRegistrar kTokenize({"tokenize", "Print the token ids of a text as a JSON array", [](CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto text = std::make_shared<std::string>();
  auto no_bos = std::make_shared<bool>(false);
  auto special = std::make_shared<bool>(false);
  auto pieces = std::make_shared<bool>(false);
  app.add_option("-m,--model", *path, "GGUF model (or vocabulary-only GGUF)")->required();
  auto text_file = std::make_shared<std::string>();
  auto* text_opt = app.add_option("--text", *text, "Text to tokenize");
  // Long texts (a 32K-token prompt is ~150 KB) exceed what one command-line argument may hold.
  app.add_option("--text-file", *text_file, "Read the text to tokenize from this file (UTF-8)")
      ->check(CLI::ExistingFile)
      ->excludes(text_opt);
  app.add_flag("--no-bos", *no_bos, "Do not add BOS/EOS per the model's rules");
  app.add_flag("--parse-special", *special, "Recognise special-token texts in the input");
  app.add_flag("--pieces", *pieces, "Print [id, piece] pairs");
  return std::function<int()>([=] {
    if (text_file->empty() && text_opt->count() == 0) {
      throw_invalid_argument("tokenize: give --text or --text-file");
    }
    if (!text_file->empty()) *text = read_file(*text_file);
    auto f = gguf::GgufFile::open(*path);
    auto tok = Tokenizer::from_gguf(*f);
    const auto ids = tok->encode(*text, !*no_bos, *special);
    nlohmann::json j = nlohmann::json::array();
    for (int32_t id : ids) {
      if (*pieces) {
        j.push_back({id, tok->token_to_piece(id, false)});
      } else {
        j.push_back(id);
      }
    }
    std::cout << j.dump() << "\n";
    return 0;
  });
}});

}  // namespace
}  // namespace alspec::cli
