#!/usr/bin/env python3
"""Hit rate of per-layer S files (alspec predictor-sweep --budgets-out) on other calls.

  scripts/budget_holdout.py SWEEP.jsonl BUDGETS.json...

SWEEP.jsonl: `alspec predictor-sweep` lines (with layer_checks / layer_hits) of a run that the
budgets were NOT calibrated on (another stretch of text, other lengths). For every length in it
and every budgets file, the expected hit rate of the file's per-layer S on those calls (layer l
counted at its own S; an S that the sweep did not measure counts as no hits, so the figure is a
lower bound), next to the uniform S = mean of the same predictor and of sink-window, on the
exact trajectory. Prints a markdown table.
"""
import json
import sys


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
    by = {(r["length"], r["predictor"], round(r["lambda"], 4), r["spec_chunk"]): r for r in rows}
    print("| length | budgets file | predictor | λ | per-layer S | uniform S (same predictor) | uniform S, sink-window | per-layer / sink-window |")
    print("|---:|---|---|---:|---:|---:|---:|---:|")
    for length in sorted({r["length"] for r in rows}):
        for path in sys.argv[2:]:
            b = json.load(open(path))
            pred, lam, mean = b["predictor"], round(b["lambda"], 4), b["mean_spec_chunk"]
            s = b["spec_chunk"]
            total = 0.0
            for layer, S in enumerate(s):
                r = by.get((length, pred, lam, S))
                if r and r["layer_checks"][layer] > 0:
                    total += r["layer_hits"][layer] / r["layer_checks"][layer]
            rate = total / len(s)
            uni = by.get((length, pred, lam, mean))
            sink = by.get((length, "sink-window", lam, mean))
            fmt = lambda r: f"{100 * r['hit_rate']:.1f}%" if r else "—"
            ratio = f"{rate / sink['hit_rate']:.2f}x" if sink and sink["hit_rate"] > 0 else "—"
            print(f"| {length} | {path.split('/')[-1]} | {pred} | {b['lambda']:g} | {100 * rate:.1f}% | {fmt(uni)} | {fmt(sink)} | {ratio} |")


if __name__ == "__main__":
    main()
