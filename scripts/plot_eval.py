#!/usr/bin/env python3
"""Plots of an `alspec eval` results.json (run automatically by `alspec eval`).

  plot_eval.py OUT/results.json [--out DIR]

Writes into DIR (default: the folder of results.json):
  hit_rate_vs_lambda.png  hit rate vs lambda, one panel per task, one line per (mode, S)
  score_vs_lambda.png     task score vs lambda, with the exact and static scores as reference lines
  hit_rate_by_layer.png   hit rate per layer, one panel per task, one line per verified (mode, lambda, S)
  distance_vs_lambda.png  mean KL(exact || mode) (log scale) and top-1 agreement vs lambda, static as reference
Lambdas above 10 (used as "infinity" in tests) are left out of the lambda axes.
"""
from __future__ import annotations

import argparse
import json
import math
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

MAX_PLOTTED_LAMBDA = 10.0
STATIC_STYLES = [":", (0, (5, 2)), "-.", (0, (1, 3))]  # one dash pattern per S, so the S values stay apart


def static_style(task, spec_chunk):
    chunks = sorted({r["config"]["spec_chunk"] for r in task["results"] if r["config"]["mode"] == "static"})
    return STATIC_STYLES[chunks.index(spec_chunk) % len(STATIC_STYLES)]


def panels(n: int):
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.6 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def speculative_series(task):
    """{(mode, S): [(lambda, result), ...]} for the modes that have a lambda."""
    series = {}
    for r in task["results"]:
        c = r["config"]
        if c["lambda"] is None or c["lambda"] > MAX_PLOTTED_LAMBDA:
            continue
        series.setdefault((c["mode"], c["spec_chunk"]), []).append((c["lambda"], r))
    for v in series.values():
        v.sort(key=lambda x: x[0])
    return series


def metric_label(task):
    r = task["results"][0]
    return r["metric"].replace("_", " ") + (" (higher is better)" if r["higher_is_better"] else " (lower is better)")


def plot_hit_rate(results, path):
    tasks = results["tasks"]
    fig, axes = panels(len(tasks))
    for ax, task in zip(axes, tasks):
        for (mode, s), pts in speculative_series(task).items():
            xs = [l for l, r in pts if r["hit_rate"] is not None]
            ys = [100 * r["hit_rate"] for l, r in pts if r["hit_rate"] is not None]
            ax.plot(xs, ys, marker="o", label=f"{mode}, S={s}")
        ax.set_title(task["name"])
        ax.set_xlabel("λ (acceptance threshold)")
        ax.set_ylabel("hit rate (% of checked attention calls)")
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "no speculative runs", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(f"Speculation hit rate vs λ\n{os.path.basename(results['model']['path'])}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_score(results, path):
    tasks = results["tasks"]
    fig, axes = panels(len(tasks))
    for ax, task in zip(axes, tasks):
        series = speculative_series(task)
        for (mode, s), pts in series.items():
            ax.plot([l for l, _ in pts], [r["score"] for _, r in pts], marker="o", label=f"{mode}, S={s}")
        for r in task["results"]:
            c = r["config"]
            if c["mode"] == "exact":
                ax.axhline(r["score"], color="black", linestyle="--", linewidth=1.2, label="exact")
            elif c["mode"] == "static":
                ax.axhline(r["score"], color="tab:red", linestyle=static_style(task, c["spec_chunk"]), linewidth=1.5,
                           label=f"static, S={c['spec_chunk']}")
        ax.set_title(task["name"])
        ax.set_xlabel("λ (acceptance threshold)")
        ax.set_ylabel(metric_label(task))
        if task["results"][0]["higher_is_better"]:  # accuracies: the whole [0, 1] range
            ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Task score vs λ\n{os.path.basename(results['model']['path'])}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_layers(results, path):
    tasks = results["tasks"]
    fig, axes = panels(len(tasks))
    for ax, task in zip(axes, tasks):
        for r in task["results"]:
            c = r["config"]
            # static accepts every check by definition (100%): only verified modes are informative.
            if r["checks"] == 0 or c["mode"] == "static" or (c["lambda"] is not None and c["lambda"] > MAX_PLOTTED_LAMBDA):
                continue
            layers = [l["layer"] for l in r["per_layer"] if l["hit_rate"] is not None]
            rates = [100 * l["hit_rate"] for l in r["per_layer"] if l["hit_rate"] is not None]
            ax.plot(layers, rates, marker="o", label=c["label"])
        ax.set_title(task["name"])
        ax.set_xlabel("layer")
        ax.set_ylabel("hit rate (%)")
        ax.set_ylim(-2, 102)
        n_layers = results["model"]["n_layers"]
        ax.set_xticks(range(0, n_layers, max(1, n_layers // 12)))
        ax.grid(alpha=0.3)
        if ax.lines:  # below the panel, off the data
            ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
        else:
            ax.text(0.5, 0.5, "no checks", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(f"Hit rate by layer\n{os.path.basename(results['model']['path'])}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_distance(results, path):
    tasks = results["tasks"]
    fig, axes = plt.subplots(2, len(tasks), figsize=(5.2 * len(tasks), 7.2), squeeze=False)
    for col, task in enumerate(tasks):
        kl_ax, top_ax = axes[0][col], axes[1][col]
        for (mode, s), pts in speculative_series(task).items():
            kl = [(l, r["kl_mean"]) for l, r in pts if r["kl_mean"] is not None and r["kl_mean"] > 0]
            kl_ax.plot([l for l, _ in kl], [v for _, v in kl], marker="o", label=f"{mode}, S={s}")
            top = [(l, r["top1"]) for l, r in pts if r["top1"] is not None]
            top_ax.plot([l for l, _ in top], [100 * v for _, v in top], marker="o", label=f"{mode}, S={s}")
        for r in task["results"]:
            c = r["config"]
            if c["mode"] == "static" and r["kl_mean"]:
                ls = static_style(task, c["spec_chunk"])
                kl_ax.axhline(r["kl_mean"], color="tab:red", linestyle=ls, linewidth=1.5, label=f"static, S={c['spec_chunk']}")
                top_ax.axhline(100 * r["top1"], color="tab:red", linestyle=ls, linewidth=1.5,
                               label=f"static, S={c['spec_chunk']}")
        kl_ax.set_title(task["name"])
        if kl_ax.lines:
            kl_ax.set_yscale("log")
        kl_ax.set_ylabel("mean KL(exact ‖ mode) [nats]")
        top_ax.set_ylabel("top-1 agreement with exact (%)")
        top_ax.set_ylim(-2, 102)
        for ax in (kl_ax, top_ax):
            ax.set_xlabel("λ (acceptance threshold)")
            ax.grid(alpha=0.3, which="both")
            if ax.lines:
                ax.legend(fontsize=8)
    fig.suptitle(f"Distance to exact vs λ\n{os.path.basename(results['model']['path'])}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", help="results.json written by alspec eval")
    ap.add_argument("--out", help="output folder (default: next to results.json)")
    a = ap.parse_args()
    with open(a.results, encoding="utf-8") as f:
        results = json.load(f)
    out = a.out or os.path.dirname(os.path.abspath(a.results))
    os.makedirs(out, exist_ok=True)
    written = []
    for name, fn in (("hit_rate_vs_lambda.png", plot_hit_rate), ("score_vs_lambda.png", plot_score),
                     ("hit_rate_by_layer.png", plot_layers), ("distance_vs_lambda.png", plot_distance)):
        fn(results, os.path.join(out, name))
        written.append(os.path.join(out, name))
    print("plots: " + ", ".join(written))


if __name__ == "__main__":
    main()
