"""Shared pytest setup for the reference tests: import path and locations of shared material."""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

SOURCE_DIR = os.environ.get("ALSPEC_SOURCE_DIR", os.path.normpath(os.path.join(HERE, "..", "..")))
SHARED_DIR = os.environ.get("ALSPEC_SHARED_DIR", os.path.normpath(os.path.join(SOURCE_DIR, "..", "shared")))
STORIES_DIR = os.path.join(SHARED_DIR, "models", "stories260K")


def pytest_addoption(parser):
    parser.addoption("--alspec-bin", default=os.environ.get("ALSPEC_BIN"),
                     help="path to the built alspec CLI (engine comparison tests skip without it)")
    parser.addoption("--work-dir", default=os.environ.get("ALSPEC_REF_WORK_DIR"),
                     help="where generated models and logits go (default: pytest tmp dir)")


@pytest.fixture(scope="session")
def stories_dir():
    if not os.path.isfile(os.path.join(STORIES_DIR, "stories260K.gguf")):
        pytest.skip(f"{STORIES_DIR}: stories260K model not found")
    return STORIES_DIR
