#!/usr/bin/env python3
"""Table and plot of `alspec predictor-sweep` JSON lines: hit rate against cached tokens, per source
(running text, passkey), S, lambda and predictor.

    scripts/plot_predictor_sweep.py OUT.md OUT.png SWEEP.jsonl [SWEEP.jsonl ...]

The Markdown table has one row per (source, length, S, lambda) with both predictors' hit rates,
their ratio, and the mean relative error ||O_spec - O|| / ||O|| of each predictor.
"""
import json
import sys
from collections import defaultdict


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    out_md, out_png, inputs = sys.argv[1], sys.argv[2], sys.argv[3:]
    rows = [json.loads(line) for path in inputs for line in open(path) if line.strip()]
    table = defaultdict(dict)
    for r in rows:
        key = (r["source"], r["length"], r["spec_chunk"], round(r["lambda"], 3))
        table[key][r["predictor"]] = r
    lines = ["| source | cached tokens | S | λ | checks | sink-window hit rate | quest hit rate | quest / sink-window "
             "| mean rel. error sink-window | mean rel. error quest |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for key in sorted(table):
        source, length, s, lam = key
        sw, q = table[key].get("sink-window"), table[key].get("quest")
        if sw is None or q is None:
            continue
        ratio = f"{q['hit_rate'] / sw['hit_rate']:.2f}x" if sw["hit_rate"] > 0 else ("—" if q["hit_rate"] == 0 else "∞")
        lines.append(f"| {source} | {length} | {s} | {lam:g} | {sw['checks']} | {100 * sw['hit_rate']:.1f}% "
                     f"| {100 * q['hit_rate']:.1f}% | {ratio} | {sw['mean_rel_err']:.3f} | {q['mean_rel_err']:.3f} |")
    with open(out_md, "w") as f:
        f.write("\n".join(lines) + "\n")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    sources = sorted({k[0] for k in table})
    chunks = sorted({k[2] for k in table})
    lambdas = sorted({k[3] for k in table})
    fig, axes = plt.subplots(len(sources), len(chunks), figsize=(5.5 * len(chunks), 4 * len(sources)), squeeze=False)
    colors = dict(zip(lambdas, ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]))
    for i, source in enumerate(sources):
        for j, s in enumerate(chunks):
            ax = axes[i][j]
            for lam in lambdas:
                for pred, style in (("sink-window", "--"), ("quest", "-")):
                    pts = sorted((k[1], table[k][pred]["hit_rate"]) for k in table
                                 if k[0] == source and k[2] == s and k[3] == lam and pred in table[k])
                    if pts:
                        ax.plot([p[0] for p in pts], [100 * p[1] for p in pts], style, marker="o", color=colors[lam],
                                label=f"{pred} λ={lam:g}")
            ax.set_xscale("log", base=2)
            ax.set_xlabel("cached tokens")
            ax.set_ylabel("hit rate (%)")
            ax.set_title(f"{source}, S = {s} (budget {2 * s} tokens)")
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)


if __name__ == "__main__":
    main()
