# openattrib: `make demo` and `make test` are the whole set-up on a fresh machine.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.openattrib-installed
EXTRAS ?= dev,docs,notebooks,torch,chain,text,llm
export OMP_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1

.PHONY: demo test test-fast docs lab lint format clean venv experiment benchmark-table

venv: $(STAMP)

# Re-installs only when pyproject.toml changed (or the venv is missing).
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[$(EXTRAS)]' 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; }
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/openattrib demo

# The EVM export is checked against OpenZeppelin's own npm package, run under node; the
# contracts are rebuilt with the pinned npm solc and the CLI is tested against npm ganache.
NODE_DEPS := tests/node/node_modules/.package-lock.json
$(NODE_DEPS): tests/node/package.json tests/node/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix tests/node --no-audit --no-fund --loglevel=error; else echo "npm not found: the OpenZeppelin, solc and ganache tests will be skipped"; fi

# Two workers (the machines have 2 cores); tests are independent and seeded, so the order
# and the worker a test lands on do not change any result. PYTEST_WORKERS=0 runs in-process.
PYTEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -q -p no:cacheprovider -n $(PYTEST_WORKERS) --dist worksteal

test: $(STAMP) $(NODE_DEPS)
	$(PYTEST)

test-fast: $(STAMP)
	$(PYTEST) -m "not slow and not notebook"

experiment: $(STAMP)
	$(BIN)/openattrib experiment experiments/quick.toml --out results/quick

# The README's method x dataset table (about 5 minutes on 2 cores).
benchmark-table: $(STAMP)
	$(BIN)/openattrib experiment experiments/benchmark.toml --out results/benchmark

# The documentation site, warnings as errors; open docs/_build/html/index.html.
docs: $(STAMP)
	$(BIN)/python -m sphinx -b html -W --keep-going -q docs docs/_build/html

lab: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[notebooks]'
	$(BIN)/jupyter lab notebooks/

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) out .pytest_cache docs/_build docs/api docs/notebooks
