"""Step-by-step comparison of engine logits with reference logits, with stated tolerances."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

AGREEMENT: list[str] = []  # one line per comparison, printed in the pytest summary


@dataclass(frozen=True)
class Tolerance:
    rel_l2: float  # per step: ||engine - reference|| / ||reference|| over the vocabulary
    margin: float  # where the reference's top-2 gap exceeds this, the tokens must agree
    max_abs: float | None = None  # optional bound on any single logit


def top2_margin(rows: np.ndarray) -> np.ndarray:
    s = np.sort(rows, axis=1)
    return s[:, -1] - s[:, -2]


def compare_steps(label: str, ref: np.ndarray, eng: np.ndarray, eng_tokens: list[int], tol: Tolerance) -> dict:
    """ref/eng: (steps, n_vocab) logits of the same teacher-forced steps; eng_tokens: the tokens
    the engine chose from them. Raises AssertionError with the figures on failure."""
    assert eng.shape == ref.shape, f"{label}: engine logits {eng.shape} vs reference {ref.shape}"
    assert len(eng_tokens) == eng.shape[0], f"{label}: {len(eng_tokens)} tokens but {eng.shape[0]} logits rows"
    # The logits file must be the distributions the tokens were chosen from (greedy).
    picked = eng.argmax(axis=1)
    bad = [i for i, t in enumerate(eng_tokens) if eng[i, t] < eng[i, picked[i]]]
    assert not bad, f"{label}: engine tokens are not the argmax of its own logits at steps {bad}"

    rel = np.linalg.norm(eng - ref, axis=1) / np.linalg.norm(ref, axis=1)
    max_abs = float(np.abs(eng - ref).max())
    ref_top = ref.argmax(axis=1)
    margin = top2_margin(ref)
    clear = margin > tol.margin
    disagree = [i for i in range(len(eng_tokens)) if clear[i] and eng_tokens[i] != ref_top[i]]
    stats = {
        "steps": len(eng_tokens),
        "rel_l2_max": float(rel.max()),
        "rel_l2_mean": float(rel.mean()),
        "max_abs": max_abs,
        "top1_agree": float(np.mean(picked == ref_top)),
        "clear_steps": int(clear.sum()),
    }
    AGREEMENT.append(
        f"{label:44s} steps {stats['steps']:3d}  relL2 max {stats['rel_l2_max']:.2e} mean {stats['rel_l2_mean']:.2e}"
        f"  max|d| {max_abs:.2e}  top1 {stats['top1_agree']:.3f}  (tol relL2 {tol.rel_l2:.0e}, margin {tol.margin})")
    problems = []
    if rel.max() > tol.rel_l2:
        problems.append(f"relative L2 error {rel.max():.3e} at step {int(rel.argmax())} > {tol.rel_l2:.1e}")
    if tol.max_abs is not None and max_abs > tol.max_abs:
        problems.append(f"max abs logit error {max_abs:.3e} > {tol.max_abs:.1e}")
    if disagree:
        problems.append(f"greedy token differs at steps {disagree} although the reference top-2 margin "
                        f"{[round(float(margin[i]), 3) for i in disagree]} > {tol.margin}")
    assert not problems, f"{label}: " + "; ".join(problems) + f" ({stats})"
    return stats
