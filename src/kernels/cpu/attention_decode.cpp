// flash_decode and speculative_flash_decode: the shared partition plan, the task phases and the
// final in-order merge (see attention.h for the plan and docs/attention.md for the reasoning).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "alspec/core/error.h"
#include "alspec/kernels/attention.h"
#include "alspec/kernels/attention_state.h"
#include "kernels/cpu/attention_rows.h"

namespace alspec {
namespace {

using attention_detail::AccumulateRangesFn;
using attention_detail::AccumulateRowsFn;
using attention_detail::GroupRows;
using attention_detail::GroupState;
using attention_detail::RowRange;

AccumulateRangesFn ranges_kernel(SimdLevel level) {
  switch (level) {
    case SimdLevel::kAvx512: return attention_detail::accumulate_ranges_avx512;
    case SimdLevel::kAvx2: return attention_detail::accumulate_ranges_avx2;
    default: return attention_detail::accumulate_ranges_scalar;
  }
}

AccumulateRowsFn rows_kernel(SimdLevel level) {
  switch (level) {
    case SimdLevel::kAvx512: return attention_detail::accumulate_rows_avx512;
    case SimdLevel::kAvx2: return attention_detail::accumulate_rows_avx2;
    default: return attention_detail::accumulate_rows_scalar;
  }
}

// ---- validation ---------------------------------------------------------------------------

void check_shape(const AttentionShape& s) {
  if (s.n_heads <= 0 || s.n_kv_heads <= 0 || s.head_dim <= 0 || s.n_heads % s.n_kv_heads != 0) {
    throw_invalid_argument("attention: bad shape n_heads=" + std::to_string(s.n_heads) +
                           " n_kv_heads=" + std::to_string(s.n_kv_heads) + " head_dim=" + std::to_string(s.head_dim) +
                           " (all positive, n_kv_heads must divide n_heads)");
  }
}

void check_query(const AttentionShape& s, const DecodeQuery& q, size_t index) {
  const std::string where = "attention: sequence " + std::to_string(index) + ": ";
  check_kv_type(q.kv.type, q.kv.head_dim);
  if (q.kv.n_kv_heads != s.n_kv_heads || q.kv.head_dim != s.head_dim) {
    throw_invalid_argument(where + "kv cache has " + std::to_string(q.kv.n_kv_heads) + " heads of dim " +
                           std::to_string(q.kv.head_dim) + ", shape wants " + std::to_string(s.n_kv_heads) +
                           " of dim " + std::to_string(s.head_dim));
  }
  if (q.pos < 0 || q.pos >= q.kv.capacity) {
    throw_invalid_argument(where + "pos " + std::to_string(q.pos) + " outside the cache capacity " +
                           std::to_string(q.kv.capacity));
  }
  if (q.kv.key_pages != nullptr && q.kv.key_pages_per_head < key_pages_for_rows(q.pos + 1)) {
    throw_invalid_argument(where + "key page bounds cover " + std::to_string(q.kv.key_pages_per_head) +
                           " pages, the sequence needs " + std::to_string(key_pages_for_rows(q.pos + 1)));
  }
  if (q.q == nullptr || q.out == nullptr || q.kv.k == nullptr || q.kv.v == nullptr) {
    throw_invalid_argument(where + "null q, out or kv pointer");
  }
  if (q.kv.k_blocks ? !key_blocks_supported(q.kv.type) || q.kv.capacity % kKeyBlockRows != 0 ||
                          q.kv.k_first < 0 || q.kv.k_first >= kKeyBlockRows
                    : q.kv.k_first != 0) {
    throw_invalid_argument(where + "bad key layout (key blocks need F32/F16/BF16, a capacity that is a multiple of " +
                           std::to_string(kKeyBlockRows) + " and 0 <= k_first < " + std::to_string(kKeyBlockRows) +
                           "; k_first must be 0 without them)");
  }
}

// Asks for K and V rows [first, first + n) of one KV head (into L2; a hint, no effect on results).
void prefetch_rows(const KvCacheView& kv, int head, int64_t first, int64_t n) {
  const size_t rb = kv.row_bytes();
  int64_t k_row = first + kv.k_first;
  if (kv.k_blocks) k_row -= k_row % kKeyBlockRows;  // the blocks holding the rows: same bytes when aligned
  const uint8_t* k = kv.k_row(head, 0) + static_cast<size_t>(k_row) * rb;
  const uint8_t* v = kv.v_row(head, first);
  for (size_t off = 0; off < static_cast<size_t>(n) * rb; off += 64) {
    __builtin_prefetch(k + off, 0, 2);
    __builtin_prefetch(v + off, 0, 2);
  }
}

// ---- partition plan -------------------------------------------------------------------------

struct SeqPlan {
  int64_t length = 0;        // L = pos + 1
  bool split = false;        // S > 0 && L > 2S: slot 0 of each group is the O_spec state
  bool quest = false;        // split, O_spec rows chosen by the page predictor (layout below)
  QuestLayout layout;
  int64_t chunk_begin = 0;   // chunks cover [chunk_begin, chunk_end)
  int64_t chunk_end = 0;
  int64_t n_chunks = 0;
  int64_t slots_per_group = 0;
  size_t slot_base = 0;
};

struct Task {
  int seq;
  int group;
  int64_t chunk;  // -1: the sink+window state
  int n_seq = 1;  // > 1: chunk `chunk` of sequences [seq, seq + n_seq) at once (query-tiled prefill)
};

struct Plan {
  std::vector<SeqPlan> seqs;
  size_t n_slots = 0;
  size_t slot_floats = 0;  // n_rep * (head_dim + 2), rounded up to whole cache lines
};

Plan make_plan(const AttentionShape& shape, std::span<const DecodeQuery* const> queries, int S,
               SpecPredictor predictor) {
  Plan plan;
  const int n_rep = shape.n_heads / shape.n_kv_heads;
  // Whole 64-byte lines per slot (and a 64-byte aligned base): the row kernels load and store the
  // accumulators with 512-bit accesses, and ones split across lines cost ~30% of the kernel's time.
  plan.slot_floats = (static_cast<size_t>(n_rep) * static_cast<size_t>(shape.head_dim + 2) + 15) / 16 * 16;
  for (const DecodeQuery* q : queries) {
    SeqPlan p;
    p.length = q->pos + 1;
    p.split = S > 0 && p.length > 2 * static_cast<int64_t>(S);
    p.quest = p.split && predictor == SpecPredictor::kQuestPages && q->kv.key_pages != nullptr;
    p.chunk_begin = p.split ? S : 0;
    p.chunk_end = p.split ? p.length - S : p.length;
    if (p.quest) {
      p.layout = quest_layout(p.length, S);
      p.chunk_begin = p.layout.sink_end;
      p.chunk_end = p.layout.window_begin;
    }
    p.n_chunks = (p.chunk_end - p.chunk_begin + kAttentionChunkRows - 1) / kAttentionChunkRows;
    p.slots_per_group = p.n_chunks + (p.split ? 1 : 0);
    p.slot_base = plan.n_slots;
    plan.n_slots += static_cast<size_t>(p.slots_per_group) * static_cast<size_t>(shape.n_kv_heads);
    plan.seqs.push_back(p);
  }
  return plan;
}

// Slot of (seq, group, chunk); chunk -1 is the sink+window slot.
size_t slot_index(const SeqPlan& p, int group, int64_t chunk) {
  return p.slot_base + static_cast<size_t>(group) * static_cast<size_t>(p.slots_per_group) +
         static_cast<size_t>(chunk + (p.split ? 1 : 0));
}

// Everything one call needs, shared by the phases.
class DecodeRun {
 public:
  // `allow_tiles`: the call may run consecutive queries of one sequence (a prefill batch) through
  // the query-tiled kernel (bitwise the same states, see attention_rows.h).
  DecodeRun(const AttentionShape& shape, std::span<const DecodeQuery* const> queries, int S, SpecPredictor predictor,
            bool allow_tiles = false)
      : shape_(shape), queries_(queries), S_(S), n_rep_(shape.n_heads / shape.n_kv_heads),
        plan_(make_plan(shape, queries, S, predictor)), level_(attention_simd_level(shape.head_dim)),
        rows_(rows_kernel(level_)), ranges_(ranges_kernel(level_)) {
    for (const SeqPlan& p : plan_.seqs) {
      if (p.quest) max_pages_ = std::max(max_pages_, static_cast<size_t>(p.layout.n_pages));
      any_quest_ = any_quest_ || p.quest;
    }
    if (allow_tiles && !any_quest_ && consecutive_queries()) {
      tile_q_ = std::min(attention_detail::tiled_queries(level_, group_rows(*queries[0], 0)), kMaxTileQueries);
      if (tile_q_ < 2) tile_q_ = 0;
    }
    // Reused across calls on this thread: decode runs once per layer and token, and a fresh
    // multi-MiB buffer per call would page-fault every time. Hence no nesting on one thread.
    if (in_use_) {
      throw Error(ErrorKind::kRuntime, "attention: kernel called again on a thread already inside one "
                                       "(e.g. from on_spec_ready)");
    }
    in_use_ = true;
    thread_local std::vector<float> slots;
    const size_t need = plan_.n_slots * plan_.slot_floats + 16;  // + alignment slack
    if (slots.size() < need) slots.resize(need);
    slots_ = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(slots.data()) + 63) & ~uintptr_t{63});
    if (any_quest_) {
      // Reused like the slots: a fresh vector per group and call cost allocations (cold heap
      // lines after a flush) on the path to O_spec.
      thread_local std::vector<int64_t> pages;
      const size_t units = queries.size() * static_cast<size_t>(shape.n_kv_heads);
      if (pages.size() < units * (max_pages_ + 1)) pages.resize(units * (max_pages_ + 1));
      n_selected_ = pages.data();
      selected_ = pages.data() + units;
    }
  }
  ~DecodeRun() { in_use_ = false; }
  DecodeRun(const DecodeRun&) = delete;
  DecodeRun& operator=(const DecodeRun&) = delete;

