#!/usr/bin/env bash
# The ahead-of-time gate (tests/aot) under another Triton, in a venv of its own; no GPU needed.
#
#   benchmarks/aot_gate.sh                 # Triton 3.6.0, the oldest the README claims, CI subset
#   benchmarks/aot_gate.sh 3.7.0 -m slow   # another version; extra arguments go to pytest
#
# Makes the venv $AOT_VENV_ROOT/triton-<version> (default ~/.cache/seqlayers-aot, outside the
# repository): torch 2.13.0 first (the same CPU
# build the README installs), then triton==<version> and numpy<2.3 over it, then this package
# (editable, with the test tools). It compiles with that Triton's own ptxas; the gate skips
# (not fails) if there is none. Set SEQLAYERS_AOT_JOBS for the compile processes (default 2).
set -euo pipefail
version="${1:-3.6.0}"
shift || true
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${AOT_VENV_ROOT:-$HOME/.cache/seqlayers-aot}/triton-$version"
if [ ! -x "$venv/bin/python" ]; then
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q torch==2.13.0
    "$venv/bin/pip" install -q "triton==$version" "numpy<2.3"
    "$venv/bin/pip" install -q --no-deps -e "$root"
    "$venv/bin/pip" install -q pytest hypothesis
fi
"$venv/bin/python" -c "import triton, torch; print('triton', triton.__version__, 'torch', torch.__version__)"
cd "$root"
exec "$venv/bin/python" -m pytest -q tests/aot "$@"
