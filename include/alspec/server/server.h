// `alspec serve`: an OpenAI-compatible HTTP server (cpp-httplib) over one loaded Model with N
// engine slots. Endpoints: /v1/completions, /v1/chat/completions, /v1/models, /health,
// /tokenize, /detokenize, /tokenizer_info, /metrics. See docs/server.md.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "alspec/model/model.h"
#include "alspec/spec/engine.h"

namespace alspec::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                 // 0 = any free port (see Server::bind)
  // Requests decoded at once. With batching: the largest batch (sequences, each with its own KV
  // cache, whose decode steps share one pass over the weights); without: separate engines.
  int parallel = 1;
  // Continuous batching (one BatchScheduler for all slots; off: each slot is its own engine with
  // its share of the threads, the only layout under mpirun).
  bool batching = true;
  int prefill_chunk = 64;          // prompt tokens prefilled between two batched decode steps
  // Devices of the batch (1 or 2). 2: alspec requests run the two-device protocol inside the
  // batch (each sequence on both devices); the other modes run on the first device. Needs batching.
  int batch_devices = 1;
  int max_queue = 64;              // requests waiting for a slot before 503
  int http_threads = 0;            // connections served at once; 0 = max(512, parallel + max_queue + 4)
  size_t max_body_bytes = 8u << 20;
  std::string model_name;          // id in /v1/models; empty = file name without .gguf
  std::string chat_format;         // empty = detect from tokenizer.chat_template
  // Per slot; threads 0 = every available core with batching, else cores / (parallel * devices).
  EngineOptions engine;
  int max_n = 16;
  int max_logprobs = 20;
  bool log_requests = false;       // one line per request on stderr
  // Non-empty: every request but GET /health and CORS preflights needs "Authorization: Bearer
  // <api_key>"; others get 401 invalid_api_key.
  std::string api_key;
  // Non-empty: Access-Control-Allow-Origin on every response and OPTIONS preflights answered 204
  // (browser clients); "*" allows any origin.
  std::string cors_origin;
};

class Server {
 public:
  Server(const Model& model, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listening socket; returns the port (the chosen one when options.port is 0).
  // Throws Error(kIo) when the address cannot be bound.
  int bind();
  // Serves until stop(); returns after in-flight requests have been answered.
  void run();
  // Graceful shutdown, callable from any thread (not from a signal handler): new connections
  // are refused, requests already received finish or are answered 503.
  void stop();

  const std::string& model_name() const;
  // Whether slots are batched (off under mpirun and for chunked models, whatever the options say).
  bool batching() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace alspec::server
