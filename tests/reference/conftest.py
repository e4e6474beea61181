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
