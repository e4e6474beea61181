#include "alspec/spec/batch_scheduler.h"

#include <algorithm>
#include <chrono>
#include <string>

#include "alspec/core/error.h"

namespace alspec {

struct BatchScheduler::Job {
  Session* session = nullptr;
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
DeviceOptions device_options(const BatchSchedulerOptions& o) {
  if (o.threads < 0) throw_invalid_argument("batch scheduler: threads must be >= 0");
  if (o.prefill_chunk < 1) throw_invalid_argument("batch scheduler: prefill_chunk must be >= 1");
  if (!(o.gather_seconds >= 0)) throw_invalid_argument("batch scheduler: gather_seconds must be >= 0");
  DeviceOptions d;
  d.name = "batch";
  d.threads = o.threads > 0 ? o.threads : std::max<int>(1, static_cast<int>(available_cores().size()));
  d.cores = o.cores;
  return d;
}
}  // namespace

BatchScheduler::BatchScheduler(const Model& model, BatchSchedulerOptions options)
    : model_(model),
      options_(std::move(options)),
      device_(std::make_unique<Device>(device_options(options_))),
      decoder_(model, *device_) {
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
  } else {
    decodes_.push_back(&job);
  }
  work_cv_.notify_all();
  done_cv_.wait(lock, [&] { return job.finished; });
  if (job.error) std::rethrow_exception(job.error);
}

void BatchScheduler::decode(Session& session, int32_t token, const SpecConfig& spec, int64_t step, SpecStats& stats,
                            float* logits) {
  session.check_prefill(std::span<const int32_t>(&token, 1));  // fails this sequence alone, not the batch
  Job job;
  job.session = &session;
  job.token = token;
  job.spec = &spec;
  job.step = step;
  job.stats = &stats;
  job.logits = logits;
  submit(job);
}

void BatchScheduler::prefill(Session& session, std::span<const int32_t> tokens, PrefillLogits which,
                             FunctionRef<void(int64_t, const float*)> on_logits) {
  session.check_prefill(tokens);  // all of it, before the first chunk changes the session
  if (tokens.empty()) return;
  Job job;
  job.session = &session;
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

void BatchScheduler::run_prefill_chunk(Job& job) {
  const size_t n = std::min(job.tokens.size() - job.prefilled, static_cast<size_t>(options_.prefill_chunk));
  const bool last = job.prefilled + n == job.tokens.size();
  // Logits of the whole request's last token only in its last chunk; all rows keep their index.
  PrefillLogits which = job.which;
  if (which == PrefillLogits::kLast && !last) which = PrefillLogits::kNone;
  const int64_t offset = static_cast<int64_t>(job.prefilled);
  job.session->prefill(job.tokens.subspan(job.prefilled, n), which,
                       [&](int64_t i, const float* l) { (*job.on_logits)(offset + i, l); });
  job.prefilled += n;
}

void BatchScheduler::loop() {
  std::vector<Job*> batch;
  const float* logits = nullptr;
  const size_t n_vocab = static_cast<size_t>(model_.config().n_vocab);
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [&] { return stopping_ || !decodes_.empty() || !prefills_.empty(); });
    if (decodes_.empty() && prefills_.empty()) break;  // stopping, nothing left
    // Let the sequences of the last step catch up, so the batch does not split into halves.
    if (!expected_.empty() && !stopping_) {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(options_.gather_seconds);
      work_cv_.wait_until(lock, deadline, [&] { return expected_.empty() || stopping_; });
    }
    expected_.clear();
    batch.swap(decodes_);
    decodes_.clear();
    Job* prefill = prefills_.empty() ? nullptr : prefills_.front();
    lock.unlock();

    std::exception_ptr step_error;
    if (!batch.empty()) {
      rows_.clear();
      for (Job* j : batch) rows_.push_back(BatchRow{j->session, j->token, j->spec, j->step, j->stats});
      try {
        logits = decoder_.step(rows_);
        for (size_t i = 0; i < batch.size(); ++i) std::copy_n(logits + i * n_vocab, n_vocab, batch[i]->logits);
      } catch (...) {
        step_error = std::current_exception();
      }
    }
    bool prefill_done = false;
    size_t prefilled_before = prefill ? prefill->prefilled : 0;
    if (prefill != nullptr) {
      try {
        run_prefill_chunk(*prefill);
        prefill_done = prefill->prefilled == prefill->tokens.size();
      } catch (...) {
        prefill->error = std::current_exception();
        prefill_done = true;
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
    batch.clear();
    if (prefill != nullptr) {
      stats_.prefill_tokens += static_cast<int64_t>(prefill->prefilled - prefilled_before);
      ++stats_.prefill_chunks;
      if (prefill_done) {
        prefill->finished = true;
        prefills_.pop_front();
      }
    }
    done_cv_.notify_all();
  }
}

}  // namespace alspec
