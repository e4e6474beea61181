#include "alspec/spec/batch_scheduler.h"

#include <algorithm>
#include <chrono>
#include <future>
#include <string>

#include "alspec/core/error.h"

namespace alspec {

struct BatchScheduler::Job {
  Session* session = nullptr;
  Session* peer = nullptr;  // the sequence on the second device (alspec on two devices)
  PairState* pair = nullptr;
  bool is_prefill = false;
  // Decode step.
  int32_t token = 0;
  const SpecConfig* spec = nullptr;
  int64_t step = 0;
  SpecStats* stats = nullptr;
  float* logits = nullptr;
  // Prefill.
  std::span<const int32_t> tokens;
  PrefillLogits which = PrefillLogits::kNone;
  FunctionRef<void(int64_t, const float*)>* on_logits = nullptr;
  size_t prefilled = 0;
  // Outcome.
  bool finished = false;
  std::exception_ptr error;
};

namespace {
// Device `index` of the scheduler: with two devices the threads (default: the available cores
// shared evenly, at least one each) and the cores to pin are split between them.
DeviceOptions device_options(const BatchSchedulerOptions& o, int index) {
  if (o.threads < 0) throw_invalid_argument("batch scheduler: threads must be >= 0");
  if (o.prefill_chunk < 1) throw_invalid_argument("batch scheduler: prefill_chunk must be >= 1");
  if (!(o.gather_seconds >= 0)) throw_invalid_argument("batch scheduler: gather_seconds must be >= 0");
  if (o.devices != 1 && o.devices != 2) throw_invalid_argument("batch scheduler: devices must be 1 or 2");
  const int cores = static_cast<int>(available_cores().size());
  DeviceOptions d;
  d.name = o.devices == 1 ? "batch" : (index == 0 ? "batch-a" : "batch-b");
  d.threads = o.threads > 0 ? o.threads : std::max(1, cores / o.devices);
  if (!o.cores.empty()) {
    const size_t per = o.cores.size() / static_cast<size_t>(o.devices);
    if (per == 0) throw_invalid_argument("batch scheduler: fewer cores to pin than devices");
    d.cores.assign(o.cores.begin() + static_cast<std::ptrdiff_t>(per * static_cast<size_t>(index)),
                   o.cores.begin() + static_cast<std::ptrdiff_t>(per * static_cast<size_t>(index + 1)));
  }
  return d;
}
}  // namespace

BatchScheduler::BatchScheduler(const Model& model, BatchSchedulerOptions options)
    : model_(model),
      options_(std::move(options)),
      device_(std::make_unique<Device>(device_options(options_, 0))),
      decoder_(model, *device_) {
  if (options_.devices == 2) {
    device_b_ = std::make_unique<Device>(device_options(options_, 1));
    decoder_b_ = std::make_unique<BatchDecoder>(model, *device_b_);
    pair_decoder_ = std::make_unique<TwoDeviceBatchDecoder>(model, *device_, *device_b_);
  }
  thread_ = std::thread([this] { loop(); });
}

BatchScheduler::~BatchScheduler() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  thread_.join();
}

int BatchScheduler::threads() const { return device_->num_threads(); }

BatchSchedulerStats BatchScheduler::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  BatchSchedulerStats s = stats_;
  s.running = static_cast<int>(decodes_.size() + prefills_.size());
  return s;
}

void BatchScheduler::submit(Job& job) {
  std::unique_lock<std::mutex> lock(mu_);
  if (stopping_) throw Error(ErrorKind::kRuntime, "batch scheduler: stopped");
  expected_.erase(job.session);
  if (job.is_prefill) {
    prefills_.push_back(&job);
  } else if (options_.direct && !busy_ && decodes_.empty() && prefills_.empty() && expected_.empty()) {
    // The device is idle and no other sequence is about to submit: this thread runs the step
    // itself (a batch of one), saving the two thread hand-offs of the loop.
    busy_ = true;
    Job* const batch[] = {&job};
    run_pass(lock, batch, {}, {});
    ++stats_.direct_steps;
    busy_ = false;
    work_cv_.notify_all();  // the loop may have work that arrived meanwhile
  } else {
    decodes_.push_back(&job);
  }
  work_cv_.notify_all();
  done_cv_.wait(lock, [&] { return job.finished; });
  if (job.error) std::rethrow_exception(job.error);
}