  const SeqPlan& seq(int s) const { return plan_.seqs[static_cast<size_t>(s)]; }
  bool any_quest() const { return any_quest_; }
  int n_seqs() const { return static_cast<int>(queries_.size()); }

  GroupState state(size_t slot) const {
    float* base = slots_ + slot * plan_.slot_floats;
    float* acc = base;
    float* m = acc + static_cast<size_t>(n_rep_) * static_cast<size_t>(shape_.head_dim);
    return {acc, m, m + n_rep_};
  }
  AttentionStateRef head_state(size_t slot, int h) const {
    const GroupState g = state(slot);
    return {g.acc + static_cast<size_t>(h) * static_cast<size_t>(shape_.head_dim), g.m + h, g.l + h};
  }

  // Queries 0, 1, ... of one sequence at consecutive positions, all reading the same cache view.
  bool consecutive_queries() const {
    if (queries_.size() < 2) return false;
    const DecodeQuery& a = *queries_[0];
    for (size_t i = 1; i < queries_.size(); ++i) {
      const DecodeQuery& b = *queries_[i];
      if (b.pos != a.pos + static_cast<int64_t>(i) || b.kv.k != a.kv.k || b.kv.v != a.kv.v ||
          b.kv.k_first != a.kv.k_first || b.kv.k_blocks != a.kv.k_blocks || b.kv.type != a.kv.type ||
          b.kv.capacity != a.kv.capacity) {
        return false;
      }
    }
    return true;
  }

