# `make test` and `make demo` set everything up themselves on a fresh machine:
# they create .venv and install the project with its dev extra first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_ROOT ?= $(CURDIR)/.demo-root

.PHONY: test test-agents lint typecheck pytest demo bench screenshots torture tools docs clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# tmux drives the console in one end-to-end test, and README's examples use jq;
# install them where we may (root, apt).
tools:
	@{ command -v tmux && command -v jq; } >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && apt-get install -y -qq tmux jq) >/dev/null 2>&1; } || true

lint: $(STAMP)
	$(BIN)/ruff check farro_core farro_tui tests benchmarks
	$(BIN)/ruff format --check farro_core farro_tui tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy farro_core farro_tui

pytest: $(STAMP) tools
	$(BIN)/pytest -q --ignore=tests/agents

# the agent presets with the real CLIs (npm, PyPI; cached in ~/.cache/farro-agents)
# against fake model servers: CI runs it after `make test`
test-agents: $(STAMP) tools
	@command -v npm >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && apt-get install -y -qq nodejs npm) >/dev/null 2>&1; } || true
	$(BIN)/pytest -q tests/agents

test: lint typecheck pytest

demo: $(STAMP)
	$(BIN)/farro-tui --demo --root $(DEMO_ROOT)

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

torture: $(STAMP)
	FARRO_TORTURE=full $(BIN)/pytest -q -s tests/torture tests/load

# README.md and docs/spec.md tables made from the code (tests/test_docs.py checks them)
docs: $(STAMP)
	$(BIN)/python -m farro_tui.docgen

screenshots: $(STAMP)
	$(BIN)/python -m farro_tui.screenshots screenshots

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
