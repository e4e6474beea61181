"""pytest: the SPM oracle reproduces the HF-generated llama-spm vectors, and the committed
stories260K expectations are what the oracle computes.

  .venv/bin/python -m pytest -q tests/tokenizer/test_spm_reference.py
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import spm_reference  # noqa: E402


def test_oracle_matches_llama_spm_vectors():
    assert spm_reference.self_check()


def test_stories_expectations_are_current():
    with open(spm_reference.EXPECTED_PATH, encoding="utf-8") as f:
        assert f.read() == spm_reference.expected_table()


def test_once_upon_a_time():
    vocab = spm_reference.SpmVocab(spm_reference.STORIES_GGUF)
    ids = vocab.encode("Once upon a time", add_bos=True)
    assert ids[0] == vocab.bos
    assert "".join(vocab.tokens[i] for i in ids[1:]) == "\u2581Once\u2581upon\u2581a\u2581time"
