# Two commands on a fresh machine:
#   make demo   set up the virtual environment and run the default lab pipeline
#   make test   set up the virtual environment and run lint + the whole test suite
#
# torch: the CPU wheel (TORCH_SPEC) is installed only when the venv has no torch, so a GPU user
# can bring their own build:  python -m venv .venv && .venv/bin/pip install torch  (then make ...).

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: setup demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/alignlab run recipes/lab.yaml

lint: setup
	$(BIN)/ruff check src tests bench

test: lint
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[bench]"
	$(BIN)/python bench/bench_sft.py
	$(BIN)/python bench/bench_dpo.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
