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

ALGORITHMS = [
    "sft",
    "rft",
    "sft_then_rft",
    "rl_sft_loss",
    "luffy",
    "relift",
    "prefix_rft",
    "chord",
    "srft",
    "hpt",
    "prefix_in_prompt",
]
# What each algorithm logs that the others do not (besides the loss).
SPECIFIC_METRICS = {
    "sft": ["mean_token_accuracy"],
    "rft": ["rewards/accuracy/mean"],
    "sft_then_rft": ["rewards/accuracy/mean"],
    "rl_sft_loss": ["sft/demo_nll"],
    "luffy": ["off_policy/shaping_weight_mean", "prefix/full_demo_fraction"],
    "relift": ["relift/buffer_size", "relift/failed_prompt_fraction"],  # SFT steps: test_baselines.py
    "prefix_rft": ["prefix/ratio_mean", "prefix/update_fraction", "entropy/prefix"],
    "chord": ["chord/mu", "chord/phi_mean", "sft/demo_nll"],
    "srft": ["srft/sft_weight_mean", "srft/demo_nll", "off_policy/shaping_weight_mean"],
    "hpt": ["hpt/sft_fraction", "hpt/solved_mean"],
    "prefix_in_prompt": ["prefix_in_prompt/guided_fraction", "prefix_in_prompt/prefix_tokens"],
}


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
    history = [json.loads(line) for line in (run / "log_history.jsonl").read_text().splitlines()]
    logged = {k for row in history for k in row}
    for key in SPECIFIC_METRICS[algorithm]:
        assert key in logged, f"{algorithm} did not log {key}"

    check_cost(metrics["cost"], algorithm)

    final = load_file(str(run / "model.safetensors"))
    start = initial_weights(warm_model_dir)
    assert any(not torch.equal(final[k], start[k]) for k in start), f"{algorithm} left the weights unchanged"

    if algorithm == "sft_then_rft":
        stages = metrics["stages"]
        assert [s["stage"] for s in stages] == ["sft", "rl"]
        assert (run / "stage1_sft" / "stage_complete.json").is_file()
        assert (run / "stage1_sft" / "model.safetensors").is_file()
        sft_logged = {
            k
            for line in (run / "stage1_sft" / "log_history.jsonl").read_text().splitlines()
            for k in json.loads(line)
        }
        assert "mean_token_accuracy" in sft_logged
        assert (run / "stage2_rl" / "model.safetensors").is_file()


# Rollouts of the sweep's runs: 2 steps x 2 prompts x 4 rollouts, less LUFFY's (and SRFT's) whole-demonstration rows.
ROLLOUTS = {"sft": 0, "luffy": 2 * 2 * 3, "srft": 2 * 2 * 3}
# Algorithms with whole demonstrations in their groups (LUFFY's off-policy rows).
WHOLE_DEMONSTRATIONS = ("luffy", "srft")


def check_cost(cost: dict, algorithm: str) -> None:
    """The cost block of metrics.json: exact rollout counts, token kinds that add up, FLOPs, time, no GPU."""
    stages = ["sft", "rl"] if algorithm == "sft_then_rft" else ["sft"] if algorithm == "sft" else ["rl"]
    assert [s["stage"] for s in cost["stages"]] == stages
    total = cost["total"]
    assert total["rollouts"] == ROLLOUTS.get(algorithm, 16)
    trained = total["tokens_trained"]
    assert trained["total"] == sum(trained[k] for k in ("on_policy", "prefix", "full_demonstration", "sft"))
    if algorithm in ("sft", "sft_then_rft", "rl_sft_loss", "chord", "srft"):
        assert trained["sft"] > 0
    elif algorithm not in ("relift", "hpt"):  # ReLIFT, HPT: SFT only on questions their rollouts fail
        assert trained["sft"] == 0
    assert (trained["prefix"] > 0) == (algorithm == "prefix_rft")
    assert (trained["full_demonstration"] > 0) == (algorithm in WHOLE_DEMONSTRATIONS)
    assert total["demonstration_rows"] == (4 if algorithm in WHOLE_DEMONSTRATIONS else 0)
    # Prefix-RFT: one hybrid per group; prefix_in_prompt (guide=all): every rollout continues a prompt prefix.
    assert total["hybrid_rollouts"] == {"prefix_rft": 4, "prefix_in_prompt": 16}.get(algorithm, 0)
    if algorithm == "hpt":  # the rollouts of SFT-gated questions are sampled but not trained
        assert 0 < trained["on_policy"] <= total["tokens_generated"]
    elif algorithm != "sft":
        assert 0 < total["tokens_generated"] == trained["on_policy"]
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
