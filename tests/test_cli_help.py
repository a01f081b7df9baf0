"""First contact with the commands: ``--help`` pages, ``--cfg job`` without importing TRL, compare's
header and chart."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from prefix_rft.algorithms import ALGORITHMS
from prefix_rft.config.compose import conf_dir


def console(name: str) -> list[str]:
    exe = shutil.which(name, path=os.path.dirname(sys.executable))
    module = {"prefix-rft-train": "prefix_rft.cli.train", "prefix-rft-eval": "prefix_rft.cli.evaluate"}[name]
    return [exe] if exe else [sys.executable, "-m", module]


def test_train_help_is_short_and_lists_groups_knobs_and_trl_docs():
    proc = subprocess.run(
        console("prefix-rft-train") + ["--help"], capture_output=True, text=True, timeout=120
    )
    text = proc.stdout
    assert proc.returncode == 0 and len(text.splitlines()) < 70
    assert "???" not in text and "_dr_grpo" not in text and "algorithm_registry" not in text
    # Every registered algorithm, the default job's starred.
    defaults = yaml.safe_load((conf_dir() / "config.yaml").read_text())["defaults"]
    default = next(d["algorithm"] for d in defaults if isinstance(d, dict) and "algorithm" in d)
    listed = ", ".join(name + "*" * (name == default) for name in sorted(ALGORITHMS))
    assert f"algorithm   {listed}\n" in text
    assert "model       llama-3.1-8b, qwen2.5-math-1.5b, qwen2.5-math-7b, tiny*" in text
    for key in ("trainer.max_steps=N", "trainer.learning_rate=X", "hydra.run.dir=DIR", "data.path=FILE"):
        assert key in text
    assert "huggingface.co/docs/trl" in text and "--config-dir RUN --config-name config" in text
    # one resume key, not TRL's second spelling
    assert text.count("resume_from_checkpoint=latest") >= 1 and "trainer.resume_from_checkpoint" not in text
    trl = subprocess.run(
        console("prefix-rft-train") + ["--help-trainer", "epsilon"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert trl.returncode == 0 and trl.stdout.startswith("trainer.epsilon: ")


def test_eval_help_lists_only_eval_keys():
    proc = subprocess.run(
        console("prefix-rft-eval") + ["--help"], capture_output=True, text=True, timeout=120
    )
    text = proc.stdout
    assert proc.returncode == 0 and len(text.splitlines()) < 50
    for key in ("model_path", "benchmarks", "data_file", "samples", "output_dir", "grader_workers"):
        assert key in text
    for training in ("algorithm", "scheduler", "trainer.", "peft", "generation:", "???"):
        assert training not in text


def test_cfg_job_does_not_import_trl(tmp_path):
    """`prefix-rft-train --cfg job` composes with the cached schema: TRL's config classes are not imported
    (the first call builds the cache; the second is the one a user sees)."""
    probe = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('TRL-IMPORTED', 'trl.trainer.grpo_config' in sys.modules))\n"
        "sys.argv = ['prefix-rft-train', 'algorithm=rft', '--cfg', 'job']\n"
        "from prefix_rft.cli.train import main\n"
        "main()\n"
    )
    env = {**os.environ, "PREFIX_RFT_CACHE": str(tmp_path)}
    first = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=300
    )
    assert first.returncode == 0, first.stderr[-2000:]
    assert list((tmp_path / "schema").glob("train-*.json"))
    second = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=300
    )
    assert second.returncode == 0 and "TRL-IMPORTED False" in second.stdout
    assert second.stdout.replace("TRL-IMPORTED False", "") == first.stdout.replace("TRL-IMPORTED True", "")
    assert "loss_type: dr_grpo" in second.stdout and "name: rft" in second.stdout


# ----------------------------------------------------------------------------- compare


def _summary(folder: Path, name: str, scores: dict[str, float], k: int = 1) -> Path:
    from prefix_rft.eval.report import summarize, write_summary

    rows, plan = [], {}
    for bench, score in scores.items():  # 10 items, k samples each, round(10 * score) items correct
        plan[bench] = ([str(i) for i in range(10)], k)
        rows += [
            {"benchmark": bench, "id": str(i), "sample": s, "correct": i < round(10 * score)}
            for i in range(10)
            for s in range(k)
        ]
    write_summary(summarize(rows, plan, meta={"run_name": name}), folder)
    return folder


def test_compare_header_zero_bars_and_comparable_averages(tmp_path):
    from prefix_rft.cli.compare import chart_bars, comparable_averages, main

    base = _summary(tmp_path / "base", "tiny-base", {"synthetic": 0.0}, k=4)
    rft = _summary(tmp_path / "rft", "tiny-rft", {"synthetic": 0.3}, k=4)
    out = tmp_path / "cmp"
    assert main([str(base), str(rft), "--out", str(out), "--paper-rows", "base"]) == 0
    md = (out / "comparison.md").read_text()
    assert "Runs: synthetic avg@4." in md and "avg@32" in md  # the runs' real k; the paper's own metrics
    assert "| tiny-base |  |  |  |  |  |  | 0.0 |  |" in md  # its avg (synthetic) is not the paper's
    assert "avg of tiny-rft (30.0) covers synthetic, not the avg column's AIME24, AIME25" in md
    assert (out / "comparison.png").read_bytes().startswith(b"\x89PNG")

    columns = ["synthetic", "avg"]
    rows = [("tiny-base", {"synthetic": 0.0, "avg": 0.0}), ("paper: base", {"avg": 19.0})]
    six = ("AIME24", "AIME25", "AMC", "MATH-500", "Minerva", "OlympiadBench")
    coverage = {"a": ("synthetic",), "b": ("synthetic",), "paper: base": six}
    assert comparable_averages(coverage, paper=True) == {"paper: base"}
    assert comparable_averages(coverage, paper=False) == {"a", "b"}  # the set most rows share
    bars = chart_bars(columns, rows, comparable={"paper: base"})
    assert bars[0] == ("tiny-base", [0.0, None], ["0.0", "n/a"])  # a 0% bar is labelled; avg left out
    assert bars[1] == ("paper: base", [None, 19.0], ["", "19.0"])


def test_compare_never_puts_averages_over_different_benchmarks_in_one_column(tmp_path):
    """A run evaluated on the synthetic task and one on held-out benchmarks: the table's avg column holds
    only the averages over the set most rows share; the other is given in a note, not side by side."""
    import csv

    from prefix_rft.cli.compare import main

    synth = _summary(tmp_path / "s", "synth", {"synthetic": 0.7})
    held = _summary(tmp_path / "h", "held", {"MATH-500": 0.4, "AIME24": 0.5})
    held2 = _summary(tmp_path / "h2", "held2", {"MATH-500": 0.6, "AIME24": 0.2})
    out = tmp_path / "cmp"
    assert main([str(synth), str(held), str(held2), "--out", str(out), "--no-plot"]) == 0
    table = list(csv.reader((out / "comparison.csv").open()))
    assert table[0] == ["run", "AIME24", "MATH-500", "synthetic", "avg"]
    assert table[1] == ["synth", "", "", "70.0", ""]
    assert table[2] == ["held", "50.0", "40.0", "", "45.0"]
    assert table[3] == ["held2", "20.0", "60.0", "", "40.0"]
    md = (out / "comparison.md").read_text()
    assert "- avg of synth (70.0) covers synthetic, not the avg column's AIME24, MATH-500: left out" in md


def test_compare_out_naming_a_file_is_one_line(tmp_path, capsys):
    from prefix_rft.cli.compare import main

    run = _summary(tmp_path / "r", "r", {"synthetic": 0.5})
    target = tmp_path / "table.md"
    target.write_text("keep me")
    assert main([str(run), "--out", str(target), "--no-plot"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        f"prefix-rft-compare: error: --out {target} is a file; expected a folder for "
        "comparison.md, comparison.csv, comparison.png"
    )
    assert target.read_text() == "keep me"
    assert main([str(run), "--out", str(target / "sub"), "--no-plot"]) == 2  # a file as a parent
    err = capsys.readouterr().err
    assert err.startswith(f"prefix-rft-compare: error: cannot write into --out {target / 'sub'}: ")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_compare_refuses_a_broken_summary(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "summary.json").write_bytes(b"\xff\xfe not json")
    proc = subprocess.run(
        [sys.executable, "-m", "prefix_rft.cli.compare", str(bad), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("prefix-rft-compare: error:") and len(proc.stderr.splitlines()) == 1