  GroupRows group_rows(const DecodeQuery& q, int group) const {
    const int d = shape_.head_dim;
    GroupRows rows{q.q + static_cast<size_t>(group) * static_cast<size_t>(n_rep_) * static_cast<size_t>(d),
                   n_rep_,
                   d,
                   1.0f / std::sqrt(static_cast<float>(d)),
                   q.kv.type,
                   q.kv.k_row(group, 0),
                   q.kv.v_row(group, 0),
                   q.kv.row_bytes()};
    rows.k_blocks = q.kv.k_blocks;
    rows.k_first = q.kv.k_first;
    return rows;
  }

  // Tasks: sink+window of split sequences, and/or the chunks (all, or only of split sequences).
  // With query tiles: per tile of tile_q_ consecutive queries, their sink+window tasks, then per
  // KV group each chunk index as one task for the whole tile where every query of the tile has
  // that chunk at the same place (else one task per query).
  std::vector<Task> tasks(bool sink_window, bool chunks_of_split, bool chunks_of_plain) const {
    std::vector<Task> t;
    int first_untiled = 0;
    if (tile_q_ > 0) {
      auto want_chunks = [&](int s) { return seq(s).split ? chunks_of_split : chunks_of_plain; };
      for (int s0 = 0; s0 + tile_q_ <= n_seqs(); s0 += tile_q_) {
        const int s1 = s0 + tile_q_;
        for (int s = s0; s < s1; ++s) {
          if (!seq(s).split || !sink_window) continue;
          for (int g = 0; g < shape_.n_kv_heads; ++g) t.push_back({s, g, -1});
        }
        int64_t max_chunks = 0;
        for (int s = s0; s < s1; ++s) {
          if (want_chunks(s)) max_chunks = std::max(max_chunks, seq(s).n_chunks);
        }
        for (int g = 0; g < shape_.n_kv_heads; ++g) {
          for (int64_t c = 0; c < max_chunks; ++c) {
            bool whole = true;
            for (int s = s0; s < s1; ++s) {
              whole = whole && want_chunks(s) && c < seq(s).n_chunks && seq(s).chunk_begin == seq(s0).chunk_begin;
            }
            if (whole) {
              t.push_back({s0, g, c, tile_q_});
              continue;
            }
            for (int s = s0; s < s1; ++s) {
              if (want_chunks(s) && c < seq(s).n_chunks) t.push_back({s, g, c});
            }
          }
        }
        first_untiled = s1;
      }
    }
    for (int s = first_untiled; s < n_seqs(); ++s) {
      const SeqPlan& p = seq(s);
      const bool want_chunks = p.split ? chunks_of_split : chunks_of_plain;
      for (int g = 0; g < shape_.n_kv_heads; ++g) {
        if (p.split && sink_window) t.push_back({s, g, -1});
        if (want_chunks) {
          for (int64_t c = 0; c < p.n_chunks; ++c) t.push_back({s, g, c});
        }
      }
    }
    return t;
  }

