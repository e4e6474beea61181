"""Self-checks of the Python reference: it is only useful as an oracle if its conventions
are right, so each one is checked against an independent source."""
import math
import os

import numpy as np
import pytest

import llama_ref as R

PROMPT = [1, 403, 407, 261, 378]  # BOS + "Once upon a time" in the stories260K vocabulary


@pytest.fixture(scope="module")
def stories(stories_gguf):
    return R.load_gguf(stories_gguf)


def test_gguf_matches_llama2c_checkpoint(stories, stories_bin):
    # The llama2.c checkpoint is the same network in a different container, with run.c's
    # adjacent-pair rope and its own stored cos/sin tables: identical logits prove the GGUF
    # tensor layout (no Q/K permutation left over, (out, in) orientation, tied classifier).
    bin_model = R.load_llama2c(stories_bin)
    seq = PROMPT + list(range(10, 60))
    a = R.teacher_forced_logits(stories, seq)
    b = R.teacher_forced_logits(bin_model, seq)
    assert np.array_equal(a, b)


def test_incremental_equals_teacher_forced(stories):
    out, rows = R.greedy(stories, PROMPT, 40)
    full = R.teacher_forced_logits(stories, PROMPT + out)
    np.testing.assert_allclose(rows, full[len(PROMPT) - 1:-1], rtol=0, atol=1e-10)
    assert out == [int(np.argmax(r)) for r in rows]


def test_greedy_story_is_text(stories, stories_gguf):
    import gguf

    out, _ = R.greedy(stories, PROMPT, 64)
    r = gguf.GGUFReader(stories_gguf)
    f = r.fields["tokenizer.ggml.tokens"]
    vocab = [bytes(f.parts[i]).decode() for i in f.data]
    text = "".join(vocab[i] for i in out).replace("\u2581", " ")
    words = text.split()
    # A broken forward pass of a trained model degenerates into repetition or byte soup.
    assert len(words) > 30
    assert len(set(words)) > 15
    assert sum(w.strip(".,!?\"'").isalpha() for w in words) > 0.8 * len(words)


def test_neox_equals_normal_rope_on_permuted_dims():
    rng = np.random.default_rng(1)
    T, H, D = 5, 3, 16
    x = rng.standard_normal((T, H, D))
    pos = np.arange(7, 7 + T)
    inv = R.rope_inv_freq(D, 10000.0)
    normal = R.apply_rope(x, pos, inv, D, neox=False)
    # Interleaving the two halves turns NEOX pairs (i, i+D/2) into adjacent pairs (2i, 2i+1).
    perm = np.stack([np.arange(D // 2), np.arange(D // 2) + D // 2], axis=1).reshape(-1)
    neox = R.apply_rope(x[..., perm.argsort()], pos, inv, D, neox=True)[..., perm]
    np.testing.assert_allclose(neox, normal, atol=1e-12)
    # A rotation keeps norms; position 0 is the identity.
    np.testing.assert_allclose(np.linalg.norm(normal, axis=-1), np.linalg.norm(x, axis=-1), atol=1e-12)
    np.testing.assert_array_equal(R.apply_rope(x, np.zeros(T, int), inv, D, neox=False), x)


def test_partial_rope_leaves_tail_dims():
    x = np.random.default_rng(2).standard_normal((3, 2, 8))
    y = R.apply_rope(x, np.arange(3) + 1, R.rope_inv_freq(4, 10000.0), 4, neox=True)
    np.testing.assert_array_equal(y[..., 4:], x[..., 4:])
    assert not np.allclose(y[..., :4], x[..., :4])


def test_llama3_scaling_bands():
    # Llama 3.1 8B values: factor 8, original 8192, low 1, high 4, base 500000, head_dim 128.
    inv = R.rope_inv_freq(128, 500000.0)
    s = R.llama3_scale(inv, 8.0, 8192.0, 1.0, 4.0)
    wavelen = 2 * math.pi / inv
    short, long_ = wavelen < 8192 / 4, wavelen > 8192 / 1
    np.testing.assert_array_equal(s[short], inv[short])
    np.testing.assert_allclose(s[long_], inv[long_] / 8, rtol=1e-15)
    mid = ~short & ~long_
    assert mid.any()
    assert np.all(s[mid] < inv[mid]) and np.all(s[mid] > inv[mid] / 8)


def test_kv_rounding_matches_gguf_codecs():
    from gguf import GGMLQuantizationType, quants

    x = np.random.default_rng(3).standard_normal((4, 64)) * 3
    x32 = x.astype(np.float32)
    bf = quants.dequantize(quants.quantize(x32, GGMLQuantizationType.BF16), GGMLQuantizationType.BF16)
    np.testing.assert_array_equal(R.round_kv(x, "bf16"), bf)
    np.testing.assert_array_equal(R.round_kv(x, "f16"), x32.astype(np.float16))
    # Q8_0 by its definition: d = max|x|/127 (fp16), q = round half away from zero.
    q8 = R.round_kv(x, "q8_0")
    blocks = x32.reshape(-1, 32)
    d = np.abs(blocks).max(axis=1, keepdims=True) / np.float32(127)
    q = np.sign(blocks * (1 / d)) * np.floor(np.abs(blocks * (1 / d)) + 0.5)
    want = (q * d.astype(np.float16).astype(np.float32)).reshape(x.shape)
    np.testing.assert_array_equal(q8, want)
    assert np.abs(q8 - x).max() <= np.abs(x).max() / 127
