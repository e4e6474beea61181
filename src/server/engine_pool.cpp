#include "alspec/server/engine_pool.h"

#include <algorithm>

#include "alspec/core/error.h"
#include "alspec/server/api_error.h"

namespace alspec::server {

EnginePool::EnginePool(const Model& model, EngineOptions base, int n_slots, int max_queue)
    : model_(model), base_(std::move(base)), max_queue_(max_queue) {
  if (n_slots < 1) throw_invalid_argument("--parallel must be >= 1");
  if (max_queue < 0) throw_invalid_argument("--queue must be >= 0");
  slots_.resize(static_cast<size_t>(n_slots));
  // Build every default engine now: configuration errors surface at start-up, not per request.
  for (auto& s : slots_) {
    s.spec = base_.spec;
    s.engine = std::make_unique<Engine>(model_, base_);
  }
  ctx_size_ = slots_.front().engine->ctx_size();
}

EnginePool::~EnginePool() = default;

std::unique_ptr<EnginePool::Lease> EnginePool::acquire() {
  std::unique_lock<std::mutex> lock(mu_);
  if (closed_) throw ApiError(503, "server_error", "shutting_down", "the server is shutting down");
  auto free_slot = [&]() -> int {
    for (size_t i = 0; i < slots_.size(); ++i) {
      if (!slots_[i].busy) return static_cast<int>(i);
    }
    return -1;
  };
  int slot = free_slot();
  if (slot < 0) {
    if (waiting_ >= max_queue_) {
      throw ApiError(503, "server_error", "queue_full",
                     "all " + std::to_string(slots_.size()) + " slots are busy and " + std::to_string(max_queue_) +
                         " requests are already waiting; retry later");
    }
    ++waiting_;
    cv_.wait(lock, [&] { return (slot = free_slot()) >= 0; });
    --waiting_;
  }
  slots_[static_cast<size_t>(slot)].busy = true;
  return std::unique_ptr<Lease>(new Lease(*this, slot));
}

void EnginePool::release(int slot) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    slots_[static_cast<size_t>(slot)].busy = false;
  }
  cv_.notify_one();
}

void EnginePool::close() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
}

int EnginePool::busy() const {
  std::lock_guard<std::mutex> lock(mu_);
  int n = 0;
  for (const auto& s : slots_) n += s.busy ? 1 : 0;
  return n;
}

int EnginePool::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return waiting_;
}

EnginePool::Lease::~Lease() { pool_.release(slot_); }

Engine& EnginePool::Lease::engine(const SpecConfig& spec) {
  // Only the leaseholder touches its slot's engine, so no lock is needed here.
  Slot& s = pool_.slots_[static_cast<size_t>(slot_)];
  const bool same = s.engine && s.spec.mode == spec.mode && s.spec.lambda == spec.lambda &&
                    s.spec.spec_chunk == spec.spec_chunk;
  // Same S and device count: switch mode/lambda in place and keep the KV cache for prompt caching.
  if (!same && s.engine && s.engine->accepts_speculation(spec)) {
    s.engine->set_speculation(spec);
    s.spec = spec;
  } else if (!same) {
    EngineOptions o = pool_.base_;
    // On a batch scheduler every mode runs on its one device.
    const bool devices_change = o.scheduler == nullptr &&
                                (spec.mode == AttentionMode::kAlspec) != (o.spec.mode == AttentionMode::kAlspec);
    o.spec.mode = spec.mode;
    o.spec.lambda = spec.lambda;
    o.spec.spec_chunk = spec.spec_chunk;
    // A request's own S replaces the per-layer S of --spec-budgets (whose mean is the base S).
    if (spec.spec_chunk != pool_.base_.spec.spec_chunk) o.layer_spec_chunk.clear();
    if (devices_change) {
      // alspec needs two devices: split this slot's threads between them (at least one each).
      const int slot_threads = pool_.base_.threads * pool_.base_.devices;
      o.devices = 0;
      o.device_cores.clear();
      o.threads = default_threads_per_device(slot_threads, default_device_count(spec.mode));
    }
    s.engine.reset();  // free the old KV cache first
    s.engine = std::make_unique<Engine>(pool_.model_, o);
    s.spec = spec;
  }
  return *s.engine;
}

}  // namespace alspec::server
