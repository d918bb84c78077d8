# Sequent: `make run` starts the app on http://127.0.0.1:8000; `make test` runs the suite.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: run test install dev-install lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

dev-install: $(VENV)/.dev-installed

run: install
	$(BIN)/sequent migrate --noinput
	$(BIN)/sequent seed_demo
	$(BIN)/sequent serve

test: dev-install
	$(BIN)/python scripts/run_tests.py

lint: dev-install
	$(BIN)/ruff check .
	$(BIN)/mypy sequent

format: dev-install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format sequent

clean:
	rm -rf $(VENV) var
