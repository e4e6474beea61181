#!/usr/bin/env python3
"""Exact-mode perplexity of `alspec eval` vs the independent float64 reference.

  check_perplexity_vs_reference.py --alspec BIN --work DIR

Runs `alspec eval` on tests/eval/tasks/tiny_rolling.json (exact mode, F32 KV cache), then, for
every rolling window the engine recorded in items.jsonl (tokens and [start, end, first_scored]),
asks tests/reference/llama_ref.py for the teacher-forced logits of that window and sums the
log-probabilities of the scored positions. Perplexity and bits per byte must agree to a relative
1e-6 (the engine computes in float32, the reference in float64; measured: 2.5e-8 relative).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "assets", "models", "stories260K.gguf")
TASK = os.path.join(ROOT, "tests", "eval", "tasks", "tiny_rolling.json")
REF = os.path.join(ROOT, "tests", "reference", "llama_ref.py")
REL_TOL = 1e-6


def log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--alspec", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    out = os.path.join(a.work, "eval-ppl")
    subprocess.run([a.alspec, "eval", "--model", MODEL, "--task", TASK, "--modes", "exact", "--kv-type", "f32",
                    "--threads", "1", "--out", out, "--no-plot", "--no-progress"], check=True)
    with open(os.path.join(out, "results.json"), encoding="utf-8") as f:
        results = json.load(f)
    engine = results["tasks"][0]["results"][0]["metrics"]
    ll, n_tokens, n_bytes = 0.0, 0, 0
    with open(os.path.join(out, "items.jsonl"), encoding="utf-8") as f:
        records = [json.loads(line) for line in f if '"record"' in line]
    for rec in records:
        r = rec["record"]
        toks = r["tokens"]
        for start, end, first in r["windows"]:
            with tempfile.TemporaryDirectory() as tmp:
                npy = os.path.join(tmp, "logits.npy")
                subprocess.run([sys.executable, REF, "--model", MODEL, "--kv-type", "f32", "--tokens",
                                ",".join(map(str, toks[start:end])), "--logits-out", npy], check=True)
                lp = log_softmax(np.load(npy))
            for pos in range(first, end):  # logits row i predicts window token i + 1
                ll += lp[pos - start - 1, toks[pos]]
        n_tokens += len(toks) - 1
        n_bytes += r["n_bytes"]
    ppl = math.exp(-ll / n_tokens)
    bpb = -ll / (math.log(2) * n_bytes)
    print(f"perplexity: engine {engine['perplexity']:.8f} reference {ppl:.8f} rel {abs(engine['perplexity'] / ppl - 1):.2e}")
    print(f"bits/byte:  engine {engine['bits_per_byte']:.8f} reference {bpb:.8f} rel {abs(engine['bits_per_byte'] / bpb - 1):.2e}")
    ok = abs(engine["perplexity"] / ppl - 1) <= REL_TOL and abs(engine["bits_per_byte"] / bpb - 1) <= REL_TOL
    if engine["tokens"] != n_tokens or engine["bytes"] != n_bytes:
        print(f"token/byte counts differ: engine {engine['tokens']}/{engine['bytes']} vs {n_tokens}/{n_bytes}")
        ok = False
    print("OK" if ok else f"FAIL: relative tolerance {REL_TOL}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
