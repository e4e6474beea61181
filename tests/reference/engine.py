"""Runs the engine CLI (`alspec generate`, `alspec synth-model`) for the comparison tests."""
from __future__ import annotations

import json
import os
import re
import subprocess

import numpy as np
import pytest


class Engine:
    def __init__(self, binary: str):
        self.binary = binary
        self._help: dict[str, str | None] = {}
        r = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=60)
        self._main_help = r.stdout if r.returncode == 0 else ""

    def help(self, sub: str) -> str | None:
        """`alspec <sub> --help` text, or None when the subcommand does not exist."""
        if sub not in self._help:
            listed = re.search(rf"^\s+{re.escape(sub)}\s", self._main_help, re.M) is not None
            r = subprocess.run([self.binary, sub, "--help"], capture_output=True, text=True, timeout=60)
            self._help[sub] = r.stdout if listed and r.returncode == 0 else None
        return self._help[sub]

    def require(self, sub: str) -> None:
        if self.help(sub) is None:
            pytest.skip(f"{self.binary}: subcommand '{sub}' is not available yet")

    def run(self, args: list[str], timeout: int = 300) -> str:
        r = subprocess.run([self.binary, *args], capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise AssertionError(f"alspec {' '.join(args)} failed (rc {r.returncode}):\n{r.stderr}")
        return r.stdout

    def synth_model(self, path: str, preset: str, wtype: str, *extra: str) -> str:
        """Writes the model once per path (the name encodes every option)."""
        self.require("synth-model")
        if not os.path.isfile(path):
            tmp = path + ".part"
            self.run(["synth-model", "--preset", preset, "--type", wtype, "--out", tmp, *extra])
            os.replace(tmp, path)
        return path

    def generate(self, model: str, n_vocab: int, n_predict: int, kv_type: str, logits_path: str,
                 prompt_tokens: list[int] | None = None, prompt: str | None = None,
                 threads: int = 2) -> tuple[dict, np.ndarray]:
        """Greedy generation; returns the JSON result and the logits rows (n_generated, n_vocab)."""
        self.require("generate")
        args = ["generate", "--model", model, "--n-predict", str(n_predict), "--temperature", "0",
                "--kv-type", kv_type, "--threads", str(threads), "--json", "--logits-out", logits_path]
        if prompt_tokens is not None:
            args += ["--prompt-tokens", ",".join(str(t) for t in prompt_tokens)]
        else:
            args += ["--prompt", prompt]
        if "--ignore-eos" in (self.help("generate") or ""):
            args.append("--ignore-eos")  # compare a fixed number of steps
        out = self.run(args)
        result = json.loads(out[out.index("{"):])
        logits = np.fromfile(logits_path, dtype="<f4").astype(np.float64)
        if logits.size % n_vocab != 0:
            raise AssertionError(f"{logits_path}: {logits.size} floats is not a whole number of {n_vocab}-logit rows")
        return result, logits.reshape(-1, n_vocab)
