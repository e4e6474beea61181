#include "two_device_jobs.h"

#include <future>
#include <string>

#include "alspec/core/error.h"

namespace alspec {

void run_on_two_devices(const std::array<Device*, 2>& devices, const std::array<Channel*, 2>& channels,
                        FunctionRef<void(int device)> job) {
  struct Failure {
    bool failed = false;
    ErrorKind kind = ErrorKind::kRuntime;
    std::string message;
  };
  std::array<Failure, 2> failures;
  std::array<std::future<void>, 2> futs;
  for (int d = 0; d < 2; ++d) {
    auto& failure = failures[static_cast<size_t>(d)];
    Device& device = *devices[static_cast<size_t>(d)];
    Channel& channel = *channels[static_cast<size_t>(d)];
    futs[static_cast<size_t>(d)] = device.submit([&, d] {
      try {
        job(d);
      } catch (const Error& e) {
        failure = {true, e.kind(), e.what()};
      } catch (const std::exception& e) {
        failure = {true, ErrorKind::kRuntime, e.what()};
      }
      if (failure.failed) channel.abort("device " + device.name() + ": " + failure.message);
    });
  }
  for (auto& f : futs) f.get();
  const Failure* report = nullptr;
  for (const auto& f : failures) {
    if (!f.failed) continue;
    const bool echo = f.message.rfind("peer device stopped", 0) == 0;
    if (!report || (!echo && report->message.rfind("peer device stopped", 0) == 0)) report = &f;
  }
  if (report) throw Error(report->kind, report->message);
}

}  // namespace alspec
