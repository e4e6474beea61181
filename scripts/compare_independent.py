#!/usr/bin/env python3
"""Compare alspec's logits and greedy tokens with independent implementations.

References:
  * transformers (float32 on dequantised weights): the saved outputs of the cross-check in
    docs/models.md, <ref-dir>/hf-<model>.json (`all_ids`, `prompt_ids`, `greedy_ids`) and
    <ref-dir>/hf-<model>.logits.npy (logits of every position of `all_ids`).
  * llama.cpp (llama-cpp-python, optional: --llcpp-python PY): run in a child process with that
    interpreter on the same ids, and on extra texts (--text, e.g. long ones that cross gemma3's
    512-token sliding window), whose ids come from llama.cpp's tokenizer (checked against
    `alspec tokenize`).

alspec side: `alspec score --tokens IDS --logits-out F` writes float32 [n-1][n_vocab]; row i holds
the logits after tokens[0..i] (predicting token i+1), i.e. the reference's rows 0..n-2.
Greedy: `alspec generate --prompt-tokens P --n-predict N --temperature 0 --json`.

Metrics per position, float64 over the common vocabulary: top-1 agreement and
KL(reference || alspec). Needs only numpy; any of the venvs will do.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from logits_math import log_softmax

MODELS = ["smollm2-135m-instruct-q4_1", "gemma3-270m-q4_k_m",
          "qwen2.5-coder-0.5b-instruct-awq-q4_k_m", "qwen2.5-coder-1.5b-instruct-q4_k_m"]

# Child-process code for llama-cpp-python. Its native build enables ggml's AMX path, which crashes
# on this VM; clearing use_extra_bufts (no repacked weight buffers) avoids it (docs/models.md).
LLCPP_CHILD = r"""
import sys, json
import numpy as np
import llama_cpp, llama_cpp.llama as L
_orig = llama_cpp.llama_model_default_params
def _params():
    p = _orig(); p.use_extra_bufts = False; return p
