#!/usr/bin/env bash
# Creates a separate virtual environment with EleutherAI's lm-evaluation-harness (from PyPI) for
# tests/server/test_lmeval.py. Kept apart from .venv because it is large (datasets, pyarrow,
# pandas, scikit-learn, ...); it does not pull torch. Usage: setup_lmeval.sh [VENV_DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${1:-$here/../../build/lmeval-venv}"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
# 0.4.13 is the version the compatibility test was written against (remote tokenizer backend).
"$venv/bin/pip" install --quiet "lm-eval==0.4.13" "requests" "aiohttp" "tenacity"
"$venv/bin/python" -c "import lm_eval, importlib.metadata as m; print('lm-eval', m.version('lm-eval'))"
du -sh "$venv"
