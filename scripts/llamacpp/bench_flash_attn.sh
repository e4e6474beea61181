#!/usr/bin/env bash
# llama.cpp (ggml CPU backend) flash attention at the shapes of `alspec bench attention`.
#
#   scripts/llamacpp/bench_flash_attn.sh [--build-only] [bench_ggml_flash_attn options...]
#
# Fetches the llama-cpp-python sdist from PyPI with pip (its vendor/llama.cpp holds the ggml
# sources), builds ggml's CPU backend (Release, GGML_NATIVE=ON, OpenMP) together with
# bench_ggml_flash_attn.cpp into $BUILD_DIR, then runs the benchmark with the given options
# (default: --ctx 4096,16384,65536 --threads 1,2 --batch 1,4 --kv-type f16 --reps 7), one JSON
# line per point. Not part of `make test`; on the shared machine wrap the run in scripts/quiet-window.sh:
#   scripts/llamacpp/bench_flash_attn.sh --build-only
#   scripts/quiet-window.sh scripts/llamacpp/bench_flash_attn.sh --ctx 4096,16384,65536
# Environment: LLAMA_CPP_PYTHON_VERSION (0.3.36), BUILD_DIR (build/llamacpp-ggml in the repository),
# PYTHON (the repo's .venv python if present, else python3), JOBS (2).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
version="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
build_dir="${BUILD_DIR:-$repo/build/llamacpp-ggml}"
jobs="${JOBS:-2}"
if [[ -n "${PYTHON:-}" ]]; then python="$PYTHON"
elif [[ -x "$repo/.venv/bin/python" ]]; then python="$repo/.venv/bin/python"
else python=python3; fi

build_only=0
if [[ "${1:-}" == "--build-only" ]]; then build_only=1; shift; fi

sdist="$build_dir/sdist/llama_cpp_python-$version.tar.gz"
src="$build_dir/src/llama_cpp_python-$version/vendor/llama.cpp"
bin="$build_dir/build/bench_ggml_flash_attn"

if [[ ! -f "$sdist" ]]; then
  mkdir -p "$build_dir/sdist"
  "$python" -m pip download --no-deps --no-binary :all: "llama-cpp-python==$version" -d "$build_dir/sdist" >&2
fi
if [[ ! -f "$src/ggml/CMakeLists.txt" ]]; then
  mkdir -p "$build_dir/src"
  tar -xzf "$sdist" -C "$build_dir/src"
fi
# Configure once; later runs only rebuild what changed (e.g. the benchmark source).
if [[ ! -f "$build_dir/build/build.ninja" ]]; then
  cmake -S "$here" -B "$build_dir/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    -DBUILD_SHARED_LIBS=OFF -DLLAMA_CPP_DIR="$src" >&2
fi
ninja -C "$build_dir/build" -j "$jobs" bench_ggml_flash_attn >&2

if (( build_only )); then exit 0; fi
if (( $# == 0 )); then set -- --ctx 4096,16384,65536 --threads 1,2 --batch 1,4 --kv-type f16 --reps 7; fi
exec "$bin" "$@"