llama_cpp.llama_model_default_params = _params
L.llama_cpp.llama_model_default_params = _params
from llama_cpp import Llama
req = json.load(open(sys.argv[1]))
# tokens of a text <= chars / 2 for English prose; llama.cpp keeps n_ctx rows of logits
n_ctx = max(256, max((len(j["ids"]) if j.get("ids") else len(j["text"]) // 2) + j.get("n_gen", 0) + 8
                     for j in req["jobs"]))
llm = Llama(model_path=req["model"], n_ctx=n_ctx, n_threads=req["threads"], logits_all=True,
            verbose=False, seed=0)
out = []
for k, j in enumerate(req["jobs"]):
    r = {}
    ids = j.get("ids")
    if ids is None:  # tokenize text with the model's own BOS rule
        ids = llm.tokenize(j["text"].encode(), add_bos=True, special=False)
        r["ids"] = ids
    llm.reset(); llm.eval(ids)
    np.save(j["logits_out"], np.array(llm.scores[:len(ids)], dtype=np.float32))
    if j.get("n_gen", 0) > 0:
        toks = []
        for t in llm.generate(ids[:j["n_prompt"]], temp=0.0, top_k=1, reset=True):
            toks.append(int(t))
            if len(toks) == j["n_gen"]: break
        r["greedy"] = toks
    out.append(r)
json.dump(out, open(sys.argv[2], "w"))
"""


def compare(ref, ours, block=32):
    """ref, ours: [positions][vocab] logits of the same positions. Returns a metrics dict.
    Rows are processed in blocks to bound memory on long texts with large vocabularies."""
    n = min(ref.shape[1], ours.shape[1])  # transformers may pad the vocabulary
    kl, top1, margin, maxdiff = [], [], [], 0.0
    for b in range(0, ref.shape[0], block):
        r, o = ref[b:b + block, :n].astype(np.float64), ours[b:b + block, :n].astype(np.float64)
        lp, lq = log_softmax(r), log_softmax(o)
        kl.append((np.exp(lp) * (lp - lq)).sum(-1))
        top1.append(lp.argmax(-1) == lq.argmax(-1))
        srt = np.partition(lp, n - 2, axis=-1)[:, -2:]
        margin.append(srt[:, 1] - srt[:, 0])
        maxdiff = max(maxdiff, float(np.abs(r - o).max()))
    kl, top1, margin = np.concatenate(kl), np.concatenate(top1), np.concatenate(margin)
    dis = [int(i) for i in np.nonzero(~top1)[0]]
    return {"positions": int(len(kl)), "top1_agree": int(top1.sum()), "kl_mean": float(kl.mean()),
            "kl_max": float(kl.max()), "kl_argmax": int(kl.argmax()),
            "kl_mean_from1": float(kl[1:].mean()) if len(kl) > 1 else None,
            "kl_max_from1": float(kl[1:].max()) if len(kl) > 1 else None,
            "disagree_pos": dis, "ref_margin_at_disagree": [round(float(margin[i]), 4) for i in dis],
            "max_abs_logit_diff": maxdiff,
            # sliding-window models: positions past 512 tokens are where a window matters
            "kl_mean_pos_ge_512": float(kl[511:].mean()) if len(kl) > 511 else None,
            "top1_agree_pos_ge_512": int(top1[511:].sum()) if len(kl) > 511 else None}


def run_alspec(a, model_path, ids, tmp):
    f = tempfile.mktemp(suffix=".logits", dir=tmp)  # a fresh file: earlier results stay mapped
    cmd = [a.alspec, "score", "--model", model_path, "--tokens", ",".join(map(str, ids)),
           "--logits-out", f, "--threads", str(a.threads), "--ctx-size", str(max(512, len(ids) + 64))]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return np.memmap(f, dtype=np.float32, mode="r").reshape(len(ids) - 1, -1)


def alspec_greedy(a, model_path, prompt, n):
    cmd = [a.alspec, "generate", "--model", model_path, "--prompt-tokens", ",".join(map(str, prompt)),
           "--n-predict", str(n), "--temperature", "0", "--ignore-eos", "--json", "--threads", str(a.threads),
           "--ctx-size", str(max(512, len(prompt) + n + 64))]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)["tokens"]


def alspec_tokenize(a, model_path, text):
    cmd = [a.alspec, "tokenize", "--model", model_path, "--text", text]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def first_div(x, y):
    return next((i for i, (p, q) in enumerate(zip(x, y)) if p != q), None if len(x) == len(y) else min(len(x), len(y)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--alspec", default="build-real/bin/alspec")
    ap.add_argument("--models-dir", default="models")
    ap.add_argument("--ref-dir", default="build/reference", help="hf-<model>.json / .logits.npy from the cross-check")
    ap.add_argument("--llcpp-python", help="python with llama-cpp-python (e.g. build/llcpp-venv/bin/python)")
    ap.add_argument("--text", action="append", default=[], help="extra text (llama.cpp reference only)")
    ap.add_argument("--text-file", action="append", default=[], help="extra text read from FILE[:CHARS]")
    ap.add_argument("--n-gen", type=int, default=16, help="greedy tokens compared for extra texts")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json-out")
    ap.add_argument("models", nargs="*", default=MODELS)
    a = ap.parse_args()
    texts = list(a.text)
    for tf in a.text_file:
        path, _, chars = tf.partition(":")
        t = open(path, encoding="utf-8").read()
        texts.append(t[:int(chars)] if chars else t)
    results = []
    for m in a.models:
        mp = os.path.join(a.models_dir, m + ".gguf")
        hf = json.load(open(os.path.join(a.ref_dir, f"hf-{m}.json")))
        hl = np.load(os.path.join(a.ref_dir, f"hf-{m}.logits.npy"))
        ids, prompt = hf["all_ids"], hf["prompt_ids"]
        with tempfile.TemporaryDirectory() as tmp:
            ours = run_alspec(a, mp, ids, tmp)
            row = {"model": m, "case": "hf-prompt", "n_tokens": len(ids)}
            row["vs_transformers"] = compare(hl[:-1], ours)
            g = alspec_greedy(a, mp, prompt, len(hf["greedy_ids"]))
            row["alspec_greedy"] = g
            row["greedy_vs_transformers_first_div"] = first_div(g, hf["greedy_ids"])
            jobs = []
            if a.llcpp_python:
                jobs.append({"ids": ids, "n_prompt": len(prompt), "n_gen": len(hf["greedy_ids"]),
                             "logits_out": os.path.join(tmp, "ll0.npy")})
                for k, t in enumerate(texts):
                    # greedy continuation of the whole text (llama.cpp tokenises it first)
                    jobs.append({"text": t, "n_prompt": 10**9, "n_gen": a.n_gen,
                                 "logits_out": os.path.join(tmp, f"ll{k + 1}.npy")})
                req = os.path.join(tmp, "req.json")
                json.dump({"model": mp, "threads": a.threads, "jobs": jobs}, open(req, "w"))
                child = os.path.join(tmp, "child.py")
                open(child, "w").write(LLCPP_CHILD)
                resp = os.path.join(tmp, "resp.json")
                subprocess.run([a.llcpp_python, child, req, resp], check=True)
                out = json.load(open(resp))
                ll = np.load(jobs[0]["logits_out"])
                row["vs_llamacpp"] = compare(ll[:-1], ours)
                row["llamacpp_vs_transformers"] = compare(hl, ll)
                row["greedy_vs_llamacpp_first_div"] = first_div(g, out[0]["greedy"])
            results.append(row)
            print(json.dumps(row), flush=True)
            for k, t in enumerate(texts if a.llcpp_python else []):
                tids = out[k + 1]["ids"]
                ll = np.load(jobs[k + 1]["logits_out"], mmap_mode="r")
                ours = run_alspec(a, mp, tids, tmp)
                row = {"model": m, "case": f"text{k}", "n_tokens": len(tids)}
                row["tokenizer_same"] = alspec_tokenize(a, mp, t) == tids
                row["vs_llamacpp"] = compare(ll[:-1], ours)
                g = alspec_greedy(a, mp, tids, a.n_gen)
                row["alspec_greedy"] = g
                row["greedy_vs_llamacpp_first_div"] = first_div(g, out[k + 1]["greedy"])
                results.append(row)
                print(json.dumps(row), flush=True)
    if a.json_out:
        json.dump(results, open(a.json_out, "w"), indent=1)
    print("\n| model | case | tokens | reference | top-1 agree | mean KL | max KL (pos) | greedy same (first divergence) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        for ref in ("transformers", "llamacpp"):
            c = r.get("vs_" + ref)
            if not c:
                continue
            gd = r.get(f"greedy_vs_{ref}_first_div", "n/a")
            gs = "n/a" if gd == "n/a" else ("yes" if gd is None else f"no ({gd})")
            print(f"| {r['model']} | {r['case']} | {r['n_tokens']} | {ref} | {c['top1_agree']}/{c['positions']} | "
                  f"{c['kl_mean']:.2e} | {c['kl_max']:.2e} ({c['kl_argmax']}) | {gs} |")


if __name__ == "__main__":
    sys.exit(main())
