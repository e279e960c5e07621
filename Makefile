# The two commands of the README's quick start; each creates the environment first if needed.
#   make run    the default suite on the bundled images (local Ray, ./mlflow.db)
#   make test   lint, format check and the tests (what CI runs)
# TORCH is installed before the project so pip keeps that build (here the local CPU wheel);
# with CUDA, e.g. `make run TORCH="torch --index-url https://download.pytorch.org/whl/cu128"`.

PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test setup

run: setup
	$(BIN)/restorebench run

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(TORCH)
	$(BIN)/pip install -e ".[test]"
	touch $@
