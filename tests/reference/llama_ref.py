#!/usr/bin/env python3
"""Independent float64 numpy reference forward pass for Llama-family GGUF models.

This is the oracle the engine is compared against, so it is deliberately plain:
no shared code with the engine, every step written out in float64.

Supported architectures: llama (Llama 2 / 3 / 3.1 / 3.2), mistral (same graph), qwen2
(Q/K/V biases, NEOX rope). The KV-cache element type of the engine can be emulated with
--kv-type: K (after RoPE) and V rows are rounded to that type before they are used.

CLI:
  llama_ref.py --model F.gguf --tokens 1,2,3 [--kv-type f32|f16|bf16|q8_0] --logits-out F.npy
      teacher-forced logits for every input position, shape (T, n_vocab), float64
  llama_ref.py --model F.gguf --tokens 1,2,3 --greedy N [--logits-out F.npy]
      greedy-generates N tokens, prints {"tokens": [...]} (generated ids only); with
      --logits-out, row i is the distribution the i-th generated token was chosen from
  llama_ref.py --llama2c F.bin --tokens ...   same, for a llama2.c checkpoint (cross-check)
"""
from __future__ import annotations

import argparse
import json
import math
import struct
import sys
from dataclasses import dataclass, field

import numpy as np

ARCHS = ("llama", "mistral", "qwen2")
KV_TYPES = ("f32", "f16", "bf16", "q8_0")


@dataclass
class HParams:
    arch: str
    n_vocab: int
    n_embd: int
    n_layer: int
    n_ff: int
    n_head: int
    n_head_kv: int
    head_dim: int
    rope_dim: int
    rope_base: float
    rope_neox: bool
    norm_eps: float
    context_length: int
    bos_id: int | None = None
    eos_id: int | None = None


@dataclass
class Layer:
    attn_norm: np.ndarray
    wq: np.ndarray  # (n_head*head_dim, n_embd)
    wk: np.ndarray  # (n_head_kv*head_dim, n_embd)
    wv: np.ndarray
    wo: np.ndarray  # (n_embd, n_head*head_dim)
    ffn_norm: np.ndarray
    w_gate: np.ndarray  # (n_ff, n_embd)
    w_up: np.ndarray
    w_down: np.ndarray  # (n_embd, n_ff)
    bq: np.ndarray | None = None
    bk: np.ndarray | None = None
    bv: np.ndarray | None = None


@dataclass
class Model:
    hp: HParams
    tok_embd: np.ndarray  # (n_vocab, n_embd)
    layers: list[Layer]
    output_norm: np.ndarray
    output: np.ndarray  # (n_vocab, n_embd); the embedding itself when tied
    inv_freq: np.ndarray  # (rope_dim/2,), scaling already applied


# ----------------------------------------------------------------------------------------------
# RoPE frequencies


