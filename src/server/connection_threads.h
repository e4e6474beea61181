// Internal: the HTTP server's task queue. One thread per open connection, started on demand and
// ended with it, up to a cap; connections beyond the cap wait for a thread. A fixed pool sized
// for the engine slots let a few dozen idle or slow clients (httplib's read timeout applies to
// each recv, so a header line every few seconds keeps a connection open) take every thread, and
// /health stopped answering; idle connection threads cost only their stack.
#pragma once

#include <httplib.h>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>

namespace alspec::server {

class ConnectionThreads final : public httplib::TaskQueue {
 public:
  explicit ConnectionThreads(size_t max_threads);
  ~ConnectionThreads() override;
  void enqueue(std::function<void()> fn) override;
  void shutdown() override;  // waits until every connection task has ended

 private:
  void run(std::function<void()> fn);

  const size_t max_threads_;
  std::mutex mu_;
  std::condition_variable idle_;
  std::deque<std::function<void()>> waiting_;
  size_t running_ = 0;
};

}  // namespace alspec::server