void BatchScheduler::decode(Session& session, int32_t token, const SpecConfig& spec, int64_t step, SpecStats& stats,
                            float* logits, Session* peer, PairState* pair) {
  // Fails this sequence alone, not the batch.
  session.check_prefill(std::span<const int32_t>(&token, 1));
  if ((peer == nullptr) != (pair == nullptr)) throw_invalid_argument("batch scheduler: a peer session needs its pair state");
  if (pair_decoder_) {
    pair_decoder_->check_row(BatchRow{&session, token, &spec, step, &stats, peer, pair});
  } else {
    check_peer(session, peer);
  }
  Job job;
  job.session = &session;
  job.peer = peer;
  job.pair = pair;
  job.token = token;
  job.spec = &spec;
  job.step = step;
  job.stats = &stats;
  job.logits = logits;
  submit(job);
}

void BatchScheduler::check_peer(const Session& session, const Session* peer) const {
  if (peer == nullptr) return;
  if (!pair_decoder_) throw_invalid_argument("batch scheduler: a peer session needs a scheduler with two devices");
  pair_decoder_->check_sides(session, *peer);
}

void BatchScheduler::prefill(Session& session, std::span<const int32_t> tokens, PrefillLogits which,
                             FunctionRef<void(int64_t, const float*)> on_logits, Session* peer) {
  session.check_prefill(tokens);  // all of it, before the first chunk changes the session
  check_peer(session, peer);
  if (peer != nullptr) peer->check_prefill(tokens);
  if (tokens.empty()) return;
  Job job;
  job.session = &session;
  job.peer = peer;
  job.is_prefill = true;
  job.tokens = tokens;
  job.which = which;
  job.on_logits = &on_logits;
  submit(job);
}

void BatchScheduler::leave(const Session& session) {
  std::lock_guard<std::mutex> lock(mu_);
  expected_.erase(&session);
  work_cv_.notify_all();
}

void BatchScheduler::loop() {
  std::vector<Job*> batch;
  std::vector<Job*> prefill_jobs;  // the prefills with a chunk in this pass, oldest first
  std::vector<size_t> prefill_taken;
  const size_t budget = static_cast<size_t>(options_.prefill_chunk);
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [&] { return !busy_ && (stopping_ || !decodes_.empty() || !prefills_.empty()); });
    if (decodes_.empty() && prefills_.empty()) break;  // stopping, nothing left
    // Let the sequences of the last step catch up, so the batch does not split into halves.
    if (!expected_.empty() && !stopping_) {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(options_.gather_seconds);
      work_cv_.wait_until(lock, deadline, [&] { return expected_.empty() || stopping_; });
    }
    expected_.clear();
    batch.swap(decodes_);
    decodes_.clear();
    // At most `budget` prompt tokens in this pass, from the waiting prefills oldest first.
    prefill_jobs.clear();
    prefill_taken.clear();
    size_t left = budget;
    for (Job* j : prefills_) {
      if (left == 0) break;
      const size_t n = std::min(j->tokens.size() - j->prefilled, left);
      prefill_jobs.push_back(j);
      prefill_taken.push_back(n);
      left -= n;
    }
    busy_ = true;
    run_pass(lock, batch, prefill_jobs, prefill_taken);
    busy_ = false;
    batch.clear();
  }
}