def rope_inv_freq(rope_dim: int, base: float) -> np.ndarray:
    i = np.arange(rope_dim // 2, dtype=np.float64)
    return base ** (-2.0 * i / rope_dim)


def llama3_scale(inv_freq: np.ndarray, factor: float, original: float, low: float, high: float) -> np.ndarray:
    """Llama 3.1 frequency scaling: long wavelengths slowed by `factor`, short ones kept,
    a linear blend (in 1/wavelength) between."""
    out = inv_freq.copy()
    for i, f in enumerate(inv_freq):
        wavelen = 2.0 * math.pi / f
        if wavelen < original / high:
            out[i] = f
        elif wavelen > original / low:
            out[i] = f / factor
        else:
            smooth = (original / wavelen - low) / (high - low)
            out[i] = (1.0 - smooth) * f / factor + smooth * f
    return out


# ----------------------------------------------------------------------------------------------
# GGUF loading


def _field(reader, key: str, default=None):
    f = reader.fields.get(key)
    if f is None:
        return default
    return f.contents()


def _tensor_f64(t) -> np.ndarray:
    from gguf import quants

    # GGUF ne = [in, out] (ne0 fastest); numpy wants (out, in) so that y = W @ x.
    shape = tuple(int(d) for d in reversed(t.shape))
    data = quants.dequantize(np.asarray(t.data), t.tensor_type)
    return np.asarray(data, dtype=np.float64).reshape(shape)


def load_gguf(path: str) -> Model:
    import gguf

    reader = gguf.GGUFReader(path)
    arch = _field(reader, "general.architecture")
    if arch not in ARCHS:
        raise ValueError(f"{path}: unsupported architecture {arch!r} (supported: {', '.join(ARCHS)})")

    def key(name, default=None, required=False):
        v = _field(reader, f"{arch}.{name}", default)
        if v is None and required:
            raise ValueError(f"{path}: missing metadata {arch}.{name}")
        return v

    tensors = {t.name: t for t in reader.tensors}

    def tensor(name, required=True):
        t = tensors.get(name)
        if t is None:
            if required:
                raise ValueError(f"{path}: missing tensor {name}")
            return None
        return _tensor_f64(t)

    n_embd = int(key("embedding_length", required=True))
    n_head = int(key("attention.head_count", required=True))
    n_head_kv = int(key("attention.head_count_kv", n_head))
    head_dim = int(key("attention.key_length", n_embd // n_head))
    value_dim = int(key("attention.value_length", head_dim))
    if value_dim != head_dim:
        raise ValueError(f"{path}: key_length {head_dim} != value_length {value_dim} is not supported")
    rope_dim = int(key("rope.dimension_count", head_dim))
    tok_embd = tensor("token_embd.weight")
    hp = HParams(
        arch=arch,
        n_vocab=tok_embd.shape[0],
        n_embd=n_embd,
        n_layer=int(key("block_count", required=True)),
        n_ff=int(key("feed_forward_length", required=True)),
        n_head=n_head,
        n_head_kv=n_head_kv,
        head_dim=head_dim,
        rope_dim=rope_dim,
        rope_base=float(key("rope.freq_base", 10000.0)),
        rope_neox=(arch == "qwen2"),
        norm_eps=float(key("attention.layer_norm_rms_epsilon", required=True)),
        context_length=int(key("context_length", required=True)),
        bos_id=_field(reader, "tokenizer.ggml.bos_token_id"),
        eos_id=_field(reader, "tokenizer.ggml.eos_token_id"),
    )
    if tok_embd.shape[1] != n_embd:
        raise ValueError(f"{path}: token_embd.weight has ne0 {tok_embd.shape[1]}, expected {n_embd}")

    inv_freq = rope_inv_freq(rope_dim, hp.rope_base)
    rope_freqs = tensor("rope_freqs.weight", required=False)
    scaling = key("rope.scaling.type")
    if rope_freqs is not None:
        rope_freqs = rope_freqs.reshape(-1)
        if rope_freqs.shape[0] != rope_dim // 2:
            raise ValueError(f"{path}: rope_freqs.weight has {rope_freqs.shape[0]} entries, expected {rope_dim // 2}")
        inv_freq = inv_freq / rope_freqs
    elif scaling == "llama3":
        inv_freq = llama3_scale(
            inv_freq,
            factor=float(key("rope.scaling.factor", required=True)),
            original=float(key("rope.scaling.original_context_length", required=True)),
            low=float(key("rope.scaling.low_freq_factor", 1.0)),
            high=float(key("rope.scaling.high_freq_factor", 4.0)),
        )
    elif scaling == "linear":
        inv_freq = inv_freq / float(key("rope.scaling.factor", required=True))
    elif scaling not in (None, "none"):
        raise ValueError(f"{path}: unsupported rope scaling type {scaling!r}")

    layers = []
    for i in range(hp.n_layer):
        p = f"blk.{i}."
        layers.append(
            Layer(
                attn_norm=tensor(p + "attn_norm.weight").reshape(-1),
                wq=tensor(p + "attn_q.weight"),
                wk=tensor(p + "attn_k.weight"),
                wv=tensor(p + "attn_v.weight"),
                wo=tensor(p + "attn_output.weight"),
                ffn_norm=tensor(p + "ffn_norm.weight").reshape(-1),
                w_gate=tensor(p + "ffn_gate.weight"),
                w_up=tensor(p + "ffn_up.weight"),
                w_down=tensor(p + "ffn_down.weight"),
                bq=_opt_vec(tensor(p + "attn_q.bias", required=False)),
                bk=_opt_vec(tensor(p + "attn_k.bias", required=False)),
                bv=_opt_vec(tensor(p + "attn_v.bias", required=False)),
            )
        )
    output = tensor("output.weight", required=False)
    model = Model(
        hp=hp,
        tok_embd=tok_embd,
        layers=layers,
        output_norm=tensor("output_norm.weight").reshape(-1),
        output=tok_embd if output is None else output,
        inv_freq=inv_freq,
    )
    check_shapes(model, path)
    return model


def _opt_vec(a):
    return None if a is None else a.reshape(-1)


def check_shapes(m: Model, where: str) -> None:
    hp = m.hp
    q, kv = hp.n_head * hp.head_dim, hp.n_head_kv * hp.head_dim
    if hp.n_head % hp.n_head_kv != 0:
        raise ValueError(f"{where}: n_head {hp.n_head} not a multiple of n_head_kv {hp.n_head_kv}")
    if hp.rope_dim % 2 != 0 or hp.rope_dim > hp.head_dim:
        raise ValueError(f"{where}: bad rope dimension {hp.rope_dim} for head_dim {hp.head_dim}")
    want = {
        "wq": (q, hp.n_embd), "wk": (kv, hp.n_embd), "wv": (kv, hp.n_embd), "wo": (hp.n_embd, q),
        "w_gate": (hp.n_ff, hp.n_embd), "w_up": (hp.n_ff, hp.n_embd), "w_down": (hp.n_embd, hp.n_ff),
        "attn_norm": (hp.n_embd,), "ffn_norm": (hp.n_embd,),
    }
    for i, layer in enumerate(m.layers):
        for name, shape in want.items():
            got = getattr(layer, name).shape
            if got != shape:
                raise ValueError(f"{where}: layer {i} {name} has shape {got}, expected {shape}")
        for name, n in (("bq", q), ("bk", kv), ("bv", kv)):
            b = getattr(layer, name)
            if b is not None and b.shape != (n,):
                raise ValueError(f"{where}: layer {i} {name} has shape {b.shape}, expected ({n},)")
    if m.output.shape != (hp.n_vocab, hp.n_embd):
        raise ValueError(f"{where}: output has shape {m.output.shape}, expected {(hp.n_vocab, hp.n_embd)}")


# ----------------------------------------------------------------------------------------------
# llama2.c checkpoint loading (second, independent path to the same weights)


# llama2.c has no metadata; its run.c uses eps 1e-5 in float32, which the GGUF export stores.
LLAMA2C_NORM_EPS = float(np.float32(1e-5))


def load_llama2c(path: str, rope_base: float = 10000.0, norm_eps: float = LLAMA2C_NORM_EPS) -> Model:
    """llama2.c format: 7 int32 header (dim, hidden, layers, heads, kv_heads, vocab, seq_len;
    vocab > 0 means the classifier is shared with the embedding), then float32 tensors in the
    order of run.c's memory_map_weights, each row-major (out, in). run.c rotates adjacent pairs,
    which is what GGML's "normal" rope mode does."""
    with open(path, "rb") as f:
        header = f.read(28)
        body = np.frombuffer(f.read(), dtype=np.float32)
    dim, hidden, n_layer, n_head, n_head_kv, vocab, seq_len = struct.unpack("<7i", header)
    shared = vocab > 0
    vocab = abs(vocab)
    hd = dim // n_head
    off = 0

    def take(*shape):
        nonlocal off
        n = int(np.prod(shape))
        if off + n > body.size:
            raise ValueError(f"{path}: truncated checkpoint")
        a = body[off:off + n].astype(np.float64).reshape(shape)
        off += n
        return a

    embd = take(vocab, dim)
    rms_att = take(n_layer, dim)
    wq = take(n_layer, n_head * hd, dim)
    wk = take(n_layer, n_head_kv * hd, dim)
    wv = take(n_layer, n_head_kv * hd, dim)
    wo = take(n_layer, dim, n_head * hd)
    rms_ffn = take(n_layer, dim)
    w1 = take(n_layer, hidden, dim)
    w2 = take(n_layer, dim, hidden)
    w3 = take(n_layer, hidden, dim)
    rms_final = take(dim)
    freq_real = take(seq_len, hd // 2)
    freq_imag = take(seq_len, hd // 2)
    wcls = embd if shared else take(vocab, dim)
    if off != body.size:
        raise ValueError(f"{path}: {body.size - off} trailing floats")

    hp = HParams(arch="llama", n_vocab=vocab, n_embd=dim, n_layer=n_layer, n_ff=hidden, n_head=n_head,
                 n_head_kv=n_head_kv, head_dim=hd, rope_dim=hd, rope_base=rope_base, rope_neox=False,
                 norm_eps=norm_eps, context_length=seq_len, bos_id=1, eos_id=2)
    inv_freq = rope_inv_freq(hd, rope_base)
    # The checkpoint carries its own cos/sin tables: they must agree with our frequency
    # convention (float32 tables, so compare loosely).
    pos = np.arange(seq_len, dtype=np.float64)[:, None]
    if not (np.allclose(freq_real, np.cos(pos * inv_freq), atol=1e-3)
            and np.allclose(freq_imag, np.sin(pos * inv_freq), atol=1e-3)):
        raise ValueError(f"{path}: stored freq_cis tables disagree with base {rope_base} rope frequencies")
    layers = [
        Layer(attn_norm=rms_att[i], wq=wq[i], wk=wk[i], wv=wv[i], wo=wo[i], ffn_norm=rms_ffn[i],
              w_gate=w1[i], w_up=w3[i], w_down=w2[i])
        for i in range(n_layer)
    ]
    model = Model(hp=hp, tok_embd=embd, layers=layers, output_norm=rms_final, output=wcls, inv_freq=inv_freq)
    check_shapes(model, path)
    return model


# ----------------------------------------------------------------------------------------------
# KV-cache element type emulation


def round_bf16(x: np.ndarray) -> np.ndarray:
    """float32 -> bf16 with round-to-nearest-even on the float32 bits, back to float64."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
    return rounded.astype(np.uint32).view(np.float32).astype(np.float64)


def round_q8_0(x: np.ndarray) -> np.ndarray:
    """GGML Q8_0 round trip along the last axis (blocks of 32): d = max|x|/127 stored as fp16,
    q = round(x/d) half away from zero. Uses the gguf package's bit-exact port of ggml."""
    from gguf import GGMLQuantizationType, quants

    if x.shape[-1] % 32 != 0:
        raise ValueError(f"q8_0 KV rows need a multiple of 32 elements, got {x.shape[-1]}")
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    q = quants.quantize(x32, GGMLQuantizationType.Q8_0)
    return quants.dequantize(q, GGMLQuantizationType.Q8_0).astype(np.float64).reshape(x.shape)


def round_kv(x: np.ndarray, kv_type: str) -> np.ndarray:
    """Rounds KV rows (last axis = one position's n_head_kv*head_dim values) to the cache type.
    The engine computes in float32, so even f32 rounds the float64 values to float32."""
    if kv_type == "f32":
        return x.astype(np.float32).astype(np.float64)
    if kv_type == "f16":
        return x.astype(np.float32).astype(np.float16).astype(np.float64)
    if kv_type == "bf16":
        return round_bf16(x)
    if kv_type == "q8_0":
        return round_q8_0(x)
    raise ValueError(f"unknown kv type {kv_type!r} (expected one of {', '.join(KV_TYPES)})")


# ----------------------------------------------------------------------------------------------
# Forward pass


def rms_norm(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def apply_rope(x: np.ndarray, pos: np.ndarray, inv_freq: np.ndarray, rope_dim: int, neox: bool) -> np.ndarray:
    """x: (T, heads, head_dim); pos: (T,). Rotates the first rope_dim dims of every head."""
    theta = pos[:, None].astype(np.float64) * inv_freq[None, :]  # (T, rope_dim/2)
    cos, sin = np.cos(theta)[:, None, :], np.sin(theta)[:, None, :]
    out = x.copy()
    half = rope_dim // 2
    if neox:
        a, b = x[..., :half], x[..., half:rope_dim]
        out[..., :half] = a * cos - b * sin
        out[..., half:rope_dim] = a * sin + b * cos
    else:
        a, b = x[..., 0:rope_dim:2], x[..., 1:rope_dim:2]
        out[..., 0:rope_dim:2] = a * cos - b * sin
        out[..., 1:rope_dim:2] = a * sin + b * cos
    return out


@dataclass
class Session:
    """Incremental evaluation with a KV cache, as the engine does it."""

    model: Model
    kv_type: str = "f32"
    k_cache: list[np.ndarray] = field(default_factory=list)  # per layer (P, n_head_kv, head_dim)
    v_cache: list[np.ndarray] = field(default_factory=list)
    n_past: int = 0

    def __post_init__(self):
        if self.kv_type not in KV_TYPES:
            raise ValueError(f"unknown kv type {self.kv_type!r} (expected one of {', '.join(KV_TYPES)})")
        hp = self.model.hp
        empty = np.zeros((0, hp.n_head_kv, hp.head_dim))
        self.k_cache = [empty] * hp.n_layer
        self.v_cache = [empty] * hp.n_layer

    def eval(self, tokens: list[int]) -> np.ndarray:
        """Appends `tokens` at positions n_past.. and returns their logits (T, n_vocab)."""
        m, hp = self.model, self.model.hp
        T = len(tokens)
        if T == 0:
            return np.zeros((0, hp.n_vocab))
        ids = np.asarray(tokens, dtype=np.int64)
        if ids.min() < 0 or ids.max() >= hp.n_vocab:
            raise ValueError(f"token id out of range [0, {hp.n_vocab})")
        if self.n_past + T > hp.context_length:
            raise ValueError(f"sequence of {self.n_past + T} tokens exceeds context length {hp.context_length}")
        pos = np.arange(self.n_past, self.n_past + T)
        group = hp.n_head // hp.n_head_kv
        scale = 1.0 / math.sqrt(hp.head_dim)
        # Causal mask over [cache, new]: query t (position n_past+t) sees keys 0..n_past+t.
        n_keys = self.n_past + T
        visible = np.arange(n_keys)[None, :] <= pos[:, None]  # (T, n_keys)

        x = m.tok_embd[ids]  # (T, n_embd)
        for li, L in enumerate(m.layers):
            h = rms_norm(x, L.attn_norm, hp.norm_eps)
            q = h @ L.wq.T
            k = h @ L.wk.T
            v = h @ L.wv.T
            if L.bq is not None:
                q = q + L.bq
            if L.bk is not None:
                k = k + L.bk
            if L.bv is not None:
                v = v + L.bv
            q = apply_rope(q.reshape(T, hp.n_head, hp.head_dim), pos, m.inv_freq, hp.rope_dim, hp.rope_neox)
            k = apply_rope(k.reshape(T, hp.n_head_kv, hp.head_dim), pos, m.inv_freq, hp.rope_dim, hp.rope_neox)
            v = v.reshape(T, hp.n_head_kv, hp.head_dim)
            # Cache rows are whole positions (all KV heads), as the engine stores them.
            k = round_kv(k.reshape(T, -1), self.kv_type).reshape(k.shape)
            v = round_kv(v.reshape(T, -1), self.kv_type).reshape(v.shape)
            K = self.k_cache[li] = np.concatenate([self.k_cache[li], k], axis=0)
            V = self.v_cache[li] = np.concatenate([self.v_cache[li], v], axis=0)

            attn = np.empty((T, hp.n_head, hp.head_dim))
            for hq in range(hp.n_head):
                hk = hq // group
                s = (q[:, hq, :] @ K[:, hk, :].T) * scale  # (T, n_keys)
                s = np.where(visible, s, -np.inf)
                s = s - s.max(axis=1, keepdims=True)
                p = np.exp(s)
                p /= p.sum(axis=1, keepdims=True)
                attn[:, hq, :] = p @ V[:, hk, :]
            x = x + attn.reshape(T, -1) @ L.wo.T

            h = rms_norm(x, L.ffn_norm, hp.norm_eps)
            x = x + (silu(h @ L.w_gate.T) * (h @ L.w_up.T)) @ L.w_down.T

        self.n_past += T
        return rms_norm(x, m.output_norm, hp.norm_eps) @ m.output.T


def teacher_forced_logits(model: Model, tokens: list[int], kv_type: str = "f32") -> np.ndarray:
    return Session(model, kv_type).eval(tokens)


def greedy(model: Model, tokens: list[int], n: int, kv_type: str = "f32") -> tuple[list[int], np.ndarray]:
    """Greedy continuation; returns (generated ids, logits rows they were chosen from)."""
    s = Session(model, kv_type)
    logits = s.eval(tokens)[-1]
    out, rows = [], []
    for _ in range(n):
        rows.append(logits)
        nxt = int(np.argmax(logits))
        out.append(nxt)
        if len(out) < n:
            logits = s.eval([nxt])[-1]
    return out, np.asarray(rows).reshape(len(rows), model.hp.n_vocab)


def load_model(path: str) -> Model:
    return load_llama2c(path) if path.endswith(".bin") else load_gguf(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="GGUF model file")
    src.add_argument("--llama2c", help="llama2.c checkpoint (.bin)")
    ap.add_argument("--tokens", required=True, help="comma-separated token ids (include BOS yourself)")
    ap.add_argument("--kv-type", default="f32", choices=KV_TYPES)
    ap.add_argument("--greedy", type=int, metavar="N", help="generate N tokens greedily")
    ap.add_argument("--logits-out", help="write logits as .npy (float64)")
    args = ap.parse_args(argv)

    tokens = [int(t) for t in args.tokens.split(",") if t.strip()]
    if not tokens:
        ap.error("--tokens is empty")
    model = load_gguf(args.model) if args.model else load_llama2c(args.llama2c)
    if args.greedy is not None:
        out, rows = greedy(model, tokens, args.greedy, args.kv_type)
        if args.logits_out:
            np.save(args.logits_out, rows)
        print(json.dumps({"tokens": out}))
    else:
        if not args.logits_out:
            ap.error("give --logits-out (teacher-forced logits) or --greedy N")
        np.save(args.logits_out, teacher_forced_logits(model, tokens, args.kv_type))
    return 0


if __name__ == "__main__":
    sys.exit(main())
