#!/usr/bin/env python3
"""Decode/prefill throughput of llama.cpp (through llama-cpp-python) on a GGUF file, to put next
to `alspec bench` on the same file and thread counts. Not part of `make test`.

llama-cpp-python (0.3.36) is built from its PyPI source distribution (it vendors llama.cpp) into
build/llcpp-venv by:
    scripts/make-reference-venv.sh llcpp
On CPUs that report AMX the native build's AMX int8 path crashed here (SIGSEGV in
ggml_backend_amx_mul_mat); this script disables the extra (repacked) buffer types, which avoids it.

Usage: build/llcpp-venv/bin/python scripts/bench_llamacpp.py MODEL.gguf --threads 1,2 --depth 0 --n-gen 16
Prints one JSON object per point: threads, depth, prefill_tps, decode_ms (median), decode_tps.
"""
import argparse
import json
import statistics
import time

import llama_cpp
import llama_cpp.llama as llama_module
from llama_cpp import Llama


def no_extra_bufts():
    """No repacked weight buffers (avoids the AMX crash above); also used by reference/deep_logits.py."""
    orig = llama_cpp.llama_model_default_params

    def params():
        p = orig()
        p.use_extra_bufts = False
        return p

    llama_cpp.llama_model_default_params = params
    llama_module.llama_cpp.llama_model_default_params = params


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--depth", default="0")
    ap.add_argument("--n-gen", type=int, default=16)
    ap.add_argument("--prompt-len", type=int, default=64)
    ap.add_argument("--flash-attn", action="store_true")
    args = ap.parse_args()
    no_extra_bufts()
    for t in [int(x) for x in args.threads.split(",")]:
        for depth in [int(x) for x in args.depth.split(",")]:
            n_ctx = max(depth, args.prompt_len) + args.n_gen + 8
            llm = Llama(model_path=args.model, n_ctx=n_ctx, n_threads=t, n_threads_batch=t, n_batch=512,
                        flash_attn=args.flash_attn, verbose=False, seed=0)
            n_vocab = llm.n_vocab()
            prompt = [(i * 7919 + 13) % n_vocab for i in range(args.prompt_len)]
            llm.reset()
            t0 = time.perf_counter()
            llm.eval(prompt)
            prefill_tps = len(prompt) / (time.perf_counter() - t0)
            llm.reset()
            if depth:
                llm.eval([(i * 104729 + 7) % n_vocab for i in range(depth)])
            times = []
            tok = 1
            for _ in range(args.n_gen):
                t0 = time.perf_counter()
                llm.eval([tok])
                times.append(time.perf_counter() - t0)
                tok = (tok * 31 + 7) % n_vocab
            ms = statistics.median(times) * 1e3
            print(json.dumps({"impl": "llama.cpp", "model": args.model, "threads": t, "depth": depth,
                              "prefill_tps": prefill_tps, "decode_ms": ms, "decode_tps": 1e3 / ms,
                              "flash_attn": args.flash_attn}), flush=True)
            del llm


if __name__ == "__main__":
    main()
