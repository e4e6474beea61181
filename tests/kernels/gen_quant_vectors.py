#!/usr/bin/env python3
"""Writes dequantisation test vectors from gguf-py's reference dequantisers.

For each type: data/dequant_<type>.bin holds random blocks (random bytes; the fp16 scale fields,
and all F16 elements, replaced by random finite fp16 values) and data/dequant_<type>.f32 holds
gguf.quants.dequantize of those blocks as little-endian float32. quant_test.cpp compares bitwise.
Run: .venv/bin/python tests/kernels/gen_quant_vectors.py
"""
import os

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
rng = np.random.default_rng(20261129)


def finite_fp16(count):
    """Random fp16 bit patterns with exponent != 31 (no inf/NaN), subnormals included."""
    v = rng.integers(0, 1 << 16, size=count, dtype=np.uint32).astype(np.uint16)
    exp = (v >> 10) & 0x1F
    v = np.where(exp == 0x1F, v & 0x83FF | np.uint16(0x3C00), v)  # map inf/NaN exponents to 15
    return v.astype(np.uint16)


# type -> (number of blocks, bytes per block, byte offsets of fp16 fields in a block)
SPECS = {
    "F16": (512, 2, [0]),
    "BF16": (512, 2, []),
    "Q8_0": (256, 34, [0]),
    "Q4_0": (256, 18, [0]),
    "Q4_K": (64, 144, [0, 2]),
    "Q6_K": (64, 210, [208]),
    # Appended last so that the random stream, and thus the files above, stay unchanged.
    "Q4_1": (256, 20, [0, 2]),
    "Q5_0": (256, 22, [0]),
}

os.makedirs(OUT, exist_ok=True)
for name, (n_blocks, size, fp16_offsets) in SPECS.items():
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint16).astype(np.uint8)
    for off in fp16_offsets:
        raw[:, off:off + 2] = finite_fp16(n_blocks).view(np.uint8).reshape(n_blocks, 2)
    values = quants.dequantize(raw.reshape(-1), T[name]).astype(np.float32)
    raw.tofile(os.path.join(OUT, f"dequant_{name}.bin"))
    values.astype("<f4").tofile(os.path.join(OUT, f"dequant_{name}.f32"))
    print(name, raw.size, "bytes ->", values.size, "values")
