#!/usr/bin/env bash
# Set up robodistill in ./.venv (idempotent: reinstalls only when pyproject.toml changed), then
#   ./bootstrap.sh demo [demo options]   run the main job (robodistill demo)
#   ./bootstrap.sh test [pytest options] run ruff and the test suite
#   ./bootstrap.sh setup                 only set up
# Needs only Python 3.11 and pip. Note: lerobot 0.4.4 pins torch<2.11, so pip installs torch
# 2.10 from PyPI (a CUDA build of several GB that runs on the CPU).
set -euo pipefail
cd "$(dirname "$0")"

python=${PYTHON:-}
if [ -z "$python" ]; then
  for candidate in python3.11 python3 python; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      python=$candidate; break
    fi
  done
fi
[ -n "$python" ] || { echo "bootstrap.sh: Python 3.11 is required (set PYTHON=/path/to/python3.11)" >&2; exit 1; }

venv=.venv
stamp=$venv/.robodistill-install
want=$(cat pyproject.toml bootstrap.sh | sha256sum | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ]; then
  echo "bootstrap.sh: creating $venv"
  "$python" -m venv "$venv"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap.sh: installing robodistill and its dependencies into $venv (first run: a few minutes)"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[dev]"
  echo "$want" > "$stamp"
fi

export MUJOCO_GL=${MUJOCO_GL:-egl} HF_HUB_OFFLINE=1 PATH="$PWD/$venv/bin:$PATH"
# One torch thread unless told otherwise: on a small CPU shared with anything else, two
# OpenMP threads that wait on each other made demo training ~8x slower than one.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
command=${1:-setup}
[ $# -gt 0 ] && shift
case "$command" in
  setup) echo "bootstrap.sh: ready; activate with: source $venv/bin/activate" ;;
  demo) exec robodistill demo "$@" ;;
  test)
    # tests/test_report.py opens the report in headless Chromium (Debian's package)
    if ! command -v chromium >/dev/null; then
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } \
          || echo "bootstrap.sh: could not install chromium; its test will be skipped" >&2
      else
        echo "bootstrap.sh: chromium is missing (apt-get install chromium as root); its test will be skipped" >&2
      fi
    fi
    ruff check .
    ruff format --check .
    exec python -m pytest "$@"
    ;;
  *) echo "usage: ./bootstrap.sh [setup|demo|test] [options]" >&2; exit 2 ;;
esac
