"""``prefix-rft-eval backend=vllm`` on the tiny model: greedy samples identical to the transformers backend,
and an evaluation killed midway resumes to exactly the samples of an uninterrupted run (vLLM seeds each
sample from its key, so batching and restarts do not change what is drawn)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from prefix_rft.eval.runner import CRASH_ENV
from tests.scale.vllm.conftest import lane_env

ITEMS = 8


def eval_cli(out: Path, *overrides: str, crash_after: int | None = None) -> subprocess.CompletedProcess:
    env = lane_env()
    if crash_after is not None:
        env[CRASH_ENV] = str(crash_after)
    args = [
        "model_path=builtin:tiny-warm",
        "benchmarks=[synthetic]",
        f"synthetic.num={ITEMS}",
        "max_new_tokens=48",
        "batch_size=4",
        "progress=false",
        "dtype=float32",
        f"output_dir={out}",
        *overrides,
    ]
    cmd = [sys.executable, "-m", "prefix_rft.cli.evaluate", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def rows(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines() if x.strip()]


def test_greedy_vllm_samples_equal_transformers(tmp_path):
    greedy = ("samples=1", "temperature=0")
    hf = eval_cli(tmp_path / "hf", "backend=transformers", *greedy)
    assert hf.returncode == 0, hf.stderr[-3000:]
    engine = eval_cli(tmp_path / "vllm", "backend=vllm", "vllm.max_model_len=512", *greedy)
    assert engine.returncode == 0, engine.stderr[-3000:]
    a, b = rows(tmp_path / "hf"), rows(tmp_path / "vllm")
    assert len(a) == len(b) == ITEMS
    # float32 on both sides: the greedy token sequences (and so the texts) are identical
    assert [r["completion"] for r in a] == [r["completion"] for r in b]
    assert [r["correct"] for r in a] == [r["correct"] for r in b]


@pytest.fixture(scope="module")
def sampled_reference(tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("reference")
    done = eval_cli(out, "backend=vllm", "vllm.max_model_len=512", "samples=2", "temperature=1.0")
    assert done.returncode == 0, done.stderr[-3000:]
    return rows(out)


def test_killed_vllm_evaluation_resumes_exactly(tmp_path, sampled_reference):
    out = tmp_path / "run"
    sampled = ("backend=vllm", "vllm.max_model_len=512", "samples=2", "temperature=1.0")
    killed = eval_cli(out, *sampled, crash_after=4)  # SIGKILL after the first batch of 4 was written
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    first = rows(out)
    assert len(first) == 4
    resumed = eval_cli(out, *sampled)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"4/{2 * ITEMS} samples already" in resumed.stdout
    final = rows(out)
    assert final[:4] == first  # kept, not regenerated
    key = lambda r: (r["id"], r["sample"])  # noqa: E731
    assert sorted(final, key=key) == sorted(sampled_reference, key=key)