  void run_task(const Task& task) const {
    const SeqPlan& p = seq(task.seq);
    const DecodeQuery& q = *queries_[static_cast<size_t>(task.seq)];
    const int d = shape_.head_dim;
    GroupRows rows = group_rows(q, task.group);
    thread_local std::vector<float> scratch;
    const size_t need = std::max(attention_detail::group_rows_scratch_floats(n_rep_, d),
                                 attention_detail::tiled_scratch_floats(n_rep_, kMaxTileQueries)) +
                        16;  // + alignment slack
    if (scratch.size() < need) scratch.resize(need);
    float* scratch64 = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) & ~uintptr_t{63});
    if (task.n_seq > 1) {
      run_tile_task(task, scratch64);
      return;
    }
    if (task.chunk < 0 && p.quest) {
      run_quest_spec(task, rows, scratch64);
      return;
    }
    if (task.chunk < 0) {
      const size_t slot = slot_index(p, task.group, -1);
      for (int h = 0; h < n_rep_; ++h) reset_attention_state(head_state(slot, h), d);
      // Hints only: the window's first tile is requested before the sink is read, and the sink's
      // last tile prefetches the first middle rows, which the same thread (contiguous shares)
      // reads first in the next phase. Each saves a stream that would start cold.
      prefetch_rows(q.kv, task.group, p.length - S_, std::min<int64_t>(S_, attention_detail::kAttentionTileRows));
      rows.prefetch_end = p.chunk_end;
      rows_(rows, 0, S_, state(slot), scratch64);
      rows.prefetch_end = 0;
      rows_(rows, p.length - S_, p.length, state(slot), scratch64);
      return;
    }
    // The chunk into its own slot. The kernel may prefetch into the group's next chunk: with
    // contiguous shares the same thread usually runs it next, and a stream that restarts cold at
    // every chunk loses its first tile's worth of overlap (a hint only, results do not change).
    const int64_t begin = p.chunk_begin + task.chunk * kAttentionChunkRows;
    const int64_t end = std::min(begin + kAttentionChunkRows, p.chunk_end);
    rows.prefetch_end = std::min(end + kAttentionChunkRows, p.chunk_end);
    const size_t slot = slot_index(p, task.group, task.chunk);
    for (int h = 0; h < n_rep_; ++h) reset_attention_state(head_state(slot, h), d);
    if (!p.quest) {
      rows_(rows, begin, end, state(slot), scratch64);
      return;
    }
    // The chunk minus the pages O_spec already holds (selected ascending): the gaps between them,
    // in one call, so the kernel's pipeline and look-ahead run on across each skipped page (it
    // requests the first tile after a page during the tile before it).
    RangeCalls gaps(ranges_, rows, state(slot), scratch64);
    int64_t from = begin;
    for (const int64_t page : selected(task.seq, task.group)) {
      const int64_t page_begin = page * kKeyPageRows;
      if (page_begin + kKeyPageRows <= from) continue;
      if (page_begin >= end) break;
      gaps.add(from, page_begin);
      from = page_begin + kKeyPageRows;
    }
    gaps.add(from, end);
    gaps.flush();
  }

  // Row ranges of one kernel call, collected in order: a range that continues the previous one
  // after whole tiles joins it (the same tiles either way); beyond kMax ranges (only with a very
  // large S) the collected ones are folded first, which is bitwise the same as one call.
  class RangeCalls {
   public:
    RangeCalls(AccumulateRangesFn fn, const GroupRows& g, GroupState s, float* scratch)
        : fn_(fn), g_(g), s_(s), scratch_(scratch) {}
    void add(int64_t begin, int64_t end) {
      if (end <= begin) return;
      if (n_ > 0 && r_[n_ - 1].end == begin && (begin - r_[n_ - 1].begin) % attention_detail::kAttentionTileRows == 0) {
        r_[n_ - 1].end = end;
        return;
      }
      if (n_ == kMax) flush();
      r_[n_++] = {begin, end};
    }
    void flush() {
      if (n_ > 0) fn_(g_, r_, n_, s_, scratch_);
      n_ = 0;
    }

   private:
    static constexpr int kMax = 48;
    AccumulateRangesFn fn_;
    const GroupRows& g_;
    GroupState s_;
    float* scratch_;
    RowRange r_[kMax];
    int n_ = 0;
  };

  // Chunk `task.chunk` of the queries [task.seq, task.seq + task.n_seq) (same chunk_begin): the
  // whole tiles every one of them reads, [begin, shared_end), in one pass of the tiled kernel, then
  // each query's own rest [shared_end, end) with the row kernel. A state split at a tile boundary is
  // bitwise the state of one call (the row kernels carry nothing across tiles but acc, m and l).
  void run_tile_task(const Task& task, float* scratch64) const {
    const int n = task.n_seq;
    GroupRows rows[kMaxTileQueries];
    GroupState st[kMaxTileQueries];
    int64_t ends[kMaxTileQueries];
    const int64_t begin = seq(task.seq).chunk_begin + task.chunk * kAttentionChunkRows;
    int64_t min_end = begin + kAttentionChunkRows;
    for (int m = 0; m < n; ++m) {
      const SeqPlan& p = seq(task.seq + m);
      rows[m] = group_rows(*queries_[static_cast<size_t>(task.seq + m)], task.group);
      ends[m] = std::min(begin + kAttentionChunkRows, p.chunk_end);
      min_end = std::min(min_end, ends[m]);
      const size_t slot = slot_index(p, task.group, task.chunk);
      for (int h = 0; h < n_rep_; ++h) reset_attention_state(head_state(slot, h), shape_.head_dim);
      st[m] = state(slot);
    }
    constexpr int TR = attention_detail::kAttentionTileRows;
    int64_t shared_end = begin + (min_end - begin) / TR * TR;
    if ((begin + rows[0].k_first) % kKeyBlockRows != 0) shared_end = begin;
    if (shared_end > begin) attention_detail::accumulate_rows_tiled(level_, rows, begin, shared_end, st, scratch64);
    for (int m = 0; m < n; ++m) {
      if (shared_end >= ends[m]) continue;
      rows[m].prefetch_end = std::min(ends[m] + kAttentionChunkRows, seq(task.seq + m).chunk_end);
      rows_(rows[m], shared_end, ends[m], st[m], scratch64);
    }
  }

  // The page selection of an O_spec task of the page predictor (before run_task folds its rows).
  // Hints only: the sink and the window do not depend on the selection, so their rows are
  // requested before the bounds pass, and the selected pages right after it.
  void select_pages(const Task& task) const {
    const SeqPlan& p = seq(task.seq);
    const DecodeQuery& q = *queries_[static_cast<size_t>(task.seq)];
    prefetch_rows(q.kv, task.group, 0, p.layout.sink_end);
    prefetch_rows(q.kv, task.group, p.layout.window_begin, p.length - p.layout.window_begin);
    const size_t u = unit(task.seq, task.group);
    const GroupRows rows = group_rows(q, task.group);
    n_selected_[u] = select_key_pages(rows.q, n_rep_, shape_.head_dim, q.kv.head_key_pages(task.group), p.layout,
                                      selected_ + u * max_pages_);
    for (const int64_t page : selected(task.seq, task.group)) {
      prefetch_rows(q.kv, task.group, page * kKeyPageRows, kKeyPageRows);
    }
  }
  bool is_quest_spec(const Task& t) const { return t.chunk < 0 && t.n_seq == 1 && seq(t.seq).quest; }

  // The O_spec state of the page predictor (its pages selected by select_pages): folds the sink,
  // the selected pages and the window, in row order.
  void run_quest_spec(const Task& task, GroupRows& rows, float* scratch64) const {
    const SeqPlan& p = seq(task.seq);
    const size_t slot = slot_index(p, task.group, -1);
    for (int h = 0; h < n_rep_; ++h) reset_attention_state(head_state(slot, h), shape_.head_dim);
    const std::span<const int64_t> pages = selected(task.seq, task.group);
    // Sink, pages (runs of adjacent pages as one range) and window in one call: one pipeline.
    RangeCalls spec_rows(ranges_, rows, state(slot), scratch64);
    spec_rows.add(0, p.layout.sink_end);
    for (const int64_t page : pages) spec_rows.add(page * kKeyPageRows, (page + 1) * kKeyPageRows);
    spec_rows.add(p.layout.window_begin, p.length);
    spec_rows.flush();
  }

  size_t unit(int s, int g) const { return static_cast<size_t>(s) * static_cast<size_t>(shape_.n_kv_heads) + static_cast<size_t>(g); }
  std::span<const int64_t> selected(int s, int g) const {
    const size_t u = unit(s, g);
    return {selected_ + u * max_pages_, static_cast<size_t>(n_selected_[u])};
  }

  // Runs the tasks; `pending[seq * n_kv_heads + group]` counts the tasks of each group in this
  // call, and the task that brings it to zero calls group_done(seq, group). Which task that is
  // varies, but group_done merges in the fixed slot order, so the result does not; and no
  // barrier is needed between computing the chunks and merging them. Contiguous shares: a thread
  // runs consecutive tasks (neighbouring chunks of one group), so the memory it streams stays
  // sequential across tasks; scheduling only, the results do not depend on it.
  template <typename Done>
  void run_tasks(Device& dev, const std::vector<Task>& tasks, std::vector<std::atomic<int64_t>>& pending,
                 const Done& group_done) const {
    const auto n_groups = static_cast<size_t>(shape_.n_kv_heads);
    dev.parallel_for_contiguous(tasks.size(), [&](size_t i, int) {
      const Task& t = tasks[i];
      run_task(t);
      for (int s = t.seq; s < t.seq + t.n_seq; ++s) {
        const size_t unit = static_cast<size_t>(s) * n_groups + static_cast<size_t>(t.group);
        if (pending[unit].fetch_sub(1, std::memory_order_acq_rel) == 1) group_done(s, t.group);
      }
    });
  }

  // The first phase with the page predictor: like run_tasks, but in blocks of tasks, one per
  // thread, in which each O_spec task's page selection runs one task ahead of its folding: the
  // selected pages (requested right after the selection) arrive while the next group's bounds are
  // scored, instead of a dependent round trip to memory before every fold. Same states, same
  // group_done calls; only the order of the work differs.
  template <typename Done>
  void run_first_phase(Device& dev, const std::vector<Task>& tasks, std::vector<std::atomic<int64_t>>& pending,
                       const Done& group_done) const {
    if (!any_quest_) return run_tasks(dev, tasks, pending, group_done);
    const auto n_groups = static_cast<size_t>(shape_.n_kv_heads);
    const size_t n = tasks.size();
    const size_t blocks = std::min(n, static_cast<size_t>(std::max(1, dev.num_threads())));
    auto finish = [&](const Task& t) {
      run_task(t);
      const size_t u = static_cast<size_t>(t.seq) * n_groups + static_cast<size_t>(t.group);
      if (pending[u].fetch_sub(1, std::memory_order_acq_rel) == 1) group_done(t.seq, t.group);
    };
    dev.parallel_for_contiguous(blocks, [&](size_t b, int) {
      const Task* pending_fold = nullptr;
      for (size_t i = b * n / blocks; i < (b + 1) * n / blocks; ++i) {
        const Task& t = tasks[i];
        if (!is_quest_spec(t)) {
          finish(t);
          continue;
        }
        select_pages(t);
        if (pending_fold != nullptr) finish(*pending_fold);
        pending_fold = &t;
      }
      if (pending_fold != nullptr) finish(*pending_fold);
    });
  }

  // Fresh per-group task counters for `tasks`.
  std::vector<std::atomic<int64_t>> count_tasks(const std::vector<Task>& tasks) const {
    std::vector<std::atomic<int64_t>> pending(queries_.size() * static_cast<size_t>(shape_.n_kv_heads));
    for (const Task& t : tasks) {
      for (int s = t.seq; s < t.seq + t.n_seq; ++s) {
        pending[static_cast<size_t>(s) * static_cast<size_t>(shape_.n_kv_heads) + static_cast<size_t>(t.group)]
            .fetch_add(1, std::memory_order_relaxed);
      }
    }
    return pending;
  }

  // Merges the group's slots in order into its first slot and writes the normalised result.
  void finish_group(int s, int g, float* out) const {
    const SeqPlan& p = seq(s);
    const int d = shape_.head_dim;
    const size_t first = slot_index(p, g, p.split ? -1 : 0);
    for (int64_t i = 1; i < p.slots_per_group; ++i) {
      for (int h = 0; h < n_rep_; ++h) {
        const AttentionStateRef src = head_state(first + static_cast<size_t>(i), h);
        merge_attention_state(head_state(first, h), {src.acc, src.m, src.l}, d);
      }
    }
    normalize_group(first, g, out);
  }

  // Normalises the state in `slot` (all heads of group g) into out [n_heads][head_dim].
  void normalize_group(size_t slot, int g, float* out) const {
    const int d = shape_.head_dim;
    for (int h = 0; h < n_rep_; ++h) {
      const AttentionStateRef st = head_state(slot, h);
      normalize_attention_state({st.acc, st.m, st.l}, out + (static_cast<size_t>(g) * n_rep_ + h) * d, d);
    }
  }

  const AttentionShape& shape() const { return shape_; }

 private:
  AttentionShape shape_;
  std::span<const DecodeQuery* const> queries_;
  int S_;
  int n_rep_;
  Plan plan_;
  SimdLevel level_;
  AccumulateRowsFn rows_;
  AccumulateRangesFn ranges_;
  static constexpr int kMaxTileQueries = 4;
  int tile_q_ = 0;  // queries per tile of the tiled prefill kernel; 0: per query
  float* slots_ = nullptr;
  // Pages of the page predictor per (sequence, KV group) unit: selected_ [unit][max_pages_] and
  // their counts n_selected_ [unit]; written by the group's O_spec task, read by its middle
  // chunks in a later phase.
  bool any_quest_ = false;
  size_t max_pages_ = 0;
  int64_t* selected_ = nullptr;
  int64_t* n_selected_ = nullptr;
  static thread_local bool in_use_;
};

