#!/usr/bin/env bash
# Installs what alspec needs on Debian 12 (as root), only what is missing, and a Python venv
# (.venv) with the reference/tooling packages from PyPI. Idempotent; safe to run every time.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  clang libclang-rt-14-dev            # libFuzzer + sanitizer runtimes
  libgtest-dev libgmock-dev libbenchmark-dev
  libpcre2-dev nlohmann-json3-dev libcpp-httplib-dev libcli11-dev
  python3 python3-venv python3-pip
  openmpi-bin libopenmpi-dev iproute2   # tensor parallelism across MPI ranks; netns "hosts" test
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: apt-get install ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Python tooling for reference implementations, plots and test oracles (never the engine).
PY_REQ=scripts/requirements.txt
STAMP=.venv/.requirements.stamp
if [ ! -x .venv/bin/python ] || ! cmp -s "$PY_REQ" "$STAMP"; then
  echo "install-deps: creating .venv from $PY_REQ"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r "$PY_REQ"
  cp "$PY_REQ" "$STAMP"
fi
