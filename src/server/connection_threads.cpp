#include "server/connection_threads.h"

#include <thread>
#include <utility>

namespace alspec::server {

ConnectionThreads::ConnectionThreads(size_t max_threads) : max_threads_(max_threads < 1 ? 1 : max_threads) {}

ConnectionThreads::~ConnectionThreads() { shutdown(); }

void ConnectionThreads::enqueue(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (running_ >= max_threads_) {
    waiting_.push_back(std::move(fn));
    return;
  }
  ++running_;
  std::thread([this, f = std::move(fn)]() mutable { run(std::move(f)); }).detach();
}

// Runs a connection, then the waiting ones on the same thread; the thread ends when none wait.
// The count drops under the lock as the thread's last act on this object, so shutdown() (and the
// destructor after it) never outlive a thread that still touches it.
void ConnectionThreads::run(std::function<void()> fn) {
  for (;;) {
    fn();
    std::lock_guard<std::mutex> lock(mu_);
    if (waiting_.empty()) {
      --running_;
      idle_.notify_all();
      return;
    }
    fn = std::move(waiting_.front());
    waiting_.pop_front();
  }
}

void ConnectionThreads::shutdown() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_.wait(lock, [this] { return running_ == 0 && waiting_.empty(); });
}

}  // namespace alspec::server
