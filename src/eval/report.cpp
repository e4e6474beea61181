#include "alspec/eval/report.h"

#include <cstdio>
#include <functional>
#include <map>
#include <set>
#include <sstream>

namespace alspec::eval {
namespace {
using json = nlohmann::json;

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string num(const json& v, const char* f) { return v.is_number() ? fmt(f, v.get<double>()) : "—"; }
std::string percent(const json& v) { return v.is_number() ? fmt("%.1f%%", 100.0 * v.get<double>()) : "—"; }

// Result of one task at one sweep key, or null.
const json* find(const json& task, const std::string& key) {
  for (const auto& r : task["results"]) {
    if (r["config"]["key"] == key) return &r;
  }
  return nullptr;
}

std::string task_label(const json& task) {
  const json& r = task["results"][0];
  return task["name"].get<std::string>() + " (" + r["metric"].get<std::string>() +
         (r["higher_is_better"].get<bool>() ? " ↑" : " ↓") + ")";
}

// Columns of the table for one S: exact, static, then speculative modes by lambda.
std::vector<json> columns_for(const json& results, const json& s) {
  std::vector<json> cols;
  std::set<std::string> seen;
  for (const auto& task : results["tasks"]) {
    for (const auto& r : task["results"]) {
      const json& c = r["config"];
      if (c["mode"] != "exact" && c["spec_chunk"] != s) continue;
      if (seen.insert(c["key"].get<std::string>()).second) cols.push_back(c);
    }
  }
  return cols;
}

void table(std::ostringstream& o, const json& results, const std::vector<json>& cols,
           const std::function<std::string(const json& result)>& cell) {
  o << "| task |";
  for (const auto& c : cols) o << " " << c["label"].get<std::string>() << " |";
  o << "\n|---|";
  for (size_t i = 0; i < cols.size(); ++i) o << "---|";
  o << "\n";
  for (const auto& task : results["tasks"]) {
    o << "| " << task_label(task) << " |";
    for (const auto& c : cols) {
      const json* r = find(task, c["key"].get<std::string>());
      o << " " << (r ? cell(*r) : std::string("—")) << " |";
    }
    o << "\n";
  }
  o << "\n";
}

std::string score_text(const json& r) {
  return r["metric"] == "perplexity" ? num(r["score"], "%.3f") : num(r["score"], "%.3f");
}

}  // namespace

std::string render_report(const json& results) {
  std::ostringstream o;
  const json& m = results["model"];
  const json& s = results["settings"];
  o << "# alspec eval report\n\n";
  o << "- model: `" << m["path"].get<std::string>() << "` (" << m["arch"].get<std::string>() << ", "
    << m["n_layers"] << " layers, vocab " << m["n_vocab"] << ")\n";
  o << "- alspec " << s.value("alspec_version", std::string("?")) << ", context " << s["ctx_size"] << ", KV "
    << s["kv_type"].get<std::string>() << ", " << s["threads"] << " threads"
    << (s["limit"].get<int64_t>() > 0 ? ", limit " + s["limit"].dump() + " items per task" : std::string()) << "\n";
  o << "- items: ";
  for (const auto& t : results["tasks"]) o << t["name"].get<std::string>() << " " << t["n_items"] << "; ";
  // Scoring time as recorded per item (also for resumed items), then this run's wall time.
  double scored = 0;
  for (const auto& t : results["tasks"]) {
    for (const auto& r : t["results"]) scored += r["seconds"].get<double>();
  }
  o << "scoring time " << fmt("%.1f", scored) << " s summed over items and sweep points; this run "
    << fmt("%.1f", results["timings"]["total_seconds"].get<double>()) << " s wall (" << results["timings"]["resumed_units"]
    << " units resumed)\n\n";
  o << "Cells are `score / hit rate`: hit rate = accepted / checked attention calls over all layers and decode steps "
       "(calls with L <= 2S are exact and not counted). ↑/↓: higher/lower is better. — : no checks.\n\n";

  std::set<int64_t> chunks;
  for (const auto& t : results["tasks"]) {
    for (const auto& r : t["results"]) {
      if (r["config"]["spec_chunk"].is_number()) chunks.insert(r["config"]["spec_chunk"].get<int64_t>());
    }
  }
  if (chunks.empty()) chunks.insert(0);
  for (int64_t chunk : chunks) {
    const json sj = chunk > 0 ? json(chunk) : json();
    const auto cols = columns_for(results, sj);
    const std::string suffix = chunk > 0 ? " (S = " + std::to_string(chunk) + ")" : "";
    o << "## Score / hit rate" << suffix << "\n\n";
    table(o, results, cols, [](const json& r) {
      return r["config"]["mode"] == "exact" ? score_text(r) : score_text(r) + " / " + percent(r["hit_rate"]);
    });
    o << "## Mean KL(exact ‖ mode) of the next-token distributions" << suffix << "\n\n";
    table(o, results, cols, [](const json& r) { return num(r["kl_mean"], "%.3g"); });
    o << "## Top-1 agreement with exact" << suffix << "\n\n";
    table(o, results, cols, [](const json& r) { return percent(r["top1"]); });
  }

  o << "## Hit rate by layer\n\n";
  for (const auto& t : results["tasks"]) {
    const size_t n_layers = t["results"][0]["per_layer"].size();
    o << "### " << t["name"].get<std::string>() << "\n\n| sweep point |";
    for (size_t l = 0; l < n_layers; ++l) o << " L" << l << " |";
    o << "\n|---|";
    for (size_t l = 0; l < n_layers; ++l) o << "---|";
    o << "\n";
    for (const auto& r : t["results"]) {
      if (r["checks"].get<int64_t>() == 0) continue;
      o << "| " << r["config"]["label"].get<std::string>() << " |";
      for (const auto& l : r["per_layer"]) o << " " << percent(l["hit_rate"]) << " |";
      o << "\n";
    }
    o << "\n";
  }

  for (const auto& t : results["tasks"]) {
    if (t["output_type"] != "passkey") continue;
    o << "## Passkey retrieval accuracy by length × depth: " << t["name"].get<std::string>() << "\n\n";
    for (const auto& r : t["results"]) {
      std::set<double> depths;
      std::map<int64_t, std::map<double, double>> acc;
      for (const auto& c : r["metrics"]["grid"]) {
        depths.insert(c["depth"].get<double>());
        acc[c["length"].get<int64_t>()][c["depth"].get<double>()] = c["accuracy"].get<double>();
      }
      o << "**" << r["config"]["label"].get<std::string>() << "**\n\n| length \\ depth |";
      for (double d : depths) o << " " << fmt("%g", d) << " |";
      o << "\n|---|";
      for (size_t i = 0; i < depths.size(); ++i) o << "---|";
      o << "\n";
      for (const auto& [len, row] : acc) {
        o << "| " << len << " |";
        for (double d : depths) o << " " << (row.count(d) ? fmt("%.2f", row.at(d)) : "—") << " |";
        o << "\n";
      }
      o << "\n";
    }
  }
  return o.str();
}

}  // namespace alspec::eval