void BatchScheduler::run_pass(std::unique_lock<std::mutex>& lock, std::span<Job* const> batch,
                              std::span<Job* const> prefill_jobs, std::span<const size_t> prefill_taken) {
  const size_t n_vocab = static_cast<size_t>(model_.config().n_vocab);
  lock.unlock();
  // One pass: the decode rows and the prompt chunks (BatchForward: the weights are read once).
  rows_.clear();
  for (Job* j : batch) rows_.push_back(BatchRow{j->session, j->token, j->spec, j->step, j->stats, j->peer, j->pair});
  // Each chunk's logits go to its request's callback with the request's token index.
  struct Forward {
    Job* job;
    size_t offset;
    void operator()(int64_t i, const float* l) const { (*job->on_logits)(static_cast<int64_t>(offset) + i, l); }
  };
  std::vector<Forward> forwards;
  forwards.reserve(prefill_jobs.size());
  std::vector<PrefillChunk> chunks;
  std::vector<bool> in_pass(prefill_jobs.size(), false);  // false: the chunk failed its checks
  std::vector<PrefillChunk> peer_chunks;  // the same pieces for the peers on the second device
  for (size_t k = 0; k < prefill_jobs.size(); ++k) {
    Job& j = *prefill_jobs[k];
    const auto piece = j.tokens.subspan(j.prefilled, prefill_taken[k]);
    const bool last = j.prefilled + piece.size() == j.tokens.size();
    try {
      j.session->check_prefill(piece);
      check_peer(*j.session, j.peer);
      if (j.peer != nullptr) j.peer->check_prefill(piece);
    } catch (...) {
      j.error = std::current_exception();
      continue;
    }
    // Logits of the whole request's last token only in its last chunk.
    int64_t from = static_cast<int64_t>(piece.size());
    if (j.which == PrefillLogits::kAll) from = 0;
    if (j.which == PrefillLogits::kLast && last) from = from - 1;
    forwards.push_back(Forward{&j, j.prefilled});
    in_pass[k] = true;
    chunks.push_back(PrefillChunk{j.session, piece, from, nullptr});
    if (j.peer != nullptr) peer_chunks.push_back(PrefillChunk{j.peer, piece, static_cast<int64_t>(piece.size()), nullptr});
  }
  std::vector<FunctionRef<void(int64_t, const float*)>> callbacks(forwards.begin(), forwards.end());
  for (size_t k = 0; k < chunks.size(); ++k) chunks[k].on_logits = &callbacks[k];
  std::exception_ptr step_error;
  if (!rows_.empty() || !chunks.empty()) {
    try {
      if (!pair_decoder_) {
        const float* logits = decoder_.step(rows_, chunks);
        device_->parallel_for(batch.size(), [&](size_t i, int) {
          std::copy_n(logits + i * n_vocab, n_vocab, batch[i]->logits);
        });
      } else {
        // Two devices: the decode rows in one protocol pass, then the prompt chunks in a pass on
        // each device at once (the peers' pieces on the second, without logits).
        if (!rows_.empty()) {
          const float* logits = pair_decoder_->step(rows_);
          for (size_t i = 0; i < batch.size(); ++i) std::copy_n(logits + i * n_vocab, n_vocab, batch[i]->logits);
        }
        if (!chunks.empty()) {
          std::future<void> b;
          if (!peer_chunks.empty()) b = device_b_->submit([&] { decoder_b_->step({}, peer_chunks); });
          try {
            decoder_.step({}, chunks);
          } catch (...) {
            if (b.valid()) b.wait();
            throw;
          }
          if (b.valid()) b.get();
        }
      }
    } catch (...) {
      step_error = std::current_exception();
    }
  }

  lock.lock();
  if (!batch.empty()) {
    ++stats_.steps;
    stats_.rows += static_cast<int64_t>(batch.size());
  }
  for (Job* j : batch) {
    j->error = step_error;
    j->finished = true;
    if (!step_error) expected_.insert(j->session);
  }
  for (size_t k = 0; k < prefill_jobs.size(); ++k) {
    Job* j = prefill_jobs[k];
    if (in_pass[k] && step_error) j->error = step_error;
    if (in_pass[k] && !step_error) {
      j->prefilled += prefill_taken[k];
      stats_.prefill_tokens += static_cast<int64_t>(prefill_taken[k]);
      ++stats_.prefill_chunks;
    }
    if (j->error || j->prefilled == j->tokens.size()) {
      j->finished = true;
      prefills_.erase(std::find(prefills_.begin(), prefills_.end(), j));
    }
  }
  done_cv_.notify_all();
}

}  // namespace alspec
