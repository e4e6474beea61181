// `alspec synth-model`: writes a random-weight GGUF model of a named shape (see
// model/synthetic_model.h), for tests and benchmarks of shapes without a real checkpoint.
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "alspec/command.h"
#include "alspec/core/dtype.h"
#include "alspec/core/error.h"
#include "alspec/model/synthetic_model.h"

namespace alspec::cli {
namespace {

namespace fs = std::filesystem;

// Where a preset's tokenizer donor lives: assets/<file> of the repository, found from the working
// directory or from the executable (build/bin/alspec) upwards, so it works from any folder of a
// checkout; $ALSPEC_ASSETS_DIR overrides (an installed copy of assets/).
std::string find_vocab(const std::string& vocab) {
  const fs::path rel = vocab == "llama-bpe" ? "tokenizers/ggml-vocab-llama-bpe.gguf" : "models/stories260K.gguf";
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("ALSPEC_ASSETS_DIR")) candidates.push_back(fs::path(env) / rel);
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  for (fs::path start : {fs::current_path(), ec ? fs::path() : exe.parent_path()}) {
    for (fs::path dir = start; !dir.empty(); dir = dir.parent_path()) {
      candidates.push_back(dir / "assets" / rel);
      if (dir == dir.parent_path()) break;
    }
  }
  for (const auto& c : candidates) {
    if (fs::is_regular_file(c)) return c.string();
  }
  throw Error(ErrorKind::kIo, "assets/" + rel.string() +
                                  ": tokenizer donor not found above the working directory or the alspec binary "
                                  "(or in $ALSPEC_ASSETS_DIR); pass --vocab-from");
}

struct Options {
  std::string preset;
  std::string type = "f32";
  int layers = 0;
  uint64_t seed = 1;
  std::string output;  // tied | separate; empty = preset default
  bool rope_freqs_tensor = false;
  std::string vocab_from;
  std::string out;
};

const CommandRegistrar kSynthModel({"synth-model", "Write a random-weight GGUF model of a preset shape",
                                    [](CLI::App& sub) {
  auto o = std::make_shared<Options>();
  std::string presets;
  for (const auto& n : synthetic_preset_names()) presets += (presets.empty() ? "" : ", ") + n;
  sub.add_option("--preset", o->preset, "Shape: " + presets)->required();
  sub.add_option("--type", o->type, "Weight type: f32 f16 bf16 q8_0 q4_0 q4_k q6_k")->capture_default_str();
  sub.add_option("--layers", o->layers, "Override the preset's layer count")->check(CLI::PositiveNumber);
  sub.add_option("--seed", o->seed, "Weight generator seed")->capture_default_str();
  sub.add_option("--output", o->output, "Classifier: tied (shares the embedding) or separate")
      ->check(CLI::IsMember({"tied", "separate"}));
  sub.add_flag("--rope-freqs-tensor", o->rope_freqs_tensor,
               "Store llama3 rope scaling as the rope_freqs.weight tensor instead of metadata");
  sub.add_option("--vocab-from", o->vocab_from, "GGUF whose tokenizer is copied (default: the preset's)");
  sub.add_option("--out", o->out, "Output GGUF path")->required();
  return std::function<int()>([o] {
    SyntheticModelSpec spec = synthetic_preset(o->preset);
    const auto type = dtype_from_name(o->type);
    if (!type) throw_invalid_argument("--type: unknown type '" + o->type + "'");
    spec.weight_type = *type;
    spec.seed = o->seed;
    if (o->layers > 0) spec.n_layers = o->layers;
    if (!o->output.empty()) spec.tied_output = o->output == "tied";
    if (o->rope_freqs_tensor) {
      if (spec.rope_scaling == SyntheticRopeScaling::kNone)
        throw_invalid_argument("--rope-freqs-tensor: preset '" + o->preset + "' has no rope scaling");
      spec.rope_scaling = SyntheticRopeScaling::kFreqsTensor;
    }
    spec.tokenizer_donor = o->vocab_from.empty() ? find_vocab(synthetic_preset_vocab(o->preset)) : o->vocab_from;
    write_synthetic_model(spec, o->out);
    std::cout << o->out << "\n";
    return 0;
  });
}});

}  // namespace
}  // namespace alspec::cli
