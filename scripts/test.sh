#!/usr/bin/env bash
# The whole test suite, as CI runs it: ruff and mypy on src/, then a header per part of the suite (tests/unit,
# tests/integration, tests/model) as it starts, and the 15 slowest tests at the end. pytest's exit code 5 (no tests collected) is a broken setup,
# not a pass; any other code is pytest's own.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${SLEUTH_VENV:-.venv}
export PYTHONPATH="$PWD/scripts${PYTHONPATH:+:$PYTHONPATH}"
# Lint and types first (src/ at zero errors; tests/ are not linted yet): either failing fails the script.
echo "== ruff check src"
"$VENV/bin/ruff" check src || { echo "error: ruff found problems in src/" >&2; exit 1; }
echo "== mypy (src/sleuth, config in pyproject.toml)"
"$VENV/bin/mypy" || { echo "error: mypy found problems in src/" >&2; exit 1; }
# Evidence runs of minutes (marker `long`: 100k files, long real-model jobs) are left out unless asked for
# (`make test-long`, or any -m of the caller's, which comes last and wins).
"$VENV/bin/python" -m pytest -q -p no:cacheprovider -p pytest_parts --durations=15 -m "not long" "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "error: pytest collected no tests (exit code 5); the test setup is broken" >&2
  exit 1
fi
exit "$rc"
