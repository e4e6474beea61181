// `alspec serve`: OpenAI-compatible HTTP server (see docs/server.md). SIGTERM/SIGINT stop it
// gracefully: new connections are refused and requests already received are answered.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <thread>

#include "alspec/command.h"
#include "alspec/core/error.h"
#include "alspec/model/model.h"
#include "alspec/server/server.h"
#include "engine_options.h"

namespace alspec::cli {
namespace {

struct ServeArgs {
  EngineArgs engine;
  server::ServerOptions server;
  size_t max_body_kib = 8192;
};

int run(ServeArgs& a) {
  // Block the stop signals in every thread (threads inherit the mask); one thread waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  a.server.engine = a.engine.to_options();
  if (a.server.engine.groups->distributed()) {
    throw_invalid_argument("serve does not run under mpirun with more than one rank yet (got " +
                           std::to_string(a.server.engine.groups->world_size) +
                           "); start it as one process, or use generate/score/bench/eval under mpirun");
  }
  a.server.max_body_bytes = a.max_body_kib * 1024;
  auto model = a.engine.load_model();
  server::Server srv(*model, a.server);
  const int port = srv.bind();
  std::fprintf(stderr, "alspec serve: model '%s' on http://%s:%d (%d slot(s))\n", srv.model_name().c_str(),
               a.server.host.c_str(), port, a.server.parallel);
  std::fflush(stderr);
  std::atomic<bool> finished{false};
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    if (finished) return;  // woken up by the main thread: the server already stopped
    std::fprintf(stderr, "alspec serve: signal %d, finishing in-flight requests\n", sig);
    srv.stop();
  });
  srv.run();
  // The server can also end without a signal (listen failure): release the waiter.
  finished = true;
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  std::fprintf(stderr, "alspec serve: stopped\n");
  return 0;
}

const CommandRegistrar kServe({"serve", "OpenAI-compatible HTTP server", [](CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  a->engine.add_to(app);
  app.add_option("--host", a->server.host, "Address to listen on")->capture_default_str();
  app.add_option("--port", a->server.port, "TCP port (0 = any free port, printed at start)")->capture_default_str();
  app.add_option("--parallel", a->server.parallel,
                 "Engine slots: requests decoded at once, each with its own KV cache and threads")
      ->capture_default_str();
  app.add_option("--queue", a->server.max_queue, "Requests that may wait for a slot before 503")->capture_default_str();
  app.add_option("--http-threads", a->server.http_threads, "Connections served at once (0 = parallel + queue + 4)");
  app.add_option("--max-body-kib", a->max_body_kib, "Largest request body in KiB (413 beyond)")->capture_default_str();
  app.add_option("--alias", a->server.model_name, "Model id reported by /v1/models (default: file name)");
  app.add_option("--chat-format", a->server.chat_format,
                 "Chat prompt format: llama3, chatml, llama2, gemma, plain (default: detected from the GGUF template)");
  app.add_option("--max-n", a->server.max_n, "Largest accepted n")->capture_default_str();
  app.add_option("--max-logprobs", a->server.max_logprobs, "Largest accepted logprobs")->capture_default_str();
  app.add_flag("--log-requests", a->server.log_requests, "One line per request on stderr");
  return std::function<int()>([a] { return run(*a); });
}});

}  // namespace
}  // namespace alspec::cli
