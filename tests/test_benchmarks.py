"""The benchmark scripts: their pure helpers on hand-made inputs, and each script's --quick mode end to end
(in a subprocess, as a user runs it, shrunk further by flags so the whole file stays fast)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# `benchmarks` is a folder at the repository root, not an installed package.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import _common, grader_throughput, rl_gate, step_overhead, testbed  # noqa: E402
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


def test_comparison_overrides_split_the_budget_of_sft_then_rft():
    ov = ssc.variant_overrides("sft_then_rft", 10)
    assert "sft_trainer.max_steps=5" in ov
    assert [o for o in ov if o.startswith("trainer.max_steps=")][-1] == "trainer.max_steps=5"
    assert "scheduler.decay_steps=10" in ov and "algorithm=sft_then_rft" in ov
    assert f"sft_trainer.per_device_train_batch_size={ssc.PROMPTS_PER_STEP}" in ov
    ov = ssc.variant_overrides("update_none", 10)
    assert "trainer.max_steps=10" in ov and "algorithm.prefix_update=none" in ov
    assert not any(o.startswith("sft_trainer.max_steps") for o in ov)


def test_comparison_sft_sees_as_many_prompts_per_step_as_rl():
    from prefix_rft.config.compose import compose_config

    t = compose_config(["algorithm=rft"]).trainer
    assert t.per_device_train_batch_size // t.num_generations == ssc.PROMPTS_PER_STEP


def test_comparison_rejects_unknown_names():
    with pytest.raises(SystemExit, match="grpo"):
        ssc.main(["--variants", "rft,grpo"])


def test_mean_ci_and_paired_exact_values():
    mean, half = testbed.mean_ci([0.2, 0.4, 0.6])
    assert mean == pytest.approx(0.4) and half == pytest.approx(4.303 * 0.2 / 3**0.5)
    assert testbed.mean_ci([0.5])[0] == 0.5
    assert testbed.paired([0.0, 1.0], [1.0, 1.0]) == (0.5, 0.5)


def test_gate_rows_verdict():
    def run(seed, per_problem, greedy):
        ev = {"accuracy": sum(per_problem) / 4, "per_problem": per_problem}
        ev |= {"greedy/accuracy": sum(greedy) / 4, "greedy/per_problem": greedy, "process/faithful": 0.5}
        return {"spec": {"seed": seed}, "train_s": 1.0, "eval": {"3": ev}}

    base = run(0, [0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 1.0, 0.0])
    good = run(1, [1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0])
    noisy = run(2, [1.0, 0.0, 0.5, 0.5], [1.0, 0.0, 1.0, 0.0])
    rows, passed = rl_gate.gate_rows(base, [good, noisy])
    assert [r["pass"] for r in rows] == [True, False] and passed is False
    assert rows[0]["L3/t1"]["delta"] == pytest.approx(0.75)
    assert rl_gate.gate_rows(base, [good])[1] is True


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


def test_rl_gate_quick(tmp_path, model_cache):
    out = tmp_path / "gate"
    args = ["--quick", "--steps", "2", "--problems", "4", "--samples", "2", "--out", str(out)]
    proc = run_script("rl_gate", args, model_cache)
    data = json.loads((out / "rl_gate.json").read_text())
    assert (out / "rl_gate.png").stat().st_size > 0
    [row] = data["rows"]
    assert set(row) >= {"seed", "pass", "L3/greedy", "L3/t1", "L1/t1", "L4/t1"}
    assert row["L3/t1"]["before"] == data["base_eval"]["3"]["accuracy"]
    result = json.loads((out / "runs" / "rft" / "seed0" / "result.json").read_text())
    assert [p["step"] for p in result["reward_curve"]] == [1, 2]  # a real, logged RL run
    assert result["metrics"]["cost"]["total"]["rollouts"] == 2 * 16
    assert "gate PASSED" in proc.stdout or "gate FAILED" in proc.stdout


def test_small_scale_comparison_quick_and_resume(tmp_path, model_cache):
    """Two real runs and the base model; the second call must reuse every one of them."""
    out = tmp_path / "cmp"
    args = ["--quick", "--variants", "sft_then_rft,prefix_rft", "--steps", "2", "--problems", "4",
            "--samples", "2", "--out", str(out)]  # fmt: skip
    run_script("small_scale_comparison", args, model_cache)
    data = json.loads((out / "small_scale_comparison.json").read_text())
    assert (out / "small_scale_comparison.png").stat().st_size > 0
    assert [s["variant"] for s in data["summary"]] == ["base", "sft_then_rft", "prefix_rft"]
    prefix = data["summary"][2]
    assert prefix["cost"]["rollouts"] == 2 * 16 and prefix["cost"]["demo_tokens"] > 0
    assert data["summary"][1]["cost"]["demo_tokens"] > 0  # the SFT stage trained on demonstrations
    assert all(0.0 <= s["trained_t1"][0] <= 1.0 for s in data["summary"])
    assert (out / "runs" / "sft_then_rft" / "seed0" / "stage1_sft").is_dir()
    proc = run_script("small_scale_comparison", args, model_cache)
    assert "3 jobs, 3 already done" in proc.stdout
    again = json.loads((out / "small_scale_comparison.json").read_text())
    assert again["summary"] == data["summary"]


def test_guided_solve_rate_quick(tmp_path, model_cache):
    out = tmp_path / "guided"
    proc = run_script("guided_solve_rate", ["--quick", "--problems", "4", "--out", str(out)], model_cache)
    data = json.loads((out / "guided_solve_rate.json").read_text())
    assert (out / "guided_solve_rate.png").stat().st_size > 0
    assert [r["ratio"] for r in data["rows"]] == [0.0, 0.5, 0.95]
    tokens = [r["prefix_tokens"] for r in data["rows"]]
    assert tokens[0] == 0.0 < tokens[1] < tokens[2]  # longer ratios cut longer prefixes
    assert all(0.0 <= r["solve_rate"] <= r["solved_once"] <= 1.0 for r in data["rows"])
    assert "solve rate" in proc.stdout


def test_quick_runs_write_outside_the_committed_results(tmp_path, monkeypatch):
    """Every benchmark's --quick without --out goes to the quick folder; the committed results stay as they are."""
    monkeypatch.setattr(_common, "RESULTS_ROOT", tmp_path / "results")
    monkeypatch.setattr(_common, "QUICK_ROOT", tmp_path / "quick")
    assert _common.output_dir("x", None, quick=True) == tmp_path / "quick" / "x"
    assert _common.output_dir("x", None) == tmp_path / "results" / "x"
    assert _common.output_dir("x", str(tmp_path / "mine"), quick=True) == tmp_path / "mine"
    # The real script, in process: its files land in the quick folder only.
    grader_throughput.main(["--quick", "--limit", "2", "--workers", "1", "--pathological", "0"])
    assert (tmp_path / "quick" / "grader_throughput" / "grader_throughput.json").is_file()
    assert not (tmp_path / "results" / "grader_throughput").exists()
    # Each script that writes results hands its --quick flag to output_dir.
    scripts = sorted(p for p in (REPO_ROOT / "benchmarks").glob("*.py") if "ns.out" in p.read_text())
    assert len(scripts) >= 7
    for path in scripts:
        assert re.search(r"output_dir\([^()]*(\([^()]*\))?[^()]*, ns\.out, ns\.quick\)", path.read_text()), (
            path.name
        )
