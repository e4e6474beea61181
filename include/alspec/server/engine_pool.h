// N decoding slots sharing one loaded Model. Each slot owns an Engine (its own KV cache and
// device thread group) and runs one request at a time; requests beyond N wait in a bounded
// queue, and beyond that are refused with 503. Engines are built lazily and rebuilt when a
// request asks for other speculation settings than the slot's engine has.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "alspec/model/model.h"
#include "alspec/spec/engine.h"

namespace alspec::server {

class EnginePool {
 public:
  // `base`: engine options of every slot (threads already divided among slots).
  EnginePool(const Model& model, EngineOptions base, int n_slots, int max_queue);
  ~EnginePool();

  class Lease {
   public:
    ~Lease();
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    int slot() const { return slot_; }
    // The slot's engine configured with `spec` (mode, lambda, spec_chunk); rebuilt if needed.
    Engine& engine(const SpecConfig& spec);

   private:
    friend class EnginePool;
    Lease(EnginePool& pool, int slot) : pool_(pool), slot_(slot) {}
    EnginePool& pool_;
    int slot_;
  };

  // Waits for a free slot. Throws ApiError(503) when the queue is full or the pool is closed.
  std::unique_ptr<Lease> acquire();
  // Refuses new requests from now on (those already waiting still get a slot).
  void close();

  const EngineOptions& base_options() const { return base_; }
  int slots() const { return static_cast<int>(slots_.size()); }
  int64_t ctx_size() const { return ctx_size_; }  // resolved KV capacity of every slot
  int max_queue() const { return max_queue_; }
  int busy() const;
  int queued() const;

 private:
  struct Slot {
    std::unique_ptr<Engine> engine;
    SpecConfig spec;  // as requested (spec_chunk 0 = auto), for comparison
    bool busy = false;
  };
  void release(int slot);

  const Model& model_;
  EngineOptions base_;
  int max_queue_;
  int64_t ctx_size_ = 0;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Slot> slots_;
  int waiting_ = 0;
  bool closed_ = false;
};

}  // namespace alspec::server
