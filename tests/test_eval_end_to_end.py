"""End to end on CPU: the eval CLI killed midway and resumed, the runner's resume, and compare."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from prefix_rft.errors import ModelLoadError
from prefix_rft.eval.runner import CRASH_ENV, run_evaluation

ITEMS, SAMPLES = 6, 2


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _eval_cli(args: list[str], extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(extra_env or {})}  # one thread: the CPU is shared
    return subprocess.run(
        [sys.executable, "-m", "prefix_rft.cli.evaluate", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_killed_midway_resumes_without_regenerating(tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    args = [
        f"model_path={tiny_model_dir}",
        "benchmarks=[synthetic]",
        f"synthetic.num={ITEMS}",
        f"samples={SAMPLES}",
        "batch_size=2",
        "max_new_tokens=8",
        "progress=false",
        f"output_dir={out}",
    ]
    # A hard kill (SIGKILL, no clean-up) after the second batch has been written.
    killed = _eval_cli(args, {CRASH_ENV: "4"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    samples = out / "samples.jsonl"
    first = _rows(samples)
    assert len(first) == 4
    with open(samples, "a") as f:  # and a line cut off mid-write
        f.write('{"benchmark": "synthetic", "id": "2", "sam')

    resumed = _eval_cli(args)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"4/{ITEMS * SAMPLES} samples already" in resumed.stdout
    rows = _rows(samples)
    keys = [(r["benchmark"], r["id"], r["sample"]) for r in rows]
    assert len(rows) == ITEMS * SAMPLES and len(set(keys)) == len(keys)
    assert set(keys) == {("synthetic", str(i), s) for i in range(ITEMS) for s in range(SAMPLES)}
    assert rows[:4] == first  # finished samples were kept, not regenerated
    assert set(rows[0]) == {"benchmark", "id", "sample", "completion", "pred", "answer", "correct"}

    summary = json.loads((out / "summary.json").read_text())
    bench = summary["benchmarks"]["synthetic"]
    assert (bench["n_items"], bench["n_samples"], bench["samples_per_item"]) == (
        ITEMS,
        ITEMS * SAMPLES,
        SAMPLES,
    )
    assert bench["complete"] and bench["metric"] == f"avg@{SAMPLES}"
    assert bench["score"] == sum(r["correct"] for r in rows) / len(rows)
    assert (out / "summary.csv").is_file() and (out / "summary.md").is_file()


class FakeGenerator:
    """Answers item i correctly iff its answer is even; counts every sample it is asked for."""

    def __init__(self, records: list[dict]):
        from prefix_rft.eval.generate import encode_prompts
        from prefix_rft.eval.runner import make_prompt
        from prefix_rft.models.tiny import build_tiny_tokenizer

        self.tokenizer = build_tiny_tokenizer()
        ids = encode_prompts(self.tokenizer, [make_prompt(r) for r in records])
        self.answer = {tuple(i): r["answer"] for i, r in zip(ids, records)}
        self.calls = 0

    def generate(self, prompt_ids, sampling, seeds):
        self.calls += len(prompt_ids)
        out = []
        for ids in prompt_ids:
            answer = self.answer[tuple(ids)]
            out.append(f"so \\boxed{{{answer}}}" if int(answer) % 2 == 0 else "I do not know.")
        return out


def test_runner_resume_counts_exactly(tmp_path):
    from prefix_rft.eval.metrics import pass_at_k
    from prefix_rft.eval.suites import load_synthetic
    from prefix_rft.rewards.grader import Grader

    records = load_synthetic(ITEMS, seed=1)
    gen = FakeGenerator(records)
    cfg = {
        "model_path": "fake",
        "benchmarks": ["synthetic"],
        "synthetic": {"num": ITEMS, "seed": 1, "min_steps": 1, "max_steps": 4},
        "samples": SAMPLES,
        "pass_k": [1, 2],
        "batch_size": 4,
        "progress": False,
        "output_dir": str(tmp_path),
    }
    with Grader(num_workers=1) as grader:
        partial = run_evaluation({**cfg, "stop_after": 5}, generator=gen, grader=grader)
        assert gen.calls == 5 and not partial["benchmarks"]["synthetic"]["complete"]
        summary = run_evaluation(cfg, generator=gen, grader=grader)
        assert gen.calls == ITEMS * SAMPLES  # only the 7 missing samples were generated
        more = run_evaluation({**cfg, "samples": 3}, generator=gen, grader=grader)
        assert gen.calls == ITEMS * 3  # raising k generates only the new sample index
        with pytest.raises(ValueError, match=r"temperature: 0.6 -> 0.9"):
            run_evaluation({**cfg, "temperature": 0.9}, generator=gen, grader=grader)
    even = [int(r["answer"]) % 2 == 0 for r in records]
    bench = summary["benchmarks"]["synthetic"]
    assert (bench["n_items"], bench["n_samples"], bench["complete"]) == (ITEMS, ITEMS * SAMPLES, True)
    assert bench["score"] == pytest.approx(sum(even) / ITEMS)
    assert bench["pass@2"] == pytest.approx(sum(pass_at_k(2, 2 * e, 2) for e in even) / ITEMS)
    assert summary["average"]["score"] == bench["score"]
    assert more["benchmarks"]["synthetic"]["n_samples"] == ITEMS * 3
    rows = _rows(tmp_path / "samples.jsonl")
    assert len(rows) == ITEMS * 3 and len({(r["id"], r["sample"]) for r in rows}) == ITEMS * 3
    assert all(r["correct"] == (r["pred"] == r["answer"]) for r in rows)


def _fake_summary(folder: Path, name: str, scores: dict[str, float]) -> Path:
    from prefix_rft.eval.report import summarize, write_summary

    rows, plan = [], {}
    for bench, score in scores.items():  # 10 items, one sample each, round(10 * score) correct
        plan[bench] = ([str(i) for i in range(10)], 1)
        rows += [
            {"benchmark": bench, "id": str(i), "sample": 0, "correct": i < round(10 * score)}
            for i in range(10)
        ]
    write_summary(summarize(rows, plan, meta={"run_name": name}), folder)
    return folder


def test_compare_writes_table_and_chart(tmp_path):
    pytest.importorskip("matplotlib")
    from prefix_rft.cli.compare import main

    a = _fake_summary(tmp_path / "a", "rft", {"MATH-500": 0.8, "AIME24": 0.2})
    b = _fake_summary(tmp_path / "b", "prefix-rft", {"MATH-500": 0.9, "AIME24": 0.3, "Minerva": 0.4})
    out = tmp_path / "cmp"
    assert main([str(a), str(b / "summary.json"), "--out", str(out), "--paper-rows", "base,Prefix-RFT"]) == 0
    table = list(csv.reader((out / "comparison.csv").open()))
    assert table[0] == ["run", "AIME24", "AIME25", "AMC", "MATH-500", "Minerva", "OlympiadBench", "avg"]
    # The runs' averages cover other benchmarks than the paper rows' six: not in the avg column.
    assert table[1] == ["rft", "20.0", "", "", "80.0", "", "", ""]
    assert table[2] == ["prefix-rft", "30.0", "", "", "90.0", "40.0", "", ""]
    assert table[3] == ["paper: base", "11.5", "4.9", "31.3", "43.6", "7.4", "15.6", "19.0"]
    assert table[4][0] == "paper: Prefix-RFT" and table[4][-1] == "51.8"
    md = (out / "comparison.md").read_text()
    assert "| paper: Prefix-RFT | 31.8 | 26.4 | 68.2 | 88.4 | 40.3 | 55.7 | 51.8 |" in md
    assert (
        "avg of rft (50.0) covers AIME24, MATH-500, not the avg column's AIME24, AIME25, AMC, MATH-500, "
        "Minerva, OlympiadBench: left out" in md
    )
    png = (out / "comparison.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    # without --paper: only the runs' own columns
    assert main([str(a), str(b), "--out", str(tmp_path / "cmp2"), "--no-plot"]) == 0
    assert next(csv.reader((tmp_path / "cmp2" / "comparison.csv").open())) == [
        "run",
        "AIME24",
        "MATH-500",
        "Minerva",
        "avg",
    ]
    assert not (tmp_path / "cmp2" / "comparison.png").exists()
    assert main([str(tmp_path / "missing"), "--out", str(out)]) == 2


def test_lora_adapter_folder_is_detected_and_merged(tiny_model_dir, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from prefix_rft.eval.generate import (
        SamplingSettings,
        TransformersGenerator,
        encode_prompts,
        resolve_model_source,
    )

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    lora = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    lora.save_pretrained(tmp_path / "adapter")  # adapter_config.json names the base model folder
    source = resolve_model_source(str(tmp_path / "adapter"), dtype="float32")
    assert (source.base, source.adapter, source.tokenizer) == (
        str(tiny_model_dir),
        str(tmp_path / "adapter"),
        str(tiny_model_dir),
    )
    with pytest.raises(ValueError, match="is a LoRA adapter folder"):
        resolve_model_source(str(tmp_path / "adapter"), str(tmp_path / "adapter"))
    with pytest.raises(ModelLoadError, match="no adapter_config.json"):
        resolve_model_source(str(tiny_model_dir), str(tmp_path))
    gen = TransformersGenerator(source)
    ids = encode_prompts(gen.tokenizer, [[{"role": "user", "content": "1+1?"}]] * 2)
    out = gen.generate(ids, SamplingSettings(temperature=0.0, max_new_tokens=4), [0, 1])
    assert len(out) == 2 and out[0] == out[1]  # greedy: identical rows
