#!/usr/bin/env python3
"""Aggregate decode throughput and request latency of an OpenAI-compatible completion server
under 1..N concurrent clients: `alspec serve` (continuous batching) or llama-cpp-python's server,
on the same GGUF file with the same thread count. Not part of `make test` (timed).

Each point: C clients each send --requests non-streaming /v1/completions requests one after the
other (same short prompt, greedy, --max-tokens new tokens, end-of-generation suppressed so every
request generates exactly max_tokens). aggregate tok/s = completion tokens of all requests / wall
time of the point (it includes each request's prefill of the few prompt tokens); latency = one
request's time, p50/p99 over all requests of the point's repetitions. The figure of a point is
the median over --reps repetitions.

Usage (see docs/benchmarks.md, "Server"):
  scripts/bench_server.py --server alspec --model models/M.gguf --threads 2 --clients 1,4,8,16
  scripts/bench_server.py --server llamacpp --python build/llcpp-venv/bin/python --model ...
Prints one JSON object per point.
"""
import argparse
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "Write a Python function that returns the n-th Fibonacci number, with a docstring and tests."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(port: int, body: dict, timeout: float = 600.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", "/v1/completions", body=json.dumps(body), headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError(f"HTTP {r.status}: {data[:300]!r}")
        return json.loads(data)
    finally:
        conn.close()


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 300.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited with " + str(proc.returncode))
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/v1/models")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("server not ready")


def start_server(args, port: int, max_clients: int) -> subprocess.Popen:
    if args.server == "alspec":
        # Batching: one device with all the threads. Without: the threads are divided among the
        # slots (at least one each), as `serve --threads 0` does.
        # With --batch-devices 2 the server's --threads is per device: the threads are split.
        threads = max(1, args.threads // max_clients) if args.no_batching else max(1, args.threads // args.batch_devices)
        cmd = [args.alspec_bin, "serve", "--model", args.model, "--host", "127.0.0.1", "--port", str(port),
               "--threads", str(threads), "--parallel", str(max_clients), "--ctx-size", str(args.ctx_size),
               "--queue", "64", "--batch-devices", str(args.batch_devices)] + (["--no-batching"] if args.no_batching else [])
    else:
        cmd = [args.python, "-m", "llama_cpp.server", "--model", args.model, "--host", "127.0.0.1", "--port", str(port),
               "--n_threads", str(args.threads), "--n_threads_batch", str(args.threads), "--n_ctx", str(args.ctx_size)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def request_body(args) -> dict:
    body = {"prompt": PROMPT, "max_tokens": args.max_tokens, "temperature": 0}
    if args.server == "alspec":
        body["ignore_eos"] = True
        if args.attention:
            body["alspec"] = {"attention": args.attention, "lambda": args.lambda_}
    else:  # llama-cpp-python has no ignore_eos: suppress the end-of-generation tokens instead
        body["logit_bias"] = {str(t): -100.0 for t in args.eos_ids.split(",")}
    return body


def run_point(args, port: int, clients: int):
    body = request_body(args)
    latencies, tokens, errors, spec = [], [], [], [0, 0]  # spec: checks, hits
    lock = threading.Lock()

    def client():
        for _ in range(args.requests):
            t0 = time.perf_counter()
            try:
                j = post(port, body)
            except Exception as e:  # noqa: BLE001 - reported in the output
                with lock:
                    errors.append(str(e))
                continue
            dt = time.perf_counter() - t0
            with lock:
                latencies.append(dt)
                tokens.append(j["usage"]["completion_tokens"])
                if "alspec" in j:
                    spec[0] += j["alspec"].get("checks", 0)
                    spec[1] += j["alspec"].get("hits", 0)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {"wall": wall, "tokens": sum(tokens), "latencies": latencies, "short": sum(t < args.max_tokens for t in tokens),
            "errors": errors, "checks": spec[0], "hits": spec[1]}


def pct(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", choices=["alspec", "llamacpp"], required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clients", default="1,4,8,16")
    ap.add_argument("--requests", type=int, default=2, help="requests per client, one after the other")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--ctx-size", type=int, default=512, help="context per sequence (alspec: per slot)")
    ap.add_argument("--alspec-bin", default=str(ROOT / "build" / "bin" / "alspec"))
    ap.add_argument("--no-batching", action="store_true", help="alspec: one engine per slot (the old layout)")
    ap.add_argument("--batch-devices", type=int, default=1,
                    help="alspec: devices of the batch (serve --batch-devices; --threads are split between them)")
    ap.add_argument("--attention", default="", help="alspec: the requests' attention mode (default: the server's, exact)")
    ap.add_argument("--lambda", dest="lambda_", type=float, default=0.1, help="alspec: the requests' lambda with --attention")
    ap.add_argument("--python", default=str(ROOT / "build" / "llcpp-venv" / "bin" / "python"),
                    help="llama-cpp-python's interpreter (scripts/make-reference-venv.sh llcpp)")
    ap.add_argument("--eos-ids", default="151643,151645", help="llamacpp: token ids to suppress (Qwen2.5: endoftext, im_end)")
    args = ap.parse_args()
    clients = [int(c) for c in args.clients.split(",")]
    port = free_port()
    proc = start_server(args, port, max(clients))
    try:
        wait_ready(port, proc)
        post(port, {**request_body(args), "max_tokens": 8})  # warm-up: page in the weights
        for c in clients:
            reps = [run_point(args, port, c) for _ in range(args.reps)]
            lat = [x for r in reps for x in r["latencies"]]
            print(json.dumps({
                "server": args.server + (" (no batching)" if args.no_batching else "") +
                          (f" ({args.batch_devices} batch devices)" if args.batch_devices != 1 else ""),
                "attention": args.attention or None,
                "checks": sum(r["checks"] for r in reps), "hits": sum(r["hits"] for r in reps),
                "model": os.path.basename(args.model), "threads": args.threads, "clients": c,
                "requests": c * args.requests, "max_tokens": args.max_tokens,
                "agg_tok_s": statistics.median(r["tokens"] / r["wall"] for r in reps),
                "agg_tok_s_all": [round(r["tokens"] / r["wall"], 2) for r in reps],
                "p50_s": pct(lat, 0.5) if lat else None, "p99_s": pct(lat, 0.99) if lat else None,
                "short_requests": sum(r["short"] for r in reps), "errors": [e for r in reps for e in r["errors"]][:3],
            }), flush=True)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
