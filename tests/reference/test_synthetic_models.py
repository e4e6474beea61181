"""Synthetic models (alspec synth-model) as the reference sees them: the C++ writer's rope
factors and weight scales, checked by the independent Python reader and forward pass."""
import os

import numpy as np

import llama_ref as R
from test_engine_vs_reference import SYNTH_PROMPT, synth


def test_rope_freqs_tensor_equals_llama3_metadata(engine, work_dir):
    meta = R.load_gguf(synth(engine, work_dir, "llama3-mini", "f32"))
    tensor = R.load_gguf(synth(engine, work_dir, "llama3-mini", "f32", "--rope-freqs-tensor"))
    # The C++ writer's divisors (float32) against the reference's llama3 formula.
    np.testing.assert_allclose(tensor.inv_freq, meta.inv_freq, rtol=1e-6)
    base = R.rope_inv_freq(meta.hp.rope_dim, meta.hp.rope_base)
    assert (meta.inv_freq < base * (1 - 1e-9)).sum() >= 4, "llama3 scaling should touch several pairs"
    assert np.isclose(meta.inv_freq[0], base[0])
    a = R.teacher_forced_logits(meta, SYNTH_PROMPT)
    b = R.teacher_forced_logits(tensor, SYNTH_PROMPT)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)


def test_activations_and_logits_stay_order_one(engine, work_dir):
    # Random weights are useful for comparisons only if logits are spread (not one-hot, not
    # flat) after every layer count; the writer's gains aim at a logit std of about 4.
    for preset, extra in (("llama3-mini", ()), ("qwen2-tiny", ()), ("mistral-tiny", ("--layers", "6"))):
        m = R.load_gguf(synth(engine, work_dir, preset, "f32", *extra))
        logits = R.teacher_forced_logits(m, SYNTH_PROMPT + list(range(40, 60)))
        std = logits.std(axis=1)
        assert np.all((std > 1.5) & (std < 10)), (preset, std)
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        assert np.all(p.max(axis=1) < 0.99), (preset, p.max(axis=1))


def test_seed_changes_weights(engine, work_dir):
    a = R.load_gguf(synth(engine, work_dir, "qwen2-tiny", "q8_0"))
    b = R.load_gguf(synth(engine, work_dir, "qwen2-tiny", "q8_0", "--seed", "7"))
    assert a.tok_embd.shape == b.tok_embd.shape
    assert not np.allclose(a.layers[0].wq, b.layers[0].wq)
    assert os.path.getsize(os.path.join(work_dir, "qwen2-tiny-q8_0.gguf")) == \
        os.path.getsize(os.path.join(work_dir, "qwen2-tiny-q8_0-seed7.gguf"))
