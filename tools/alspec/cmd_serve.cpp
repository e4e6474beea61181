// `alspec serve`: OpenAI-compatible HTTP server (see docs/server.md). SIGTERM/SIGINT stop it
// gracefully: new connections are refused and requests already received are answered.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <bit>
#include <cstdio>
#include <thread>
#include <vector>

#include "alspec/command.h"
#include "alspec/core/error.h"
#include "alspec/model/model.h"
#include "alspec/server/server.h"
#include "engine_options.h"
#include "parallel.h"

namespace alspec::cli {
namespace {

struct ServeArgs {
  EngineArgs engine;
  server::ServerOptions server;
  size_t max_body_kib = 8192;
};

// serve under mpirun: rank 0 runs the HTTP server with one slot and sends every state-changing
// engine call to the other ranks, which replay it on their engines (same model shard layout, same
// options), so the collectives of tensor parallelism and the alspec protocol line up.
constexpr int kCallTag = 300, kTokensTag = 301;
constexpr size_t kCallWords = 8;

void send_call(ProcessGroups& g, const EngineCall& c) {
  const int64_t h[kCallWords] = {static_cast<int64_t>(c.op), static_cast<int64_t>(c.mode),
                                 static_cast<int64_t>(std::bit_cast<uint32_t>(c.lambda)), c.spec_chunk, c.n,
                                 static_cast<int64_t>(c.seed), c.token, static_cast<int64_t>(c.tokens.size())};
  for (int r = 1; r < g.world_size; ++r) {
    g.world->send(CommOp::kControl, r, kCallTag, std::as_bytes(std::span<const int64_t>(h, kCallWords)));
    if (!c.tokens.empty()) g.world->send(CommOp::kControl, r, kTokensTag, std::as_bytes(c.tokens));
  }
}

int follow(ProcessGroups& g, const Model& model, const EngineOptions& base) {
  std::unique_ptr<Engine> engine;
  std::vector<int32_t> tokens;
  for (;;) {
    int64_t h[kCallWords] = {};
    g.world->recv(CommOp::kControl, 0, kCallTag, std::as_writable_bytes(std::span<int64_t>(h, kCallWords)));
    tokens.resize(static_cast<size_t>(h[7]));
    if (!tokens.empty()) g.world->recv(CommOp::kControl, 0, kTokensTag, std::as_writable_bytes(std::span<int32_t>(tokens)));
    const auto op = static_cast<EngineCall::Op>(h[0]);
    if (op == EngineCall::Op::kStop) return 0;
    SpecConfig spec = base.spec;
    spec.mode = static_cast<AttentionMode>(h[1]);
    spec.lambda = std::bit_cast<float>(static_cast<uint32_t>(h[2]));
    spec.spec_chunk = static_cast<int>(h[3]);
    // Rank 0 meets the same error on the same input and reports it to its client.
    try {
      switch (op) {
        case EngineCall::Op::kCreate: {
          engine.reset();
          EngineOptions o = base;
          o.spec = spec;
          engine = std::make_unique<Engine>(model, o);
          break;
        }
        case EngineCall::Op::kDestroy: engine.reset(); break;
        case EngineCall::Op::kTruncate: engine->truncate(h[4]); break;
        case EngineCall::Op::kSetSpeculation: engine->set_speculation(spec); break;
        case EngineCall::Op::kPrefill:
          engine->prefill(tokens, static_cast<PrefillLogits>(h[4]), [](int64_t, const float*) {});
          break;
        case EngineCall::Op::kDecode: engine->decode(static_cast<int32_t>(h[6])); break;
        case EngineCall::Op::kResetStats: engine->reset_stats(); break;
        case EngineCall::Op::kFillRandom: engine->fill_random(h[4], static_cast<uint64_t>(h[5])); break;
        case EngineCall::Op::kStop: return 0;
      }
    } catch (const Error&) {
    }
  }
}

int serve(ServeArgs& a, const Model& model, sigset_t stop_signals);

int run(ServeArgs& a) {
  // Block the stop signals in every thread (threads inherit the mask); one thread waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  a.server.engine = a.engine.to_options();
  ProcessGroups& groups = *a.server.engine.groups;
  if (groups.distributed() && a.server.parallel != 1) {
    throw_invalid_argument("serve under mpirun runs one engine slot (--parallel 1), got --parallel " +
                           std::to_string(a.server.parallel));
  }
  a.server.max_body_bytes = a.max_body_kib * 1024;
  auto model = a.engine.load_model();
  if (groups.distributed() && !groups.primary()) {
    // mpirun forwards SIGTERM to every rank: followers keep it blocked and end when rank 0, which
    // finishes its in-flight requests first, sends kStop.
    return follow(groups, *model, a.server.engine);
  }
  if (groups.distributed()) {
    a.server.engine.mirror = [&groups](const EngineCall& c) { send_call(groups, c); };
  }
  const int rc = serve(a, *model, stop_signals);
  if (groups.distributed()) send_call(groups, EngineCall{.op = EngineCall::Op::kStop});
  return rc;
}

int serve(ServeArgs& a, const Model& model, sigset_t stop_signals) {
  server::Server srv(model, a.server);
  const int port = srv.bind();
  std::fprintf(stderr, "alspec serve: model '%s' on http://%s:%d (%d slot(s)%s)\n", srv.model_name().c_str(),
               a.server.host.c_str(), port, a.server.parallel, srv.batching() ? ", batched" : "");
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
                 "Requests decoded at once, each with its own KV cache: the largest batch of a decode step "
                 "(with --no-batching: separate engines sharing the threads)")
      ->capture_default_str();
  app.add_flag("--no-batching{false}", a->server.batching,
               "Run each slot as its own engine instead of batching the decode steps of all slots");
  app.add_option("--batch-devices", a->server.batch_devices,
                 "Devices of the batch, 1 or 2 (the cores split between them): with 2, alspec requests run the "
                 "two-device protocol inside the batch; other modes run on the first device")
      ->capture_default_str();
  app.add_option("--prefill-chunk", a->server.prefill_chunk,
                 "Prompt tokens prefilled between two batched decode steps")
      ->capture_default_str();
  app.add_option("--queue", a->server.max_queue, "Requests that may wait for a slot before 503")->capture_default_str();
  app.add_option("--http-threads", a->server.http_threads, "Open connections served at once, one thread each (0 = max(512, parallel + queue + 4))");
  app.add_option("--max-body-kib", a->max_body_kib, "Largest request body in KiB (413 beyond)")->capture_default_str();
  app.add_option("--alias", a->server.model_name, "Model id reported by /v1/models (default: file name)");
  app.add_option("--chat-format", a->server.chat_format,
                 "Chat prompt format: llama3, chatml, llama2, gemma, plain (default: detected from the GGUF template)");
  app.add_option("--max-n", a->server.max_n, "Largest accepted n")->capture_default_str();
  app.add_option("--max-logprobs", a->server.max_logprobs, "Largest accepted logprobs")->capture_default_str();
  app.add_flag("--log-requests", a->server.log_requests, "One line per request on stderr");
  app.add_option("--api-key", a->server.api_key,
                 "Require 'Authorization: Bearer KEY' on every request but GET /health (401 otherwise)");
  app.add_option("--cors-origin", a->server.cors_origin,
                 "Allow browser clients from this origin ('*' = any): CORS headers and OPTIONS preflights");
  return std::function<int()>([a] { return run(*a); });
}});

}  // namespace
}  // namespace alspec::cli
