"""``prefix-rft-train`` end to end: a Hydra sweep over every algorithm on the tiny model, each into its own
run folder with its config, logs, metrics and a changed model; config errors exit with a clear message."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from prefix_rft.algorithms import ALGORITHMS as REGISTRY

# Every registered algorithm, each checked by what its registry entry says it logs and trains.
ALGORITHMS = list(REGISTRY)
# What each kind of stage logs (TRL's SFTTrainer, and GRPOTrainer's reward), besides an algorithm's own.
STAGE_METRICS = {"sft": "mean_token_accuracy", "rl": "rewards/accuracy/mean"}


def cli() -> list[str]:
    exe = shutil.which("prefix-rft-train", path=os.path.dirname(sys.executable))
    return [exe] if exe else [sys.executable, "-m", "prefix_rft.cli.train"]


def small_run_overrides() -> list[str]:
    return [
        # The warm-started tiny model on easy problems: rewards differ within groups, so RL has a gradient.
        "model.name_or_path=builtin:tiny-warm",
        "data.synthetic.train_min_steps=2",
        "data.synthetic.train_max_steps=3",
        "trainer.max_steps=2",
        "trainer.per_device_train_batch_size=8",
        "trainer.num_generations=4",
        "trainer.max_completion_length=48",
        "trainer.save_steps=1000",
        "trainer.learning_rate=1e-3",
        "sft_trainer.learning_rate=1e-3",
        "data.synthetic.num_train=16",
        "heldout_eval.enabled=false",
        "algorithm.sft_buffer_size=2",  # ReLIFT: every group of the random model fails, 2 prompts per step
        "algorithm.mu_warmup_steps=0",  # CHORD: mu > 0 from the first of the 2 steps (default warm-up: 200)
        "hydra.sweep.subdir=${algorithm.name}",
    ]


@pytest.fixture(scope="module")
def warm_model_dir(model_cache) -> Path:
    from prefix_rft.models.tiny import ensure_tiny_model

    return ensure_tiny_model("tiny-warm", cache_dir=model_cache)


@pytest.fixture(scope="module")
def sweep(warm_model_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sweep")
    cmd = (
        cli() + ["-m", "algorithm=" + ",".join(ALGORITHMS), f"hydra.sweep.dir={out}"] + small_run_overrides()
    )
    env = dict(os.environ)  # PREFIX_RFT_CACHE points at the session cache (model_cache fixture)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return out


def initial_weights(model_dir) -> dict[str, torch.Tensor]:
    return load_file(str(Path(model_dir) / "model.safetensors"))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_sweep_runs_every_algorithm_into_its_own_folder(sweep, warm_model_dir, algorithm):
    run = sweep / algorithm
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["algorithm"]["name"] == algorithm
    assert config["hydra"]["run"]["dir"] == str(run)  # the saved config reruns into this folder
    assert config["trainer"]["max_steps"] == 2  # resolved, command-line value

    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["algorithm"] == algorithm and metrics["global_step"] == 2
    entry = REGISTRY[algorithm]
    logged = logged_keys(run)
    for key in (STAGE_METRICS[entry.stages[-1]], *entry.metrics):
        assert key in logged, f"{algorithm} did not log {key}"

    check_cost(metrics["cost"], algorithm)

    final = load_file(str(run / "model.safetensors"))
    start = initial_weights(warm_model_dir)
    assert any(not torch.equal(final[k], start[k]) for k in start), f"{algorithm} left the weights unchanged"

    if len(entry.stages) > 1:  # each stage in its own folder, each complete, each logging its kind's metric
        assert [s["stage"] for s in metrics["stages"]] == list(entry.stages)
        for i, kind in enumerate(entry.stages, 1):
            folder = run / f"stage{i}_{kind}"
            assert (folder / "model.safetensors").is_file()
            assert STAGE_METRICS[kind] in logged_keys(folder)
            if i < len(entry.stages):
                assert (folder / "stage_complete.json").is_file()


def logged_keys(folder: Path) -> set[str]:
    """Every key of the rows of ``folder/log_history.jsonl``."""
    return {k for line in (folder / "log_history.jsonl").read_text().splitlines() for k in json.loads(line)}


# The sweep's runs: 2 steps x 2 prompts, groups of 4 rows.
STEPS_X_PROMPTS, GROUP = 2 * 2, 4


def check_cost(cost: dict, algorithm: str) -> None:
    """The cost block of metrics.json: exact rollout counts, token kinds that add up, FLOPs, time, no GPU;
    what each algorithm trains and how its groups are made come from its registry entry."""
    entry = REGISTRY[algorithm]
    assert [s["stage"] for s in cost["stages"]] == list(entry.stages)
    total = cost["total"]
    # Whole demonstrations take the place of rollouts in their groups (LUFFY's off-policy rows).
    rollouts = (GROUP - entry.demonstrations_per_group) * STEPS_X_PROMPTS if "rl" in entry.stages else 0
    assert total["rollouts"] == rollouts
    assert total["demonstration_rows"] == entry.demonstrations_per_group * STEPS_X_PROMPTS
    hybrids = GROUP if entry.hybrids_per_group == "all" else entry.hybrids_per_group
    assert total["hybrid_rollouts"] == hybrids * STEPS_X_PROMPTS
    trained = total["tokens_trained"]
    assert set(entry.trains) | set(entry.trains_some) <= set(trained) - {"total"}
    assert trained["total"] == sum(trained[k] for k in ("on_policy", "prefix", "full_demonstration", "sft"))
    for kind in ("on_policy", "prefix", "full_demonstration", "sft"):
        if kind in entry.trains:
            assert trained[kind] > 0, f"{algorithm} trained no {kind} tokens"
        elif kind not in entry.trains_some:  # e.g. ReLIFT's SFT: only on the questions its rollouts fail
            assert trained[kind] == 0, f"{algorithm} trained {kind} tokens"
    if "on_policy" in entry.trains:
        assert 0 < total["tokens_generated"] == trained["on_policy"]
    else:  # not trained at all (SFT), or only some (HPT: the rollouts of SFT-gated questions are not)
        assert trained["on_policy"] <= total["tokens_generated"]
        assert (total["tokens_generated"] > 0) == ("rl" in entry.stages)
    assert total["flops"]["total"] > 0 and total["flops"]["total"] == sum(
        s["flops"]["total"] for s in cost["stages"]
    )
    assert all(s["parameters"] > 0 for s in cost["stages"])
    assert 0 < total["wall_seconds"]["train"] <= total["wall_seconds"]["total"]
    assert total["gpu_hours"] == {"train": None, "total": None} and total["num_gpus"] == 0  # CPU


def test_rerunning_a_finished_sft_stage_skips_it(sweep, warm_model_dir):
    """sft_then_rft is resumable per stage: with stage 1 complete, only the RL stage trains further."""
    run = sweep / "sft_then_rft"
    marker = run / "stage1_sft" / "stage_complete.json"
    before = marker.read_text()
    sft_weights = (run / "stage1_sft" / "model.safetensors").stat().st_mtime_ns
    cmd = cli() + ["algorithm=sft_then_rft", f"hydra.run.dir={run}", "resume_from_checkpoint=latest"]
    cmd += [o for o in small_run_overrides() if not o.startswith(("hydra.sweep", "trainer.max_steps"))]
    cmd += ["trainer.max_steps=3"]  # the finished run is extended by one RL step
    env = dict(os.environ)  # PREFIX_RFT_CACHE points at the session cache (model_cache fixture)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert marker.read_text() == before
    assert (run / "stage1_sft" / "model.safetensors").stat().st_mtime_ns == sft_weights
    assert json.loads((run / "metrics.json").read_text())["global_step"] == 3
    # The skipped stage's cost comes from its marker, so the rerun still reports it.
    cost = json.loads((run / "metrics.json").read_text())["cost"]
    assert cost["stages"][0] == json.loads(before)["cost"]
    assert cost["total"]["tokens_trained"]["sft"] == cost["stages"][0]["tokens_trained"]["sft"] > 0


def test_config_error_exits_2_and_names_the_key(tmp_path):
    proc = subprocess.run(
        cli() + ["algorithm.num_prefixed=99", f"hydra.run.dir={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert "algorithm.num_prefixed" in proc.stderr and "num_generations" in proc.stderr
    assert not (tmp_path / "model.safetensors").exists()
