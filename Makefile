# Two commands a new user needs: `make run` (the default job on CPU) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
ARGS ?=

.PHONY: install run test test-fast lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# torch first and pinned, then the project under a constraint so no dependency can pull another torch.
$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install -q torch==$(TORCH_VERSION)
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]"
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/prefix-rft-train $(ARGS)

test: install
	$(BIN)/python -m pytest -q tests $(ARGS)

# The inner loop: every test not marked slow (end-to-end runs, subprocess commands, all recipes).
test-fast: install
	$(BIN)/python -m pytest -q -m "not slow" tests $(ARGS)

lint: install
	$(BIN)/ruff check prefix_rft tests benchmarks
	$(BIN)/ruff format --check prefix_rft tests benchmarks

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache
