#include "batch_attention.h"

#include <algorithm>

#include "decoder.h"

namespace alspec {

void BatchAttention::run(std::span<const BatchRow> rows, int layer, float* attn) {
  if (rows.empty()) return;
  const size_t QD = static_cast<size_t>(rows[0].session->model().config().q_dim());
  approx_.resize(rows.size() * QD);
  done_.assign(rows.size(), false);
  for (size_t i = 0; i < rows.size(); ++i) {
    if (done_[i]) continue;
    Session& first = *rows[i].session;
    const int S = first.spec_chunk(layer);
    const SpecPredictor predictor = first.options().predictor;
    exact_queries_.clear();
    spec_queries_.clear();
    spec_rows_.clear();
    for (size_t j = i; j < rows.size(); ++j) {
      const SessionOptions& o = rows[j].session->options();
      if (done_[j] || rows[j].session->spec_chunk(layer) != S || o.predictor != predictor) continue;
      done_[j] = true;
      const DecodeQuery q = rows[j].session->attention_query(layer, attn + j * QD);
      if (rows[j].spec->mode == AttentionMode::kExact) {
        exact_queries_.push_back(q);
      } else {
        spec_queries_.push_back(SpecDecodeQuery{q, &approx_[j * QD]});
        spec_rows_.push_back(j);
      }
    }
    const AttentionShape shape = first.attention_shape();
    if (!exact_queries_.empty()) flash_decode(first.device(), shape, exact_queries_, S, predictor);
    if (spec_queries_.empty()) continue;
    results_.assign(spec_queries_.size(), SpecResult{});
    // The kernel's lambda only sets `accept`; each row's own lambda is applied below.
    speculative_flash_decode(first.device(), shape, spec_queries_, S, rows[spec_rows_[0]].spec->lambda, results_, [] {},
                             {}, predictor);
    for (size_t k = 0; k < spec_rows_.size(); ++k) {
      const BatchRow& row = rows[spec_rows_[k]];
      SpecResult r = results_[k];
      r.accept = speculation_accepts(r.dist2, r.norm2, row.spec->lambda);
      if (settle_speculation(*row.spec, row.step, layer, r, *row.stats)) {
        std::copy_n(&approx_[spec_rows_[k] * QD], QD, attn + spec_rows_[k] * QD);
      }
    }
  }
}

}  // namespace alspec
