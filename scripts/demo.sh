#!/usr/bin/env bash
# The main job on the bundled sample corpus: direct corpus interaction, BM25 search, and an agent answering a
# two-hop question with the embedded local model (offline). The first run assembles and checks the model
# weights (~0.5 GB) and starts the llama.cpp server.
set -euo pipefail
cd "$(dirname "$0")/.."
S=${SLEUTH_VENV:-.venv}/bin/sleuth
C=examples/corpus
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
step "$S" ls --corpus "$C"
step "$S" grep "Tidewatch" --corpus "$C" --max-matches 5
step "$S" read projects/tidewatch.md --corpus "$C" --lines 1:4
step "$S" index "$C"
step "$S" search "who designed the bridge over the river Vell" --corpus "$C" --method bm25 --k 3
step "$S" ask "In which town was the leader of the Tidewatch project born?" --corpus "$C" --agent iter-retgen --trace runs/demo-trace.jsonl
step "$S" trace show runs/demo-trace.jsonl
