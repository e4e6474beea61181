#include "alspec/spec/two_device_batch_decoder.h"

#include <algorithm>
#include <string>

#include "alspec/core/error.h"
#include "alspec/kernels/attention.h"
#include "alspec/runtime/channel.h"
#include "batch_attention.h"
#include "decoder.h"
#include "two_device_jobs.h"

namespace alspec {

// Priority words (spec §5), as in the single-sequence protocol.
namespace {
constexpr int kAccept = 0;    // sender whose check accepted: skips the post-attention ops
constexpr int kReceiver = 1;  // receiver: runs the post-attention ops on O_spec
constexpr int kReject = 2;    // sender whose check rejected: runs them on O_exact
}  // namespace

// One device's part of a step. Its rows: on device A the single-device rows, then the alspec
// rows; on device B the alspec rows (their peers).
struct TwoDeviceBatchDecoder::Side {
  Side(const Model& model, Device& device) : forward(model, device) {}
  BatchForward forward;
  BatchAttention single_attention;
  std::vector<BatchRow> single_rows;
  std::vector<Session*> sessions;
  std::vector<int32_t> tokens;
  std::vector<int> mine, peer;  // priority words of the alspec rows on this side and the peer
  std::vector<float> message;   // outgoing priorities / residuals
  std::vector<float> inbox;     // incoming
  std::vector<float> attn;      // attention output per row of the side, q_dim each
  std::vector<float> approx;    // O_spec of the rows this side sends, in row order (the message)
  std::vector<size_t> sent;     // alspec rows this side sends in the layer
  std::vector<bool> receives;   // per alspec row: the peer sends it in the layer
  std::vector<SpecDecodeQuery> queries;
  std::vector<size_t> query_rows;  // index into `sent` of each query of a kernel call
  std::vector<SpecResult> results;
  std::vector<bool> grouped;
  std::vector<Session*> post_sessions;
  std::vector<float> post_attn;
  std::vector<size_t> logit_rows;  // batch rows whose logits this side makes
  std::vector<Session*> logit_sessions;
  std::vector<SpecStats> stats;               // per alspec row: the checks this side made
  std::vector<std::vector<TraceEvent>> trace;  // per alspec row, when its spec has a trace hook
};

TwoDeviceBatchDecoder::TwoDeviceBatchDecoder(const Model& model, Device& a, Device& b)
    : model_(model), devices_{&a, &b} {
  if (&a == &b) throw_invalid_argument("two-device batched decode needs two distinct devices");
  sides_[0] = std::make_unique<Side>(model, a);
  sides_[1] = std::make_unique<Side>(model, b);
}

TwoDeviceBatchDecoder::~TwoDeviceBatchDecoder() = default;

void TwoDeviceBatchDecoder::check_sides(const Session& session, const Session& peer) const {
  if (&peer.model() != &model_ || &peer.device() != devices_[1]) {
    throw_invalid_argument("two-device batched decode: an alspec row's peer is not on device B");
  }
  if (peer.position() != session.position()) {
    throw_invalid_argument("two-device batched decode: the two sides of a sequence are at positions " +
                           std::to_string(session.position()) + " and " + std::to_string(peer.position()));
  }
  bool same = peer.options().predictor == session.options().predictor;
  for (int l = 0; l < model_.config().n_layers && same; ++l) same = peer.spec_chunk(l) == session.spec_chunk(l);
  if (!same) throw_invalid_argument("two-device batched decode: the two sides of a sequence differ in S or predictor");
}

void TwoDeviceBatchDecoder::check_row(const BatchRow& r) const {
  if (r.session == nullptr || r.spec == nullptr || r.stats == nullptr) {
    throw_invalid_argument("batched decode: a row without session, speculation settings or statistics");
  }
  if (&r.session->model() != &model_ || &r.session->device() != devices_[0]) {
    throw_invalid_argument("two-device batched decode: a row's session is not on device A");
  }
  r.session->check_prefill(std::span<const int32_t>(&r.token, 1));
  if (r.spec->mode != AttentionMode::kAlspec) {
    if (r.peer != nullptr) throw_invalid_argument("two-device batched decode: only alspec rows run on two devices");
    return;
  }
  if (r.peer == nullptr || r.pair == nullptr) {
    throw_invalid_argument("two-device batched decode: an alspec row without its second session or pair state");
  }
  check_sides(*r.session, *r.peer);
  r.peer->check_prefill(std::span<const int32_t>(&r.token, 1));
  for (int d = 0; d < 2; ++d) {
    if (r.pair->priority[d] < kAccept || r.pair->priority[d] > kReject) {
      throw_invalid_argument("two-device batched decode: a priority word outside 0..2");
    }
  }
  if (r.pair->priority[0] == r.pair->priority[1]) {
    throw_invalid_argument("two-device batched decode: both sides of a sequence have the same priority");
  }
}

const float* TwoDeviceBatchDecoder::step(std::span<const BatchRow> rows) {
  for (const BatchRow& r : rows) check_row(r);  // before any session changes
  const auto& c = model_.config();
  singles_.clear();
  pairs_.clear();
  for (size_t i = 0; i < rows.size(); ++i) (rows[i].spec->mode == AttentionMode::kAlspec ? pairs_ : singles_).push_back(i);
  const size_t P = pairs_.size();
  // Channels big enough for one message of every alspec row (residuals or O_spec).
  if (!channels_ok_ || P > channel_rows_) {
    channel_rows_ = std::max<size_t>({1, P, channel_rows_});
    const size_t width = static_cast<size_t>(std::max(c.q_dim(), c.n_embd));
    auto [a, b] = make_local_channel_pair(channel_rows_ * width);
    channel_[0] = std::move(a);
    channel_[1] = std::move(b);
    channels_ok_ = true;
  }
  for (int d = 0; d < 2; ++d) {
    Side& s = *sides_[static_cast<size_t>(d)];
    s.sessions.clear();
    s.tokens.clear();
    s.single_rows.clear();
    if (d == 0) {
      for (size_t i : singles_) {
        s.single_rows.push_back(rows[i]);
        s.sessions.push_back(rows[i].session);
        s.tokens.push_back(rows[i].token);
      }
    }
    for (size_t i : pairs_) {
      s.sessions.push_back(d == 0 ? rows[i].session : rows[i].peer);
      s.tokens.push_back(rows[i].token);
    }
    s.stats.resize(P);
    for (auto& st : s.stats) st.reset(c.n_layers);
    s.trace.resize(P);
    for (auto& t : s.trace) t.clear();
  }
  logits_.resize(rows.size() * static_cast<size_t>(c.n_vocab));
  try {
    run_on_two_devices(devices_, {channel_[0].get(), channel_[1].get()}, [&](int d) { run_side(d, rows); });
  } catch (...) {
    channels_ok_ = false;
    throw;
  }
  // Each alspec sequence's checks were made by whichever side sent at each layer.
  std::vector<TraceEvent> events;
  for (size_t k = 0; k < P; ++k) {
    const BatchRow& row = rows[pairs_[k]];
    events.clear();
    for (auto& side : sides_) {
      row.stats->merge(side->stats[k]);
      events.insert(events.end(), side->trace[k].begin(), side->trace[k].end());
    }
    if (!row.spec->trace) continue;
    std::stable_sort(events.begin(), events.end(), [](const auto& x, const auto& y) { return x.layer < y.layer; });
    for (const auto& e : events) row.spec->trace(e);
  }
  return logits_.data();
}

void TwoDeviceBatchDecoder::run_side(int d, std::span<const BatchRow> rows) {
  Side& s = *sides_[static_cast<size_t>(d)];
  Channel& ch = *channel_[static_cast<size_t>(d)];
  const auto& c = model_.config();
  const size_t QD = static_cast<size_t>(c.q_dim()), E = static_cast<size_t>(c.n_embd);
  const size_t V = static_cast<size_t>(c.n_vocab);
  const size_t P = pairs_.size(), off = d == 0 ? singles_.size() : 0, R = off + P;
  if (R == 0) return;
  auto session = [&](size_t k) { return s.sessions[off + k]; };  // side of alspec row k
  s.forward.begin_decode(s.sessions, s.tokens);
  s.mine.resize(P);
  s.peer.resize(P);
  for (size_t k = 0; k < P; ++k) s.mine[k] = rows[pairs_[k]].pair->priority[d];
  s.attn.resize(R * QD);
  s.approx.resize(P * QD);
  s.message.resize(P * std::max(QD, E));
  s.inbox.resize(P * std::max(QD, E));
  for (int l = 0; l <= c.n_layers; ++l) {
    // 1. Priorities of all alspec rows, one message each way.
    if (P > 0) {
      for (size_t k = 0; k < P; ++k) s.message[k] = static_cast<float>(s.mine[k]);
      ch.send(MessageTag::kPriority, std::span<const float>(s.message.data(), P));
      ch.recv(MessageTag::kPriority, std::span<float>(s.inbox.data(), P));
      for (size_t k = 0; k < P; ++k) s.peer[k] = static_cast<int>(s.inbox[k]);
    }
    if (l == c.n_layers) break;
    // 2. The residuals of the rows each side wins, in row order.
    s.sent.clear();
    s.receives.assign(P, false);
    for (size_t k = 0; k < P; ++k) {
      if (s.mine[k] > s.peer[k]) {
        s.sent.push_back(k);
      } else {
        s.receives[k] = true;
      }
    }
    const size_t n_sent = s.sent.size(), n_received = P - n_sent;
    if (n_sent > 0) {
      for (size_t w = 0; w < n_sent; ++w) std::copy_n(session(s.sent[w])->residual().data(), E, &s.message[w * E]);
      ch.send(MessageTag::kResidual, std::span<const float>(s.message.data(), n_sent * E));
    }
    if (n_received > 0) {
      ch.recv(MessageTag::kResidual, std::span<float>(s.inbox.data(), n_received * E));
      size_t u = 0;
      for (size_t k = 0; k < P; ++k) {
        if (s.receives[k]) std::copy_n(&s.inbox[(u++) * E], E, session(k)->residual().data());
      }
    }
    // 3. Pre-attention ops of every row (both sides: identical caches).
    s.forward.decode_pre_attention(s.sessions, l);
    if (!s.single_rows.empty()) s.single_attention.run(s.single_rows, l, s.attn.data());
    // 4. Sender rows: O_spec of all of them published after the last kernel call's phase 1, then
    // exact attention and each row's check. One call per distinct (S, predictor).
    if (n_sent > 0) {
      auto same_call = [&](size_t v, size_t w) {
        const Session &a = *session(s.sent[v]), &b = *session(s.sent[w]);
        return a.spec_chunk(l) == b.spec_chunk(l) && a.options().predictor == b.options().predictor;
      };
      size_t groups = 0, ready = 0;
      for (size_t w = 0; w < n_sent; ++w) {
        size_t v = 0;
        while (v < w && !same_call(v, w)) ++v;
        groups += v == w ? 1 : 0;
      }
      bool published = false;
      auto publish = [&] {
        ch.send(MessageTag::kApproxOutput, std::span<const float>(s.approx.data(), n_sent * QD));
        published = true;
      };
      s.grouped.assign(n_sent, false);
      for (size_t w = 0; w < n_sent; ++w) {
        if (s.grouped[w]) continue;
        Session& first = *session(s.sent[w]);
        const int S = first.spec_chunk(l);
        const SpecPredictor predictor = first.options().predictor;
        s.queries.clear();
        s.query_rows.clear();
        for (size_t v = w; v < n_sent; ++v) {
          Session& o = *session(s.sent[v]);
          if (s.grouped[v] || !same_call(v, w)) continue;
          s.grouped[v] = true;
          s.queries.push_back(
              SpecDecodeQuery{o.attention_query(l, &s.attn[(off + s.sent[v]) * QD]), &s.approx[v * QD]});
          s.query_rows.push_back(v);
        }
        s.results.assign(s.queries.size(), SpecResult{});
        const BatchRow& lead = rows[pairs_[s.sent[s.query_rows[0]]]];
        speculative_flash_decode(
            first.device(), first.attention_shape(), s.queries, S, lead.spec->lambda, s.results,
            [&] {
              if (++ready == groups) publish();
            },
            {}, predictor);
        for (size_t q = 0; q < s.queries.size(); ++q) {
          const size_t k = s.sent[s.query_rows[q]];
          const BatchRow& row = rows[pairs_[k]];
          SpecResult r = s.results[q];
          r.accept = speculation_accepts(r.dist2, r.norm2, row.spec->lambda);  // the row's own lambda
          bool forced = false;
          const bool accept = decide(*row.spec, row.step, l, r.accept, &forced);
          s.mine[k] = accept ? kAccept : kReject;
          s.stats[k].record(l, r.full_coverage, accept);
          if (row.spec->trace) {
            s.trace[k].push_back({row.step, l, d, 1 - d, s.mine[k], r.dist2, r.norm2, accept, r.full_coverage, forced});
          }
        }
      }
      if (!published) publish();  // (every call fires on_spec_ready; this only guards the protocol)
    }
    // Receiver rows: the peer's O_spec, in row order.
    if (n_received > 0) {
      ch.recv(MessageTag::kApproxOutput, std::span<float>(s.inbox.data(), n_received * QD));
      size_t u = 0;
      for (size_t k = 0; k < P; ++k) {
        if (!s.receives[k]) continue;
        std::copy_n(&s.inbox[(u++) * QD], QD, &s.attn[(off + k) * QD]);
        s.mine[k] = kReceiver;
      }
    }
    // 5. Post-attention ops: every row but the alspec rows this side sent and accepted.
    size_t skipped = 0;
    for (size_t k = 0; k < P; ++k) skipped += s.mine[k] == kAccept ? 1 : 0;
    if (skipped == 0) {
      s.forward.decode_post_attention(s.sessions, l, s.attn.data());
    } else if (skipped < R) {
      s.post_sessions.clear();
      s.post_attn.resize((R - skipped) * QD);
      for (size_t r = 0; r < R; ++r) {
        if (r >= off && s.mine[r - off] == kAccept) continue;
        std::copy_n(&s.attn[r * QD], QD, &s.post_attn[s.post_sessions.size() * QD]);
        s.post_sessions.push_back(s.sessions[r]);
      }
      s.forward.decode_post_attention(s.post_sessions, l, s.post_attn.data());
    }
  }
  // Logits: the single rows (device A) and the alspec rows whose final priority this side wins.
  s.logit_rows.clear();
  s.logit_sessions.clear();
  for (size_t r = 0; r < R; ++r) {
    if (r >= off && s.mine[r - off] < s.peer[r - off]) continue;
    s.logit_rows.push_back(r < off ? singles_[r] : pairs_[r - off]);
    s.logit_sessions.push_back(s.sessions[r]);
  }
  if (!s.logit_sessions.empty()) {
    const float* logits = s.forward.decode_logits(s.logit_sessions);
    for (size_t j = 0; j < s.logit_rows.size(); ++j) std::copy_n(logits + j * V, V, &logits_[s.logit_rows[j] * V]);
  }
  for (Session* sess : s.sessions) sess->finish_token(/*logits=*/false);
  for (size_t k = 0; k < P; ++k) rows[pairs_[k]].pair->priority[d] = s.mine[k];
}

}  // namespace alspec
