#include "alspec/perf/tp_split.h"

#include <algorithm>
#include <cmath>

#include "alspec/core/error.h"

namespace alspec::perf {

namespace {
void split_rows(MatrixShape& m, int tp) {
  m.rows /= tp;
  m.bytes /= tp;
}
void split_cols(MatrixShape& m, int tp) {
  m.cols /= tp;
  m.bytes /= tp;
}
}  // namespace

MatrixShape column_chunk(const MatrixShape& m, int k) {
  MatrixShape c = m;
  split_cols(c, std::max(1, k));
  return c;
}

ModelShape shard(const ModelShape& s, int tp, int chunks) {
  if (tp < 1) throw_invalid_argument("--tp must be >= 1, got " + std::to_string(tp));
  if (tp == 1) return s;
  auto need = [&](int v, const char* what) {
    if (v % tp != 0) {
      throw_invalid_argument("tensor parallel " + std::to_string(tp) + " does not divide " + what + " (" +
                             std::to_string(v) + ") of " + s.name);
    }
  };
  need(s.n_head, "the query heads");
  need(s.n_head_kv, "the KV heads");
  need(s.n_ff, "the FFN width");
  ModelShape r = s;
  r.n_head /= tp;
  r.n_head_kv /= tp;
  r.n_ff /= tp;
  for (auto& l : r.layers) {
    split_rows(l.wq, tp);
    split_rows(l.wk, tp);
    split_rows(l.wv, tp);
    split_cols(l.wo, tp);
    split_rows(l.w_gate, tp);
    split_rows(l.w_up, tp);
    split_cols(l.w_down, tp);
  }
  r.output.rows = std::ceil(r.output.rows / tp);
  r.output.bytes = s.output.bytes / tp;
  r.n_vocab = static_cast<int>(r.output.rows);
  r.chunks_per_rank = chunks > 0 ? std::max(1, chunks / tp) : 1;
  return r;
}

}  // namespace alspec::perf
