#!/usr/bin/env python3
"""Plots of `alspec project --plot DIR` output (DIR/projection.json, a list of per-context objects):
speedup_vs_ctx.png (ALSpec over exact, one line per hit rate / decision source; the paper's Figure 1
style), ms_per_token_vs_ctx.png, attention_overhead_vs_ctx.png and breakdown_exact.png.
Usage: plot_projection.py DIR/projection.json --out DIR [--title TEXT]"""
import argparse
import json
import os
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def label_of(r):
    if "decisions" not in r:
        return "exact"
    if r["decisions"].startswith("hit rate"):
        return f"hit rate {100 * r['hit_rate_target']:.1f}%"
    return r["decisions"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--out", required=True)
    ap.add_argument("--title", default="")
    a = ap.parse_args()
    rows = json.load(open(a.results))
    os.makedirs(a.out, exist_ok=True)
    title = a.title or f"{rows[0]['model']} on {rows[0]['hardware']}, tp {rows[0]['tp']} sp {rows[0]['sp']}"
    series = defaultdict(list)
    for r in rows:
        series[(label_of(r), r.get("threads"))].append(r)
    multi_threads = len({r.get("threads") for r in rows}) > 1

    def name(key):
        lab, t = key
        return f"{lab}, {t} threads" if multi_threads else lab

    def ctx_plot(ylabel, filename, draw):
        """One line plot against context length (log2 axis), saved as OUT/filename."""
        fig, ax = plt.subplots(figsize=(7, 4.5))
        draw(ax)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("context length (tokens)")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(os.path.join(a.out, filename), dpi=120)
        plt.close(fig)

    first = next(iter(series.values()))
    ctxs = [r["ctx"] for r in first]

    def exact_vs_alspec(value):
        """Draws exact (first series) and each ALSpec series of value(row, side)."""
        def draw(ax):
            ax.plot(ctxs, [value(r, "exact") for r in first], marker="s", color="black", label="exact")
            for key, rs in series.items():
                if "alspec" in rs[0]:
                    ax.plot([r["ctx"] for r in rs], [value(r, "alspec") for r in rs], marker="o",
                            label="ALSpec, " + name(key))
        return draw

    if any("alspec" in r for r in rows):
        def speedups(ax):
            for key, rs in series.items():
                ax.plot([r["ctx"] for r in rs], [r["speedup"] for r in rs], marker="o", label=name(key))
            ax.axhline(1.0, color="gray", lw=0.8, ls="--")
        ctx_plot("decode speed-up of ALSpec over exact", "speedup_vs_ctx.png", speedups)

    ctx_plot("ms per decode token", "ms_per_token_vs_ctx.png",
             exact_vs_alspec(lambda r, side: r[side]["ms_per_token"]))
    ctx_plot("attention overhead (ms per token over context 0)", "attention_overhead_vs_ctx.png",
             exact_vs_alspec(lambda r, side: r["attention_overhead"][side + "_ms"]))

    fig, ax = plt.subplots(figsize=(7, 4.5))
    kinds = sorted({k for r in first for k in r["exact"]["breakdown"]})
    bottom = [0.0] * len(first)
    xs = [str(r["ctx"]) for r in first]
    for k in kinds:
        vals = [r["exact"]["breakdown"].get(k, 0.0) for r in first]
        ax.bar(xs, vals, bottom=bottom, label=k)
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_xlabel("context length (tokens)")
    ax.set_ylabel("ms per decode token (exact)")
    ax.set_title("where the time goes, exact: " + title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(a.out, "breakdown_exact.png"), dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
