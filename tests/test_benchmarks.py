"""The benchmark scripts: their pure helpers on hand-made inputs, and each script's --quick mode end to end
(in a subprocess, as a user runs it, shrunk further by flags so the whole file stays fast)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# `benchmarks` is a folder at the repository root, not an installed package.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import _common, grader_throughput, step_overhead  # noqa: E402
from benchmarks import small_scale_comparison as ssc  # noqa: E402


def run_script(name: str, args: list[str], cache: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PREFIX_RFT_CACHE=str(cache), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc


# ---------------------------------------------------------------------------- helpers, exact values
def test_mean_std_and_table():
    assert _common.mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert _common.mean_std([5.0]) == (5.0, 0.0)
    assert _common.median([3.0, 1.0, 2.0]) == 2.0
    assert (
        _common.format_table(["a", "b"], [["x", 0.5], [1, 2.0]])
        == "| a | b |\n|---|---|\n| x | 0.5 |\n| 1 | 2 |"
    )


def test_step_overhead_summary_skips_warmup_and_takes_ratio():
    def row(total, warmup=False):
        return {"total_s": total, "cpu_s": total, "generate_s": total / 2, "warmup": warmup}

    rows = {
        "prefix_rft": [row(9.0, True), row(2.0), row(4.0), row(3.0)],
        "grpo": [row(1.0, True), row(2.0), row(2.0), row(2.0)],
    }
    s = step_overhead.summarise(rows)
    assert s["prefix_rft"]["median_total_s"] == 3.0
    assert s["prefix_rft"]["min_total_s"] == 2.0
    assert s["prefix_rft"]["timed_steps"] == 3
    assert s["grpo"]["median_generate_s"] == 1.0
    assert s["ratio_prefix_rft_over_grpo"]["median_total_s"] == 1.5
    assert s["ratio_prefix_rft_over_grpo"]["min_total_s"] == 1.0


def test_grader_workloads_and_string_settled(tmp_path):
    items = [("s1", "a"), ("s2", "b"), ("s3", "c")]
    w = grader_throughput.workloads(items)
    assert w["matched"] == (["s1", "s2", "s3"], ["a", "b", "c"])
    assert w["mismatched"] == (["s1", "s2", "s3"], ["b", "c", "a"])
    texts = ["so \\boxed{ 1/2 }", "no box", "\\boxed{3}."]
    assert grader_throughput.string_settled(texts, ["1/2", "1", "$3$"]) == 2 / 3
    # Without the data folder: the synthetic task, said so in the source.
    rows, source = grader_throughput.load_items(tmp_path / "missing", "math500", 5)
    assert len(rows) == 5 and source.startswith("synthetic")
    assert all(sol.endswith(f"\\boxed{{{ans}}}") for sol, ans in rows)


def test_grader_reads_math500(shared_data):
    rows, source = grader_throughput.load_items(shared_data, "math500", None)
    assert len(rows) == 500 and source.endswith("math500.jsonl")
    assert rows[0][1] == "\\left( 3, \\frac{\\pi}{2} \\right)"


def test_comparison_overrides_split_the_budget_of_sft_then_rft(tmp_path):
    opts = ssc.options(ssc.parse_args(["--steps", "10", "--override", "trainer.learning_rate=1e-4"]))
    ov = ssc.run_overrides("sft_then_rft", [], 1, opts, tmp_path)
    assert "sft_trainer.max_steps=5" in ov
    assert [o for o in ov if o.startswith("trainer.max_steps=")][-1] == "trainer.max_steps=5"
    assert ov[-1] == "trainer.learning_rate=1e-4"  # the user's override comes last, so it wins
    assert "trainer.save_steps=5" in ov and "scheduler.decay_steps=10" in ov and "seed=1" in ov
    ov = ssc.run_overrides("prefix_rft", ["algorithm.prefix_update=none"], 0, opts, tmp_path)
    assert "trainer.max_steps=10" in ov and "algorithm.prefix_update=none" in ov
    assert not any(o.startswith("sft_trainer.max_steps") for o in ov)


def test_comparison_rejects_unknown_names():
    with pytest.raises(SystemExit, match="grpo"):
        ssc.options(ssc.parse_args(["--algorithms", "rft,grpo"]))
    with pytest.raises(SystemExit, match="update_some"):
        ssc.options(ssc.parse_args(["--ablations", "update_some"]))


def test_comparison_checkpoint_steps(tmp_path):
    def ckpt(path: Path) -> Path:
        path.mkdir(parents=True)
        (path / "config.json").write_text("{}")
        return path

    run = tmp_path / "two_stage"
    a, b = ckpt(run / "stage1_sft" / "checkpoint-2"), ckpt(run / "stage2_rl" / "checkpoint-2")
    (run / "stage2_rl" / "checkpoint-1").mkdir(parents=True)  # no config.json: not a model, skipped
    assert ssc.checkpoints(run, "sft_then_rft", 4) == [(2, a), (4, b)]
    run = tmp_path / "one_stage"
    c = ckpt(run / "checkpoint-2")
    assert ssc.checkpoints(run, "prefix_rft", 5) == [(2, c), (5, run)]


def test_comparison_summary_and_curves():
    def row(variant, seed, hard, easy, group="algorithm"):
        points = [{"step": 0, "hard": 0.1, "easy": 0.5}, {"step": 4, "hard": hard, "easy": easy}]
        return {
            "variant": variant,
            "group": group,
            "seed": seed,
            "status": "ok",
            "points": points,
            "final": points[-1],
            "train_runtime_s": 10.0,
        }

    rows = [
        row("prefix_rft", 0, 0.25, 0.5),
        row("prefix_rft", 1, 0.75, 0.5),
        {"variant": "rft", "group": "algorithm", "seed": 0, "status": "failed", "error": "boom"},
    ]
    summary = ssc.summarise(rows)
    assert summary[0]["variant"] == "prefix_rft" and summary[0]["seeds"] == 2
    assert summary[0]["hard_mean"] == 0.5 and summary[0]["easy_std"] == 0.0
    assert round(summary[0]["hard_std"], 6) == 0.353553  # sample stdev of (0.25, 0.75)
    assert (summary[1]["variant"], summary[1]["seeds"], summary[1]["failed"]) == ("rft", 0, 1)
    assert ssc.curves(rows) == {"prefix_rft": {"step": [0, 4], "hard": [0.1, 0.5], "easy": [0.5, 0.5]}}


# ---------------------------------------------------------------------------- scripts, end to end
def test_step_overhead_quick(tmp_path, model_cache):
    out = tmp_path / "so"
    args = ["--quick", "--steps", "2", "--warmup", "1", "--batch", "4", "--num-generations", "2"]
    proc = run_script(
        "step_overhead", args + ["--max-completion-length", "12", "--out", str(out)], model_cache
    )
    data = json.loads((out / "step_overhead.json").read_text())
    assert (out / "step_overhead.png").stat().st_size > 0
    assert set(data["steps"]) == {"prefix_rft", "grpo"}
    for kind in ("prefix_rft", "grpo"):
        rows = data["steps"][kind]
        assert [r["warmup"] for r in rows] == [True, False, False]
        assert all(r["total_s"] > 0 and r["generate_s"] > 0 and r["backward_s"] > 0 for r in rows)
        assert data["summary"][kind]["timed_steps"] == 2
    assert sum(r["prefix_tokens_total"] for r in data["steps"]["prefix_rft"]) > 0  # hybrids happened
    assert all(r["prefix_tokens_total"] == 0 for r in data["steps"]["grpo"])
    assert data["summary"]["ratio_prefix_rft_over_grpo"]["median_total_s"] > 0
    assert "ratio PRFT/GRPO" in proc.stdout


def test_grader_throughput_quick(tmp_path, model_cache):
    out = tmp_path / "gt"
    args = ["--quick", "--limit", "12", "--workers", "1,2", "--timeout", "1", "--out", str(out)]
    proc = run_script("grader_throughput", args, model_cache)
    data = json.loads((out / "grader_throughput.json").read_text())
    assert (out / "grader_throughput.png").stat().st_size > 0
    assert [(r["workload"], r["workers"]) for r in data["throughput"]] == [
        ("matched", 1),
        ("matched", 2),
        ("mismatched", 1),
        ("mismatched", 2),
    ]
    assert all(r["items"] == 12 and r["items_per_s"] > 0 for r in data["throughput"])
    [patho] = data["pathological"]
    assert patho["completion"] == "\\boxed{9^{9^{9^{9}}}}" and patho["score"] == 0.0
    assert patho["next_item_score"] == 1.0  # the grader still works after the pathological item
    assert "items/s" in proc.stdout


def test_small_scale_comparison_quick_and_resume(tmp_path, model_cache):
    """The random tiny model and short lengths keep this fast; the second call must reuse every run."""
    out = tmp_path / "cmp"
    args = ["--quick", "--model", "builtin:tiny", "--algorithms", "sft_then_rft,prefix_rft",
            "--ablations", "update_none", "--steps", "2", "--eval-problems", "3", "--eval-samples", "2",
            "--eval-max-new-tokens", "12", "--override", "trainer.max_completion_length=12",
            "--override", "data.synthetic.num_train=32", "--threads", "1", "--out", str(out)]  # fmt: skip
    run_script("small_scale_comparison", args, model_cache)
    data = json.loads((out / "small_scale_comparison.json").read_text())
    assert (out / "small_scale_comparison.png").stat().st_size > 0
    assert [s["variant"] for s in data["summary"]] == ["base", "sft_then_rft", "prefix_rft", "update_none"]
    assert all(s["seeds"] == 1 and s["failed"] == 0 for s in data["summary"])
    for variant in ("sft_then_rft", "prefix_rft", "update_none"):
        # base, checkpoint (the SFT stage's for sft_then_rft), final
        assert data["curves"][variant]["step"] == [0, 1, 2]
        assert all(0.0 <= a <= 1.0 for a in data["curves"][variant]["hard"])
    assert (out / "runs" / "sft_then_rft" / "seed0" / "stage2_rl" / "checkpoint-1").is_dir()
    proc = run_script("small_scale_comparison", args, model_cache)
    again = json.loads((out / "small_scale_comparison.json").read_text())
    assert all(r.get("skipped_training") for r in again["runs"] if r["group"] != "base")
    assert again["summary"] == data["summary"]  # evaluations come from the cache too
    assert "cached" in proc.stdout
