# Everything a fresh machine needs is set up here: `make test` and `make demo` both
# create .venv and install the project with its dev extra first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_ROOT ?= $(CURDIR)/.demo-root

.PHONY: test lint typecheck unit demo bench screenshots torture clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check farro_core farro_tui tests benchmarks
	$(BIN)/ruff format --check farro_core farro_tui tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy farro_core farro_tui

unit: $(STAMP)
	$(BIN)/pytest -q -n 0 2>/dev/null || $(BIN)/pytest -q

test: lint typecheck
	$(BIN)/pytest -q

demo: $(STAMP)
	$(BIN)/farro-tui --demo --root $(DEMO_ROOT)

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
