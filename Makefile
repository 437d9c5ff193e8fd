# The two commands of the README: `make demo` and `make test`. Both create .venv and install everything.
VENV ?= .venv
BIN := $(VENV)/bin
export LITELLM_LOCAL_MODEL_COST_MAP := True
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: venv demo test test-long test-fast bench clean

venv:
	@bash scripts/bootstrap.sh

demo: venv
	@bash scripts/demo.sh

test: venv
	@bash scripts/test.sh

test-long: venv
	@bash scripts/test.sh -m long

test-fast: venv
	@bash scripts/test.sh -m "not model and not attention and not slow"

clean:
	rm -rf $(VENV) .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
