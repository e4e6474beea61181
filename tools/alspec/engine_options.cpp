#include "engine_options.h"

#include <cctype>
#include <climits>
#include <fstream>
#include <sstream>

#include "alspec/core/error.h"
#include "alspec/model/kv_cache.h"
#include "alspec/runtime/device.h"
#include "alspec/spec/spec_budget.h"
#include "parallel.h"

namespace alspec::cli {

void EngineArgs::add_to(CLI::App& app, bool with_attention) {
  app.add_option("-m,--model", model, "GGUF model file")->required();
  app.add_option("-t,--threads", threads, "Threads per device (0 = available cores / devices)");
  app.add_option("-c,--ctx-size", ctx_size, "KV cache capacity in tokens (0 = min(model context, 4096))");
  app.add_option("--kv-type", kv_type, "KV cache element type: f32, f16, bf16, q8_0")->capture_default_str();
  add_parallel_to(app);
  if (!with_attention) return;
  app.add_option("--attention", attention, "Attention mode: exact, static, simulate, alspec")->capture_default_str();
  app.add_option("--lambda", lambda, "Speculation threshold: accept iff ||O_spec-O||^2 <= lambda^2 ||O||^2")
      ->capture_default_str();
  app.add_option("--spec-chunk", spec_chunk,
                 "S: sink and window size in tokens (0 = auto: a power of two in [16,128], ~ctx/32)");
  app.add_option("--predictor", predictor,
                 "O_spec rows: sink-window (first and last S tokens) or quest (sink page, last S/2 tokens and the "
                 "key pages with the largest q.k bound; same 2S budget; S >= 64)")
      ->capture_default_str();
  app.add_option("--spec-budgets", spec_budgets,
                 "Per-layer S from a budgets file (alspec predictor-sweep --budgets-out): sets S per layer and "
                 "the predictor; replaces --spec-chunk");
  app.add_option("--devices", devices, "Number of devices (alspec: 2)");
  app.add_option("--device-cores", device_cores, "Core sets per device, e.g. '0;1' or '0,1;2,3'");
}

void EngineArgs::add_parallel_to(CLI::App& app) {
  app.add_option("--tp", tp, "Tensor-parallel ranks per group: run under mpirun -np T (or -np 2T with --attention alspec)")
      ->capture_default_str();
  app.add_option("--tp-chunks", tp_chunks,
                 "C: o_proj/ffn_down reduction chunks, summed in fixed order so results do not depend on T "
                 "(0 = under mpirun the largest power of two <= 8 dividing the KV heads, alone 1)");
}

std::unique_ptr<Model> EngineArgs::load_model() const { return load_model_for_job(model, tp, tp_chunks); }

void apply_spec_budgets(const std::string& path, EngineOptions& o) {
  const SpecBudgets b = load_spec_budgets(path);
  if (o.spec.spec_chunk != 0) throw_invalid_argument("--spec-budgets replaces --spec-chunk: give one of them");
  // The file names its predictor; --predictor may repeat it (the default, sink-window, yields).
  if (o.predictor != b.predictor && o.predictor != SpecPredictor::kSinkWindow) {
    throw_invalid_argument(std::string("--predictor ") + spec_predictor_name(o.predictor) + ": " + path +
                           " was calibrated for " + spec_predictor_name(b.predictor));
  }
  o.predictor = b.predictor;
  o.layer_spec_chunk = b.spec_chunk;
  o.spec.spec_chunk = b.mean_spec_chunk;  // reported as S; the layers use their own
}

EngineOptions EngineArgs::to_options() const {
  EngineOptions o;
  o.groups = &process_groups(tp);
  o.threads = threads;
  o.ctx_size = ctx_size;
  const auto kv = dtype_from_name(kv_type);
  if (!kv || !is_kv_cache_type(*kv)) throw_invalid_argument("--kv-type '" + kv_type + "' is not one of f32, f16, bf16, q8_0");
  o.kv_type = *kv;
  o.spec.mode = parse_attention_mode(attention);
  o.spec.lambda = lambda;
  o.spec.spec_chunk = spec_chunk;
  o.predictor = parse_spec_predictor(predictor);
  if (!spec_budgets.empty()) apply_spec_budgets(spec_budgets, o);
  o.devices = devices;
  if (o.groups->distributed() && devices > 1) {
    throw_invalid_argument("--devices " + std::to_string(devices) +
                           ": under mpirun every rank runs one device (alspec's two sides are two groups of ranks)");
  }
  if (!device_cores.empty()) o.device_cores = parse_device_cores(device_cores);
  return o;
}

std::vector<int32_t> parse_token_ids(const std::string& s, const std::string& option) {
  // "@FILE": the ids from a file (commas or white space between them). A 32K-token prompt
  // spelled out is ~200 KB, over the kernel's 128 KiB limit for one command-line argument.
  const bool from_file = !s.empty() && s[0] == '@';
  std::string list = s;
  if (from_file) {
    std::ifstream in(s.substr(1));
    if (!in) throw Error(ErrorKind::kIo, option + ": cannot read " + s.substr(1));
    std::stringstream content;
    content << in.rdbuf();
    list = content.str();
    for (char& ch : list) {
      if (std::isspace(static_cast<unsigned char>(ch)) != 0) ch = ',';
    }
  }
  std::vector<int32_t> ids;
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty() && from_file) continue;  // runs of separators in a file
    try {
      size_t pos = 0;
      const long v = std::stol(item, &pos);
      if (pos != item.size() || v < INT32_MIN || v > INT32_MAX) throw std::invalid_argument(item);
      ids.push_back(static_cast<int32_t>(v));
    } catch (const std::exception&) {
      throw_invalid_argument(option + ": '" + item + "' is not a token id");
    }
  }
  return ids;
}

}  // namespace alspec::cli
