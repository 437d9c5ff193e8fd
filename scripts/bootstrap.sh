#!/usr/bin/env bash
# Create .venv and install sleuth with every extra and the test tools. Idempotent: re-runs only when
# pyproject.toml changed. Torch is installed first as the CPU build (torch==2.13.0; on these machines pip takes
# it from a local file), because any other torch request pulls a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${SLEUTH_VENV:-.venv}
stamp="$VENV/.sleuth-installed"
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && [ "$VENV/bin/sleuth" -nt pyproject.toml ]; then
  exit 0
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV" >&2
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "torch==2.13.0" || echo "warning: torch==2.13.0 not available; the attention/dense extras will pull whatever torch pip picks" >&2
"$VENV/bin/python" -m pip install -q -e ".[all,dev]"
touch "$stamp"
echo "installed sleuth into $VENV" >&2