thread_local bool DecodeRun::in_use_ = false;

}  // namespace

namespace attention_detail {

int tiled_queries(SimdLevel level, const GroupRows& g) {
  switch (level) {
    case SimdLevel::kAvx512: return tiled_queries_avx512(g);
    default: return 0;
  }
}

void accumulate_rows_tiled(SimdLevel level, const GroupRows* g, int64_t begin, int64_t end, const GroupState* s,
                           float* scratch) {
  switch (level) {
    case SimdLevel::kAvx512: return accumulate_rows_tiled_avx512(g, begin, end, s, scratch);
    default: return;
  }
}

}  // namespace attention_detail

SimdLevel attention_simd_level(int head_dim) {
  SimdLevel level = simd_level();
  if (level == SimdLevel::kAvx512 && head_dim % 16 != 0) level = SimdLevel::kAvx2;
  if (level == SimdLevel::kAvx2 && head_dim % 8 != 0) level = SimdLevel::kScalar;
  return level;
}

void flash_decode(Device& dev, const AttentionShape& shape, std::span<const DecodeQuery> batch, int spec_chunk,
                  SpecPredictor predictor) {
  check_shape(shape);
  if (spec_chunk < 0) throw_invalid_argument("flash_decode: spec_chunk must be >= 0, got " + std::to_string(spec_chunk));
  if (predictor == SpecPredictor::kQuestPages && spec_chunk > 0 && spec_chunk < kQuestMinSpecChunk) {
    throw_invalid_argument("flash_decode: the quest predictor needs S >= " + std::to_string(kQuestMinSpecChunk) +
                           ", got " + std::to_string(spec_chunk));
  }
  std::vector<const DecodeQuery*> queries;
  for (size_t i = 0; i < batch.size(); ++i) {
    check_query(shape, batch[i], i);
    queries.push_back(&batch[i]);
  }
  const DecodeRun run(shape, queries, spec_chunk, predictor, /*allow_tiles=*/true);
  auto finish = [&](int s, int g) { run.finish_group(s, g, queries[static_cast<size_t>(s)]->out); };
  if (run.any_quest()) {
    // The middle chunks need the selected pages: the O_spec states first, as the speculative
    // kernel does (same states, same merge order, so the same bits).
    const std::vector<Task> first = run.tasks(true, false, true);
    std::vector<std::atomic<int64_t>> pending = run.count_tasks(first);
    run.run_first_phase(dev, first, pending, [&](int s, int g) {
      if (!run.seq(s).split) finish(s, g);
    });
    const std::vector<Task> middle = run.tasks(false, true, false);
    pending = run.count_tasks(middle);
    run.run_tasks(dev, middle, pending, finish);
    return;
  }
  const std::vector<Task> tasks = run.tasks(true, true, true);
  std::vector<std::atomic<int64_t>> pending = run.count_tasks(tasks);
  run.run_tasks(dev, tasks, pending, finish);
}

