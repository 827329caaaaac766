# `make test` and `make demo` set everything up themselves on a fresh machine:
# they create .venv and install the project with its dev extra first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_ROOT ?= $(CURDIR)/.demo-root

.PHONY: test test-agents check lint typecheck pytest demo bench screenshots torture tools docs clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# tmux drives the console in end-to-end tests, README's examples use jq, and
# libfaketime shifts the clocks of the multi-host tests (tests/hosts); install them
# where we may (root, apt).
tools:
	@{ command -v tmux && command -v jq; } >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && apt-get install -y -qq tmux jq) >/dev/null 2>&1; } || true
	@ls /usr/lib/*/faketime/libfaketimeMT.so.1 >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
	  command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && apt-get install -y -qq faketime) >/dev/null 2>&1; } || true

# lint-imports checks the layering contracts in pyproject.toml ([tool.importlinter]).
lint: $(STAMP)
	$(BIN)/ruff check farro_core farro_tui tests benchmarks
	$(BIN)/ruff format --check farro_core farro_tui tests benchmarks
	$(BIN)/lint-imports

# strict on farro_core; the console, tests and benchmarks are checked too (tests not strictly)
typecheck: $(STAMP)
	$(BIN)/mypy farro_core farro_tui
	$(BIN)/mypy tests benchmarks

pytest: $(STAMP) tools
	$(BIN)/pytest -q --ignore=tests/agents

# the agent presets with the real CLIs (npm, PyPI; cached in ~/.cache/farro-agents)
# against fake model servers: part of `make test`
test-agents: $(STAMP) tools
	@command -v npm >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && apt-get install -y -qq nodejs npm) >/dev/null 2>&1; } || true
	$(BIN)/pytest -q tests/agents

# everything: lint, types, every test (slow and torture-marked ones included)
test: lint typecheck pytest test-agents

# the edit loop (under a minute): lint, types, and the tests not marked slow
check: lint typecheck
	$(BIN)/pytest -q -x -m "not slow"

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
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
