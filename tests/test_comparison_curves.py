"""The comparison's model option and held-out learning curves (benchmarks/testbed.py,
benchmarks/small_scale_comparison.py): specs, overrides and the curve read from saved checkpoints."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import small_scale_comparison as ssc  # noqa: E402
from benchmarks import testbed  # noqa: E402


def test_default_model_spec_is_unchanged_and_another_model_is_named():
    base = testbed.job_spec("rft", 0, ["algorithm=rft"], ["data.x=1"], {4: 10}, 4)
    assert set(base) == {
        "name",
        "seed",
        "overrides",
        "train_data",
        "levels",
        "samples",
    }  # finished runs resume
    assert not any(o.startswith("model.name_or_path") for o in base["overrides"])
    curve = {"every": 20, "sft_every": 250, "level": 4, "problems": 100, "samples": 4}
    fork = testbed.job_spec("rft", 0, ["algorithm=rft"], ["data.x=1"], {4: 10}, 4, "builtin:tiny-fork", curve)
    assert fork["model"] == "builtin:tiny-fork" and fork["curve"] == curve
    assert fork["overrides"][len(testbed.BASE_OVERRIDES)] == "model.name_or_path=builtin:tiny-fork"
    assert "trainer.save_steps=20" in fork["overrides"] and "sft_trainer.save_steps=250" in fork["overrides"]
    assert "trainer.save_total_limit=null" in fork["overrides"]
    untrained = testbed.job_spec("base", 0, None, [], {4: 10}, 4, "builtin:tiny-fork", curve)
    assert untrained["overrides"] is None and "curve" not in untrained


def test_results_folder_and_curve_points_per_variant():
    assert ssc.results_name(testbed.MODEL) == "small_scale_comparison"
    assert ssc.results_name("builtin:tiny-fork") == "small_scale_comparison_tiny_fork"
    sft_3ep = ssc.variant_overrides("sft_3ep", 120)
    assert ssc.curve_spec(sft_3ep, 20, 100, 4)["sft_every"] == 250  # 1,500 SFT steps at 6 points
    assert ssc.curve_spec(ssc.variant_overrides("rft", 120), 20, 100, 4)["sft_every"] == 20
    assert set(ssc.FORK_PLAN) <= set(ssc.VARIANTS)


def _checkpoint(model_dir: Path, folder: Path, step: int, rollouts: int, fb_tokens: int, sft_tokens: int = 0):
    shutil.copytree(model_dir, folder)
    counters = {"rollouts": rollouts, "forward_backward_tokens": fb_tokens, "trained_sft_tokens": sft_tokens}
    state = {"global_step": step, "stateful_callbacks": {"CostState": {"attributes": {"counters": counters}}}}
    (folder / "trainer_state.json").write_text(json.dumps(state))


def test_learning_curve_reads_checkpoints_in_order_and_carries_cost(tmp_path, tiny_model_dir):
    """A two-stage run (SFT then RL): points come stage by stage in step order, the RL stage's cost adds to the
    SFT stage's, FLOPs follow the package's formula (6 N per trained token), and each checkpoint is deleted."""
    run = tmp_path / "run"
    _checkpoint(tiny_model_dir, run / "stage1_sft" / "checkpoint-10", 10, 0, 1000, sft_tokens=300)
    _checkpoint(tiny_model_dir, run / "stage1_sft" / "checkpoint-5", 5, 0, 500, sft_tokens=150)
    _checkpoint(tiny_model_dir, run / "stage2_rl" / "checkpoint-4", 4, 64, 2000)
    curve = {"every": 4, "sft_every": 5, "level": 4, "problems": 3, "samples": 1}
    points = testbed.learning_curve(run, "builtin:tiny", curve, [])
    assert [(p["stage"], p["step"]) for p in points] == [("sft", 5), ("sft", 10), ("rl", 4)]
    from transformers import AutoModelForCausalLM

    n = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(tiny_model_dir).parameters())
    assert points[0]["tflops"] == 6 * n * 500 / 1e12 and points[0]["demo_tokens"] == 150
    assert points[2]["rollouts"] == 64 and points[2]["demo_tokens"] == 300
    assert abs(points[2]["tflops"] - 6 * n * (1000 + 2000) / 1e12) < 1e-12
    assert all(0.0 <= p["faithful_accuracy"] <= p["accuracy"] <= 1.0 for p in points)
    assert not list(run.rglob("checkpoint-*"))


def _result(name: str, seed: int, faithful: float) -> dict:
    levels = {}
    for lv in ("1", "2", "3", "4"):
        levels[lv] = {
            "accuracy": faithful + 0.1,
            "greedy/accuracy": faithful + 0.2,
            "process/faithful": faithful,
            "process/right_answer_wrong_working": 0.1,
            "chance/best_constant": 0.04,
            "chance/last_number": 0.0,
        }
    return {
        "spec": {"name": name, "seed": seed},
        "eval": levels,
        "train_s": 10.0,
        "metrics": {
            "cost": {"total": {"rollouts": 64, "flops": {"total": 2e12}, "tokens_trained": {"prefix": 5}}}
        },
        "heldout_curve": [
            {
                "step": 20,
                "rollouts": 32,
                "tflops": 1.0,
                "accuracy": faithful,
                "faithful_accuracy": faithful,
                "stage": "rl",
            }
        ],
    }


def test_partial_plans_are_summarised_with_the_seeds_each_variant_has(tmp_path):
    """3 seeds for one variant, 1 for another: each row is the mean over its own seeds (no interval for 1)."""
    import json

    from benchmarks.summarise_runs import main as summarise_runs

    runs = {"base": [(0, 0.02)], "prefix_rft": [(0, 0.1), (1, 0.2), (2, 0.3)], "chord": [(0, 0.05)]}
    for name, seeds in runs.items():
        for seed, faithful in seeds:
            folder = tmp_path / "runs" / name / f"seed{seed}"
            folder.mkdir(parents=True)
            (folder / "result.json").write_text(json.dumps(_result(name, seed, faithful)))
    result = summarise_runs([str(tmp_path)])
    rows = {r["variant"]: r for r in result["summary"]}
    assert rows["prefix_rft"]["seeds"] == [0, 1, 2] and rows["chord"]["seeds"] == [0]
    mean, half = rows["prefix_rft"]["trained_faithful"]
    assert abs(mean - 0.2) < 1e-12 and abs(half - 4.303 * 0.1 / 3**0.5) < 1e-3  # t(0.975, 2 df) = 4.303
    assert (
        rows["chord"]["trained_faithful"][0] == 0.05
        and rows["chord"]["trained_faithful"][1] != rows["chord"]["trained_faithful"][1]
    )
    assert abs(result["curves"]["prefix_rft"][0]["faithful_accuracy"] - 0.2) < 1e-12
    assert (tmp_path / "summary_partial.json").is_file() and (tmp_path / "learning_curves.png").is_file()


def test_curve_table_groups_variants_by_checkpoint_grid():
    """RL variants sharing checkpoints share a table; SFT to convergence (other steps) gets its own; a cell is
    mean ± 95% t over seeds, or the mean alone for one seed."""

    def pts(grid, values, cis):
        return [
            {"stage": st, "step": step, "rollouts": ro, "faithful_accuracy": v, "faithful_ci": c}
            for (st, step, ro), v, c in zip(grid, values, cis)
        ]

    rl = [("rl", 20, 1280), ("rl", 40, 2560)]
    sft = [("sft", 250, 0)]
    nan = float("nan")
    curves = {
        "rft": pts(rl, [0.05, 0.1], [0.01, 0.02]),
        "sft_3ep": pts(sft, [0.5], [nan]),
        "prefix_rft": pts(rl, [0.0625, 0.2], [0.0, 0.125]),
    }
    assert ssc.curve_table(curves) == (
        "| variant | rl 20 (1,280) | rl 40 (2,560) |\n|---|---|---|\n"
        "| rft | 0.050 ± 0.010 | 0.100 ± 0.020 |\n| prefix_rft | 0.062 ± 0.000 | 0.200 ± 0.125 |\n\n"
        "| variant | sft 250 (0) |\n|---|---|\n| sft_3ep | 0.500 |"
    )


def test_one_stage_sft_checkpoints_are_labelled_sft():
    """A one-stage run keeps its checkpoints in the run folder, so its stage comes from its algorithm; results
    recorded before that (every one-stage point "rl") are relabelled from the spec when summarised."""
    assert testbed.single_stage_kind(["data.x=1", "algorithm=sft"]) == "sft"
    assert testbed.single_stage_kind(["algorithm=rft"]) == "rl"
    assert testbed.single_stage_kind(["algorithm=sft_then_rft"]) == "rl"  # two stages: folders say which
    assert testbed.single_stage_kind(None) == "rl"
    old = _result("sft_3ep", 0, 0.5)
    old["spec"]["overrides"] = ssc.variant_overrides("sft_3ep", 120)
    rl = _result("rft", 0, 0.1)
    rl["spec"]["overrides"] = ssc.variant_overrides("rft", 120)
    curves = ssc.curve_summary([old, rl])
    assert curves["sft_3ep"][0]["stage"] == "sft" and curves["rft"][0]["stage"] == "rl"