void speculative_flash_decode(Device& dev, const AttentionShape& shape, std::span<const SpecDecodeQuery> batch,
                              int spec_chunk, float lambda, std::span<SpecResult> results,
                              FunctionRef<void()> on_spec_ready, std::span<double> group_terms,
                              SpecPredictor predictor) {
  check_shape(shape);
  if (spec_chunk < 1) {
    throw_invalid_argument("speculative_flash_decode: spec_chunk must be >= 1, got " + std::to_string(spec_chunk));
  }
  if (!(lambda >= 0.0f) || !std::isfinite(lambda)) {
    throw_invalid_argument("speculative_flash_decode: lambda must be finite and >= 0, got " + std::to_string(lambda));
  }
  if (results.size() != batch.size()) {
    throw_invalid_argument("speculative_flash_decode: " + std::to_string(batch.size()) + " sequences but " +
                           std::to_string(results.size()) + " result slots");
  }
  if (!group_terms.empty() && group_terms.size() != batch.size() * static_cast<size_t>(shape.n_kv_heads) * 2) {
    throw_invalid_argument("speculative_flash_decode: group_terms holds " + std::to_string(group_terms.size()) +
                           " values, expected sequences x KV heads x 2 = " +
                           std::to_string(batch.size() * static_cast<size_t>(shape.n_kv_heads) * 2));
  }
  std::vector<const DecodeQuery*> queries;
  for (size_t i = 0; i < batch.size(); ++i) {
    check_query(shape, batch[i].base, i);
    if (batch[i].out_spec == nullptr) {
      throw_invalid_argument("speculative_flash_decode: sequence " + std::to_string(i) + ": null out_spec");
    }
    queries.push_back(&batch[i].base);
  }
  if (predictor == SpecPredictor::kQuestPages && spec_chunk < kQuestMinSpecChunk) {
    throw_invalid_argument("speculative_flash_decode: the quest predictor needs S >= " +
                           std::to_string(kQuestMinSpecChunk) + ", got " + std::to_string(spec_chunk));
  }
  const DecodeRun run(shape, queries, spec_chunk, predictor);
  const auto n_groups = static_cast<size_t>(shape.n_kv_heads);
  const size_t n_units = queries.size() * n_groups;
  const int d = shape.head_dim;
  const size_t group_floats = static_cast<size_t>(shape.n_heads / shape.n_kv_heads) * static_cast<size_t>(d);

  std::vector<double> dist2(n_units, 0.0);
  std::vector<double> norm2(n_units, 0.0);
  // O_exact of group g of sequence s is final: the group's terms of dist2 and norm2.
  auto check_sums = [&](int s, int g) {
    const SpecDecodeQuery& q = batch[static_cast<size_t>(s)];
    const float* exact = q.base.out + g * group_floats;
    const float* spec = q.out_spec + g * group_floats;
    double d2 = 0.0;
    double n2 = 0.0;
    for (size_t j = 0; j < group_floats; ++j) {
      const double e = exact[j];
      const double diff = static_cast<double>(spec[j]) - e;
      d2 += diff * diff;
      n2 += e * e;
    }
    const size_t unit = static_cast<size_t>(s) * n_groups + static_cast<size_t>(g);
    dist2[unit] = d2;
    norm2[unit] = n2;
  };

  // Phase 1: sink+window of long sequences, normalised into out_spec as soon as a group's state
  // is complete (the state itself is kept for the merge); short sequences (L <= 2S) entirely,
  // O_spec = O_exact.
  const std::vector<Task> first = run.tasks(true, false, true);
  std::vector<std::atomic<int64_t>> pending = run.count_tasks(first);
  run.run_first_phase(dev, first, pending, [&](int s, int g) {
    const SpecDecodeQuery& q = batch[static_cast<size_t>(s)];
    if (run.seq(s).split) {
      run.normalize_group(slot_index(run.seq(s), g, -1), g, q.out_spec);
    } else {
      run.finish_group(s, g, q.base.out);
      std::copy_n(q.base.out + g * group_floats, group_floats, q.out_spec + g * group_floats);
      check_sums(s, g);
    }
  });
  on_spec_ready();

  // Phase 2: the middle chunks; the last chunk of a group merges all its states in order.
  const std::vector<Task> middle = run.tasks(false, true, false);
  pending = run.count_tasks(middle);
  run.run_tasks(dev, middle, pending, [&](int s, int g) {
    run.finish_group(s, g, batch[static_cast<size_t>(s)].base.out);
    check_sums(s, g);
  });
  for (size_t s = 0; s < queries.size(); ++s) {
    SpecResult r;
    for (size_t g = 0; g < n_groups; ++g) {
      r.dist2 += dist2[s * n_groups + g];
      r.norm2 += norm2[s * n_groups + g];
    }
    if (!group_terms.empty()) {
      for (size_t g = 0; g < n_groups; ++g) {
        group_terms[(s * n_groups + g) * 2] = dist2[s * n_groups + g];
        group_terms[(s * n_groups + g) * 2 + 1] = norm2[s * n_groups + g];
      }
    }
    r.full_coverage = !run.seq(static_cast<int>(s)).split;
    r.accept = speculation_accepts(r.dist2, r.norm2, lambda);
    results[s] = r;
  }
}

}  // namespace alspec
