#!/usr/bin/env python3
"""Quality under speculation at long context: each predictor and λ against exact (issue 13).

  .venv/bin/python scripts/spec_quality.py --model M.gguf --text assets/data/text/moby-dick.txt \
      --prefill 8192 --decode 256 --spec-chunk 128 --predictors sink-window,quest \
      --lambdas 0.1,0.2 --ctx 9216 --threads 2 --out OUT

1. The text is tokenised by alspec and cut to prefill + decode ids (one pass, running text).
2. `alspec score --prefill-until P` runs once in exact mode and once per (predictor, λ) in
   simulate mode: positions before P are exact prefill, the next `decode` ones are decode steps
   whose attention is speculated (approximations feed forward: this is quality under speculation,
   not the hit rate on the exact trajectory that `predictor-sweep` measures).
3. Over the decode-produced rows (row i follows ids 0..i, i >= P): hit rate (checks over all
   layers), decode perplexity of the text, mean |Δ log-prob| of the text's tokens against exact,
   mean KL(exact || run) of the full next-token distributions and top-1 agreement with exact,
   in float64 from the logits files (`--logits-out`, deleted after use unless --keep-logits).

Writes OUT/results.json (one object per run), OUT/table.md and each run's score output without
its per-token rows (OUT/RUN-λ.json: per-layer hits), and prints the table.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

from logits_math import log_softmax


def run_score(args, tokens_file, logits_file, extra):
    # A budgets file sets S per layer (its mean is the uniform S it replaces): no --spec-chunk then.
    s = [] if "--spec-budgets" in extra else ["--spec-chunk", str(args.spec_chunk)]
    cmd = [args.alspec, "score", "-m", args.model, "-t", str(args.threads), "-c", str(args.ctx),
           "--kv-type", args.kv_type] + s + ["--tokens", "@" + tokens_file,
           "--prefill-until", str(args.prefill), "--logits-out", logits_file,
           "--logits-from", str(args.prefill)] + extra
    t0 = time.time()
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    result = json.loads(out)
    result["seconds"] = time.time() - t0
    return result


def load_rows(path, n_vocab):
    rows = np.fromfile(path, dtype=np.float32)
    if rows.size % n_vocab:
        sys.exit(f"{path}: {rows.size} floats is not a multiple of n_vocab {n_vocab}")
    return rows.reshape(-1, n_vocab).astype(np.float64)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--alspec", default=os.path.join(root, "build", "bin", "alspec"))
    ap.add_argument("--model", required=True)
    ap.add_argument("--text", required=True, help="UTF-8 text file (running text)")
    ap.add_argument("--prefill", type=int, required=True, help="ids before the first decode step")
    ap.add_argument("--decode", type=int, default=256, help="decode-produced rows scored (ids prefill+1 .. prefill+decode)")
    ap.add_argument("--spec-chunk", type=int, default=128)
    ap.add_argument("--predictors", default="sink-window,quest", help="uniform-S runs ('' for none)")
    ap.add_argument("--budgets", default="",
                    help="NAME=FILE[@λ],...: also a run per per-layer S file (--spec-budgets), named NAME, at λ "
                         "(default: the file's own, the one it was calibrated for)")
    ap.add_argument("--lambdas", default="0.1,0.2")
    ap.add_argument("--ctx", type=int, default=0, help="KV capacity (default: prefill + decode rounded up to 1024)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--kv-type", default="f16")
    ap.add_argument("--out", required=True)
    ap.add_argument("--keep-logits", action="store_true")
    args = ap.parse_args()
    n_ids = args.prefill + args.decode + 1  # the last id is only scored
    if args.ctx == 0:
        args.ctx = (n_ids + 1023) // 1024 * 1024
    if args.ctx < n_ids:
        sys.exit(f"--ctx {args.ctx} < prefill + decode = {n_ids}")
    os.makedirs(args.out, exist_ok=True)

    # Tokenise a prefix long enough for n_ids (about 4 bytes per token on English text).
    with open(args.text, encoding="utf-8") as f:
        text = f.read()
    n_bytes = n_ids * 5
    prefix_file = os.path.join(args.out, "text-prefix.txt")  # a file: too long for one argument
    while True:
        with open(prefix_file, "w", encoding="utf-8") as f:
            f.write(text[:n_bytes])
        ids = json.loads(subprocess.run([args.alspec, "tokenize", "-m", args.model, "--text-file", prefix_file],
                                        check=True, capture_output=True, text=True).stdout)
        os.remove(prefix_file)
        if len(ids) > n_ids or n_bytes >= len(text):
            break
        n_bytes *= 2
    if len(ids) < n_ids:
        sys.exit(f"{args.text}: only {len(ids)} tokens, need {n_ids}")
    ids = ids[:n_ids]
    tokens_file = os.path.join(args.out, "ids.txt")
    with open(tokens_file, "w") as f:
        f.write(",".join(map(str, ids)))

    runs = [("exact", None, [("--attention", "exact")])]
    for p in filter(None, args.predictors.split(",")):
        for lam in args.lambdas.split(","):
            runs.append((p, float(lam), [("--attention", "simulate"), ("--predictor", p), ("--lambda", lam)]))
    for item in filter(None, args.budgets.split(",")):
        name, _, path = item.partition("=")
        path, _, lam = path.partition("@")
        if not path:
            sys.exit(f"--budgets: '{item}' is not NAME=FILE[@λ]")
        if not lam:
            with open(path) as f:
                lam = f"{json.load(f)['lambda']:.6g}"  # the file's float32 λ as written: 0.1, not 0.10000000149
        runs.append((name, float(lam), [("--attention", "simulate"), ("--spec-budgets", path), ("--lambda", str(lam))]))

    results = []
    exact_lp = exact_top = exact_text_lp = None
    for name, lam, opts in runs:
        logits_file = os.path.join(args.out, f"{name}-{lam}.f32")
        extra = [x for kv in opts for x in kv]
        r = run_score(args, tokens_file, logits_file, extra)
        # per_token[j] scores ids[j + 1] from the row after ids[0..j]: rows j >= prefill are decode steps.
        per_token = r["per_token"]
        text_lp = np.array([t["logprob"] for t in per_token[args.prefill:]])
        # Logits rows i = prefill .. n_ids - 2 follow ids 0..i: they predict ids[prefill + 1 ..].
        n_vocab = os.path.getsize(logits_file) // 4 // args.decode
        lp = log_softmax(load_rows(logits_file, n_vocab))
        if not args.keep_logits:
            os.remove(logits_file)
        spec = r.get("speculation", {})
        with open(os.path.join(args.out, f"{name}-{lam}.json"), "w") as f:  # per-layer counts, timings
            json.dump({k: v for k, v in r.items() if k not in ("per_token", "tokens")}, f, indent=1)
        row = {"run": name, "lambda": lam, "spec_chunk": args.spec_chunk, "prefill": args.prefill,
               "decode": args.decode, "checks": spec.get("checks", 0), "hits": spec.get("hits", 0),
               "hit_rate": spec.get("hit_rate"), "seconds": round(r["seconds"], 1),
               "decode_perplexity": float(np.exp(-text_lp.mean()))}
        if name == "exact":
            exact_lp, exact_top, exact_text_lp = lp, lp.argmax(axis=1), text_lp
            row.update({"mean_abs_dlogprob": 0.0, "mean_kl": 0.0, "top1_agreement": 1.0})
        else:
            p = np.exp(exact_lp)
            kl = (p * (exact_lp - lp)).sum(axis=1)
            row.update({"mean_abs_dlogprob": float(np.abs(text_lp - exact_text_lp).mean()),
                        "mean_kl": float(kl.mean()), "max_kl": float(kl.max()),
                        "top1_agreement": float((lp.argmax(axis=1) == exact_top).mean())})
        results.append(row)
        print(json.dumps(row), flush=True)

    header = {"model": args.model, "text": args.text, "ids": n_ids, "prefill": args.prefill,
              "decode": args.decode, "spec_chunk": args.spec_chunk, "kv_type": args.kv_type,
              "threads": args.threads, "ctx": args.ctx}
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"settings": header, "runs": results}, f, indent=1)
    lines = ["| run | λ | hit rate (checks) | decode perplexity | mean abs. Δ log-prob | mean KL to exact | top-1 = exact |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        hr = "—" if r["hit_rate"] is None else f"{100 * r['hit_rate']:.1f}% ({r['checks']})"
        lines.append(f"| {r['run']} | {r['lambda'] if r['lambda'] is not None else '—'} | {hr} | "
                     f"{r['decode_perplexity']:.3f} | {r['mean_abs_dlogprob']:.4f} | {r['mean_kl']:.2e} | "
                     f"{100 * r['top1_agreement']:.1f}% |")
    table = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(table)
    print(table)


if __name__ == "__main__":
    main()
