#!/usr/bin/env bash
# The whole test suite, as CI runs it. pytest's exit code 5 (no tests collected) is a broken setup, not a pass.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${SLEUTH_VENV:-.venv}
"$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "error: pytest collected no tests (exit code 5); the test setup is broken" >&2
  exit 1
fi
exit "$rc"
