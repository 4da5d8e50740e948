# Two commands on a fresh machine:
#   make demo   set up the virtual environment and run the default lab pipeline
#   make test   set up the virtual environment and run lint + the whole test suite (the browser test
#               too: Debian's Chromium is installed where it can be, as root with apt-get)
#
# torch: the CPU wheel (TORCH_SPEC) is installed only when the venv has no torch, so a GPU user
# can bring their own build:  python -m venv .venv && .venv/bin/pip install torch  (then make ...).

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
PYTEST_ARGS ?=
CHROMIUM ?= /usr/bin/chromium
APT_GET ?= apt-get

.PHONY: setup demo test lint browser bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/alignlab run recipes/lab.yaml

# ruff also keeps every line within line-length (E501): the formatting gate.
lint: setup
	$(BIN)/ruff check src tests bench

# The labelling app's browser test drives Debian's Chromium, never a downloaded browser. Without it
# the test skips (CI sets ALIGNLAB_REQUIRE_BROWSER=1 to make that a failure), so say so up front.
browser:
	@if [ -x "$(CHROMIUM)" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v $(APT_GET) >/dev/null 2>&1; then \
	  echo "installing Debian's Chromium for the browser test ($(APT_GET) install chromium)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  { $(APT_GET) update -qq && \
	    $(APT_GET) install -y -qq --no-install-recommends chromium chromium-driver >/dev/null; } || \
	  echo "could not install Chromium with $(APT_GET): the browser test will be skipped"; \
	else \
	  echo "no Chromium at $(CHROMIUM), and installing it needs root and $(APT_GET):" \
	       "the browser test will be skipped (install Debian's chromium package to run it)"; \
	fi

test: lint browser
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[bench]"
	$(BIN)/python bench/bench_sft.py
	$(BIN)/python bench/bench_dpo.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
