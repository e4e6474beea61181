#!/usr/bin/env python3
"""Logits at deep positions of a long prompt: alspec against llama.cpp (issue 13, item 1).

Runs under the llama-cpp-python venv (scripts/make-reference-venv.sh llcpp):

  build/llcpp-venv/bin/python scripts/reference/deep_logits.py --model M.gguf \
      --text assets/data/text/moby-dick.txt --tokens 16384 --rows 64 --ctx 32768 --out OUT

1. The text is tokenised by llama.cpp (the model's own BOS rule) and cut to --tokens ids.
2. llama.cpp evaluates the first n - rows ids as one prompt, then the remaining ids one at a time,
   keeping the logits after each: rows n - rows - 1 .. n - 2 (row i follows ids 0..i).
3. alspec scores the same ids (`alspec score --tokens @FILE --logits-out F --logits-from R`):
   the whole prompt as prefill, so its rows come from the prefill path.
4. Per row, over the common vocabulary, in float64: top-1 agreement, KL(llama.cpp || alspec),
   and at each disagreement llama.cpp's top-1/top-2 gap (a near tie is not an error).

Prints one JSON object and writes it to OUT/deep-logits.json (with the model's RoPE metadata as
llama.cpp reads it); llama.cpp's rows are kept in OUT/llcpp.f32 and its ids in OUT/ids.txt.
--alspec-model F scores another file on alspec's side against those saved rows (--reuse), e.g. a
control: the same weights without their RoPE frequency factors must disagree.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

import llama_cpp
import llama_cpp.llama as L

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench_llamacpp import no_extra_bufts  # noqa: E402  (the AMX workaround, one copy)
from logits_math import log_softmax  # noqa: E402

no_extra_bufts()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--text", required=True, help="text file; its first --tokens ids are used")
    ap.add_argument("--tokens", type=int, default=16384)
    ap.add_argument("--rows", type=int, default=64, help="deep rows compared (the last ones)")
    ap.add_argument("--ctx", type=int, default=0, help="context of both engines (default tokens + 8)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--alspec", default="build/bin/alspec")
    ap.add_argument("--kv-type", default="f16")
    ap.add_argument("--out", required=True)
    ap.add_argument("--alspec-model", help="model file for alspec (default --model)")
    ap.add_argument("--reuse", action="store_true", help="reuse OUT's llama.cpp rows and ids")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    ctx = a.ctx or a.tokens + 8

    ids_file = os.path.join(a.out, "ids.txt")
    ref_file = os.path.join(a.out, "llcpp.f32")
    llcpp_info = {"version": llama_cpp.__version__, "flash_attn": True}
    if a.reuse:
        ids = [int(x) for x in open(ids_file).read().split(",")]
        n, rows = len(ids), a.rows
        first_row = n - 1 - rows
        ref = np.fromfile(ref_file, dtype=np.float32).astype(np.float64)
        n_vocab = ref.size // rows
        ref = ref.reshape(rows, n_vocab)
        meta = json.load(open(os.path.join(a.out, "deep-logits.json")))["rope_metadata"]
    else:
        t0 = time.time()
        # Flash attention: llama.cpp's fast path at long context (3x faster prefill at 16K here).
        llm = L.Llama(model_path=a.model, n_ctx=ctx, n_batch=512, n_threads=a.threads, logits_all=False,
                      flash_attn=True, verbose=False, seed=0)
        text = open(a.text, encoding="utf-8").read()
        ids = llm.tokenize(text.encode(), add_bos=True, special=False)
        if len(ids) < a.tokens:
            sys.exit(f"{a.text}: {len(ids)} tokens, fewer than --tokens {a.tokens}")
        ids = ids[: a.tokens]
        n, rows = len(ids), a.rows
        first_row = n - 1 - rows  # rows first_row .. n - 2
        n_vocab = llm.n_vocab()
        meta = {k: v for k, v in llm.metadata.items() if "rope" in k or k == "general.architecture"}

        def last_logits():
            return np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(n_vocab,)).astype(np.float64)

        llm.reset()
        t1 = time.time()
        llm.eval(ids[: first_row + 1])
        llcpp_info["prefill_s"] = round(time.time() - t1, 1)
        ref = [last_logits()]
        for t in ids[first_row + 1 : n - 1]:
            llm.eval([t])
            ref.append(last_logits())
        llcpp_info["total_s"] = round(time.time() - t0, 1)
        ref = np.stack(ref)
        llcpp_info["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        del llm
        ref.astype(np.float32).tofile(ref_file)
        with open(ids_file, "w") as f:
            f.write(",".join(map(str, ids)))

    logits_file = os.path.join(a.out, "alspec.f32")
    t2 = time.time()
    alspec_model = a.alspec_model or a.model
    p = subprocess.run(["/usr/bin/time", "-f", "%M", a.alspec, "score", "-m", alspec_model, "-t", str(a.threads),
                        "-c", str(ctx), "--kv-type", a.kv_type, "--tokens", "@" + ids_file,
                        "--logits-out", logits_file, "--logits-from", str(first_row)],
                       capture_output=True, text=True)
    alspec_s = time.time() - t2
    if p.returncode != 0:
        sys.exit("alspec score failed:\n" + p.stderr[-4000:])
    alspec_rss_mb = int(p.stderr.strip().splitlines()[-1]) / 1024
    ppl = json.loads(p.stdout)["perplexity"]
    got = np.fromfile(logits_file, dtype=np.float32).reshape(-1, n_vocab).astype(np.float64)
    if got.shape[0] != rows:
        sys.exit(f"alspec wrote {got.shape[0]} rows, expected {rows}")

    lp, lq = log_softmax(ref), log_softmax(got)
    kl = (np.exp(lp) * (lp - lq)).sum(-1)
    top1 = ref.argmax(-1) == got.argmax(-1)
    srt = np.sort(lp, -1)
    dis = [int(i) for i in np.nonzero(~top1)[0]]
    res = {
        "model": os.path.basename(a.model), "alspec_model": os.path.basename(alspec_model), "tokens": n, "ctx": ctx, "kv_type": a.kv_type,
        "rows": [first_row, n - 2], "positions_predicted": [first_row + 1, n - 1],
        "top1_agree": float(top1.mean()), "kl_mean": float(kl.mean()), "kl_max": float(kl.max()),
        "kl_max_row": first_row + int(kl.argmax()),
        "disagree_rows": [first_row + i for i in dis],
        "llcpp_top1_top2_gap_at_disagree": [round(float(srt[i, -1] - srt[i, -2]), 4) for i in dis],
        "alspec_perplexity_all_positions": ppl,
        "llama_cpp": llcpp_info,
        "alspec": {"score_s": round(alspec_s, 1), "max_rss_mb": round(alspec_rss_mb)},
        "rope_metadata": meta, "threads": a.threads,
    }
    name = "deep-logits.json" if not a.reuse else "deep-logits-" + os.path.basename(alspec_model) + ".json"
    with open(os.path.join(a.out, name), "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
