#!/usr/bin/env bash
# Creates the reference environments that docs/models.md and docs/benchmarks.md compare alspec
# against, under the build folder (large, and needed only for those comparisons, so not .venv):
#   $BUILD/ref-venv    transformers + torch: runs GGUF files through gguf-py dequantisation (CPU)
#   $BUILD/llcpp-venv  llama-cpp-python[server] built from its PyPI sdist (it vendors llama.cpp;
#                      the [server] extra gives the OpenAI-compatible server the server bench uses)
# Usage: scripts/make-reference-venv.sh [ref|llcpp|all]   (default all)
# Environment: BUILD (build), JOBS (2: parallel compile jobs for the llama.cpp build).
# Versions are the ones the documented comparisons used (docs/models.md). Expect ~5.4 GB and
# ~10 min for ref-venv (the PyPI torch wheel pulls the CUDA libraries; it runs on the CPU), and
# about an hour of compiling for llcpp-venv on 2 cores. Existing environments are kept.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD="${BUILD:-build}"
JOBS="${JOBS:-2}"
what="${1:-all}"

TORCH=torch==2.15.0
TRANSFORMERS=transformers==5.24.0
ACCELERATE=accelerate==1.15.0   # transformers needs it for gguf_file= loading
GGUF=gguf==0.19.0               # as in scripts/requirements.txt
LLAMA_CPP_PYTHON=llama-cpp-python==0.3.36

make_venv() {  # DIR: creates it unless it holds a python already
  [[ -x "$1/bin/python" ]] || python3 -m venv "$1"
  "$1/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
}

case "$what" in
  ref | llcpp | all) ;;
  *) echo "usage: $0 [ref|llcpp|all]" >&2; exit 2 ;;
esac

if [[ "$what" == ref || "$what" == all ]]; then
  venv="$BUILD/ref-venv"
  echo "make-reference-venv: $venv ($TORCH $TRANSFORMERS $ACCELERATE $GGUF)"
  make_venv "$venv"
  # sentencepiece and numpy: no version recorded in the docs; pip resolves them.
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "$TORCH" "$TRANSFORMERS" "$ACCELERATE" "$GGUF" sentencepiece numpy
  "$venv/bin/python" -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
fi

if [[ "$what" == llcpp || "$what" == all ]]; then
  venv="$BUILD/llcpp-venv"
  echo "make-reference-venv: $venv ($LLAMA_CPP_PYTHON from source)"
  make_venv "$venv"
  CMAKE_BUILD_PARALLEL_LEVEL="$JOBS" "$venv/bin/pip" install --quiet --disable-pip-version-check \
    --no-binary llama-cpp-python "${LLAMA_CPP_PYTHON/==/[server]==}" numpy
  "$venv/bin/python" -c "import llama_cpp; print('llama-cpp-python', llama_cpp.__version__)"
fi
