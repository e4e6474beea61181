"""Common pytest setup for the reference tests: import path and where the model files are."""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

SOURCE_DIR = os.environ.get("ALSPEC_SOURCE_DIR", os.path.normpath(os.path.join(HERE, "..", "..")))
# stories260K as GGUF (assets/) and in llama2.c's checkpoint format (tests/data/, test-only).
STORIES_GGUF = os.path.join(SOURCE_DIR, "assets", "models", "stories260K.gguf")
STORIES_BIN = os.path.join(SOURCE_DIR, "tests", "data", "stories260K", "stories260K.bin")


def pytest_addoption(parser):
    parser.addoption("--alspec-bin", default=os.environ.get("ALSPEC_BIN"),
                     help="path to the built alspec CLI (engine comparison tests skip without it)")
    parser.addoption("--work-dir", default=os.environ.get("ALSPEC_REF_WORK_DIR"),
                     help="where generated models and logits go (default: pytest tmp dir)")


@pytest.fixture(scope="session")
def stories_gguf():
    assert os.path.isfile(STORIES_GGUF), f"{STORIES_GGUF} is part of the repository"
    return STORIES_GGUF


@pytest.fixture(scope="session")
def stories_bin():
    assert os.path.isfile(STORIES_BIN), f"{STORIES_BIN} is part of the repository"
    return STORIES_BIN


@pytest.fixture(scope="session")
def engine(request):
    from engine import Engine

    binary = request.config.getoption("--alspec-bin")
    if not binary:
        pytest.skip("no engine binary given (--alspec-bin or $ALSPEC_BIN)")
    if not os.access(binary, os.X_OK):
        pytest.skip(f"{binary}: engine binary not built yet")
    return Engine(binary)


@pytest.fixture(scope="session")
def work_dir(request, tmp_path_factory):
    d = request.config.getoption("--work-dir")
    if not d:
        return str(tmp_path_factory.mktemp("reference"))
    os.makedirs(d, exist_ok=True)
    return d


def pytest_terminal_summary(terminalreporter):
    # Measured agreement of every comparison, so the figures are in ctest logs even on success.
    from comparison import AGREEMENT

    if AGREEMENT:
        terminalreporter.section("engine vs reference agreement")
        for line in AGREEMENT:
            terminalreporter.write_line(line)
