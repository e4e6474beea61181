"""Numerics shared by the scripts that compare next-token distributions (numpy only)."""
import numpy as np


def log_softmax(x):
    """Log-probabilities over the last axis, stable for large logits (the max is subtracted first)."""
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))
