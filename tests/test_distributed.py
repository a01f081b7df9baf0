"""Two CPU processes (torchrun, gloo) agree on Prefix-RFT's entropy keep-threshold.

Each process holds different prefix tokens, so a threshold computed from local tokens alone would differ
between them; the trainer gathers the prefix entropies of all processes, so both must use the same value.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from prefix_rft.losses import top_fraction_threshold

SCRIPT = Path(__file__).resolve().parent / "dist" / "two_process_prefix_rft.py"
REPO_ROOT = Path(__file__).resolve().parents[1]


def test_two_processes_use_the_same_entropy_threshold(tiny_model_dir, model_cache, tmp_path):
    env = dict(os.environ, PREFIX_RFT_CACHE=str(model_cache), OMP_NUM_THREADS="1")
    # torchrun starts the two ranks (gloo on CPU); accelerate, inside TRL, picks the process group up from
    # its environment. (`accelerate launch --cpu` runs one process: multi-CPU needs an accelerate config.)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",  # a free local port: other test runs on this machine may be using one
        "--nproc_per_node",
        "2",
        str(SCRIPT),
        str(tmp_path),
        str(tiny_model_dir),
    ]
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]

    runs = [json.loads((tmp_path / f"thresholds_rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in runs] == [2, 2]
    assert [r["global_step"] for r in runs] == [2, 2]
    calls = [r["calls"] for r in runs]
    assert calls[0] and len(calls[0]) == len(calls[1])
    thresholds = [[c["threshold"] for c in rank_calls] for rank_calls in calls]
    assert all(t is not None for t in thresholds[0]), thresholds
    assert thresholds[0] == thresholds[1]
    assert [c["step"] for c in calls[0]] == [c["step"] for c in calls[1]]
    # Both processes had prefix tokens of their own, and they were different ones: a local threshold
    # would have disagreed at least once, so the equality above is the gather at work.
    assert all(c["num_local_prefix_tokens"] > 0 for rank_calls in calls for c in rank_calls)
    local = [[c["local_threshold"] for c in rank_calls] for rank_calls in calls]
    assert local[0] != local[1]
    # And the shared value is the top-k% threshold over the prefix tokens of both processes together.
    for c0, c1 in zip(*calls):
        union = torch.tensor(c0["entropies"] + c1["entropies"])
        expected = top_fraction_threshold(union, c0["keep_fraction"], largest=c0["largest"])
        assert c0["threshold"] == float(expected)

    # Cost counters are totals over both processes, the same on each: 2 steps x 2 processes x one group of 4
    # (one hybrid each), and the prefix tokens of both processes' losses.
    costs = [r["cost"] for r in runs]
    for c in costs:
        c.pop("train_seconds")
    assert costs[0] == costs[1]
    assert costs[0]["rollouts"] == 16 and costs[0]["hybrid_rollouts"] == 4
    assert costs[0]["trained_prefix_tokens"] == sum(c["num_local_prefix_tokens"] for rc in calls for c in rc)


def test_cli_under_two_processes_writes_one_run_folder(tiny_model_dir, model_cache, tmp_path):
    """`prefix-rft-train` launched on two processes: one timestamped run folder, one config, both ranks train."""
    env = dict(os.environ, PREFIX_RFT_CACHE=str(model_cache), OMP_NUM_THREADS="1")
    env.pop("PREFIX_RFT_RUN_TIME", None)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "prefix_rft.cli.train",
        "model.name_or_path=builtin:tiny", "trainer.max_steps=1", "trainer.per_device_train_batch_size=4",
        "trainer.num_generations=4", "trainer.max_completion_length=16", "data.synthetic.num_train=8",
        "heldout_eval.enabled=false", "trainer.save_steps=1000",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    runs = list((tmp_path / "outputs" / "prefix_rft" / "tiny-synthetic").iterdir())
    assert len(runs) == 1, runs  # not one folder per process
    run = runs[0]
    assert (run / "config.yaml").is_file() and (run / "metrics.json").is_file()
    assert json.loads((run / "metrics.json").read_text())["global_step"] == 1
    assert result.stdout.count("run folder:") == 1  # only process 0 reports
    assert (
        result.stdout.count("] done: 1 steps in") == 1
    )  # and logs (the progress line of the end of training)
    # The processes trained together: one step consumed 2 of the 8 prompts (1 group of 4 rows per process).
    first = json.loads((run / "log_history.jsonl").read_text().splitlines()[0])
    assert first["epoch"] == 0.25

    # metrics.json's cost is the total over both processes: one step x 2 processes x one group of 4.
    cost = json.loads((run / "metrics.json").read_text())["cost"]["total"]
    assert cost["rollouts"] == 8 and cost["hybrid_rollouts"] == 2
