"""pass@k / avg@k, aggregation and summaries, benchmark rows, the samples file and the eval config."""

from __future__ import annotations

import csv
import json
from math import comb

import pytest

from prefix_rft.eval.metrics import aggregate_benchmark, avg_at_k, pass_at_k, unweighted_average
from prefix_rft.eval.report import summarize, write_summary
from prefix_rft.eval.runner import make_prompt
from prefix_rft.eval.samples_file import read_samples, repair_tail
from prefix_rft.eval.suites import (
    BenchmarkError,
    canonical_name,
    column_order,
    get_spec,
    record_from_row,
)
from prefix_rft.rewards.grader import normalize_gold
from prefix_rft.rewards.grading import extract_choice


def test_pass_at_k_hand_computed():
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)  # 1 - C(3,2)/C(4,2) = 1 - 3/6
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)  # 1 - C(3,2)/C(5,2) = 1 - 3/10
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4)  # pass@1 = c / n
    assert pass_at_k(10, 3, 3) == pytest.approx(1 - 35 / 120)
    assert pass_at_k(3, 0, 1) == 0.0
    assert pass_at_k(3, 3, 2) == 1.0
    assert pass_at_k(4, 3, 2) == 1.0  # n - c < k: every pair holds a correct sample
    # large n: the product form agrees with exact binomials (which overflow floats as a plain ratio)
    assert pass_at_k(2000, 7, 500) == pytest.approx(1 - comb(1993, 500) / comb(2000, 500), rel=1e-12)


@pytest.mark.parametrize(("n", "c", "k"), [(4, 1, 5), (4, 5, 1), (0, 0, 1), (4, 1, 0)])
def test_pass_at_k_rejects_bad_arguments(n, c, k):
    with pytest.raises(ValueError, match="pass@k"):
        pass_at_k(n, c, k)


def test_avg_at_k_and_average():
    assert avg_at_k([True, False, True, True]) == 0.75
    assert avg_at_k([1.0, 0.0]) == 0.5
    with pytest.raises(ValueError, match="at least one"):
        avg_at_k([])
    assert unweighted_average({"A": 0.2, "B": 0.6, "C": None}) == pytest.approx(0.4)
    assert unweighted_average({}) is None


def test_aggregate_benchmark():
    items = {"a": [True, False, False, False], "b": [True, True, False, False]}
    result = aggregate_benchmark(items, ks=(1, 2, 8))
    assert result["n_items"] == 2 and result["n_samples"] == 8 and result["samples_per_item"] == 4
    assert result["accuracy"] == pytest.approx((0.25 + 0.5) / 2)
    assert result["pass@1"] == pytest.approx(0.375)
    assert result["pass@2"] == pytest.approx((0.5 + (1 - 1 / 6)) / 2)
    assert "pass@8" not in result  # more than the 4 samples per item: not estimated
    assert aggregate_benchmark({})["n_items"] == 0


def test_summarize_counts_exactly_and_orders_like_the_paper():
    rows = [
        {"benchmark": "MATH-500", "id": "m0", "sample": 0, "correct": True},
        {"benchmark": "MATH-500", "id": "m1", "sample": 0, "correct": False},
        {"benchmark": "MATH-500", "id": "m1", "sample": 0, "correct": True},  # duplicate: first one counts
        {"benchmark": "MATH-500", "id": "m1", "sample": 1, "correct": True},  # beyond k=1: ignored
        {"benchmark": "AIME24", "id": "a0", "sample": 0, "correct": True},
        {"benchmark": "AIME24", "id": "a0", "sample": 1, "correct": False},
        {"benchmark": "AIME24", "id": "zz", "sample": 0, "correct": True},  # not planned: ignored
        {"benchmark": "GPQA-diamond", "id": "g0", "sample": 0, "correct": True},
        {"benchmark": "Other", "id": "o0", "sample": 0, "correct": True},  # benchmark not planned
    ]
    plan = {"MATH-500": (["m0", "m1"], 1), "AIME24": (["a0", "a1"], 2), "GPQA-diamond": (["g0"], 1)}
    s = summarize(rows, plan, ks=(1, 2), meta={"run_name": "r"})
    assert s["columns"] == ["AIME24", "MATH-500", "GPQA-diamond"]
    m, a = s["benchmarks"]["MATH-500"], s["benchmarks"]["AIME24"]
    assert (m["n_items"], m["n_samples"], m["score"], m["metric"], m["complete"]) == (
        2,
        2,
        0.5,
        "pass@1",
        True,
    )
    assert "pass@2" not in m
    assert (a["n_items"], a["n_samples"], a["expected_samples"], a["complete"]) == (1, 2, 4, False)
    assert a["metric"] == "avg@2" and a["score"] == 0.5 and a["pass@2"] == 1.0
    assert s["average"] == {"score": 0.5, "benchmarks": ["AIME24", "MATH-500"]}
    assert s["average_ood"] == {"score": 1.0, "benchmarks": ["GPQA-diamond"]}
    assert s["run_name"] == "r"


def test_write_summary_files(tmp_path):
    rows = [
        {"benchmark": "synthetic", "id": str(i), "sample": s, "correct": i == 0}
        for i in range(2)
        for s in range(2)
    ]
    summary = summarize(rows, {"synthetic": (["0", "1"], 2)}, ks=(1, 2))
    paths = write_summary(summary, tmp_path)
    assert [p.name for p in paths] == ["summary.json", "summary.csv", "summary.md"]
    assert json.loads(paths[0].read_text())["benchmarks"]["synthetic"]["score"] == 0.5
    table = list(csv.reader(paths[1].open()))
    assert table[0] == [
        "benchmark",
        "metric",
        "score",
        "pass@1",
        "pass@2",
        "n_items",
        "n_samples",
        "samples_per_item",
    ]
    assert table[1] == ["synthetic", "avg@2", "50.0", "50.0", "50.0", "2", "4", "2"]
    assert table[2][:3] == ["avg", "unweighted mean", "50.0"]
    assert "| run | synthetic | avg |" in paths[2].read_text()


def test_registry_names_and_defaults():
    assert canonical_name("math500") == "MATH-500" and canonical_name("olympiad_bench") == "OlympiadBench"
    assert canonical_name("AIME") == "AIME24" and canonical_name("amc23") == "AMC"
    assert canonical_name("nope") is None
    assert [get_spec(n).samples for n in ("aime24", "aime25", "amc", "math500", "minerva", "olympiadbench")] == [
        32, 32, 32, 1, 1, 1,
    ]  # fmt: skip
    assert get_spec("aime24").metric == "avg@32" and get_spec("math500").metric == "pass@1"
    assert get_spec("gpqa").ood and get_spec("gpqa").answer_style == "choice"
    assert get_spec("custom").samples == 1  # unknown benchmarks: defaults
    assert column_order(["synthetic", "OlympiadBench", "AIME24", "MATH-500"]) == [
        "AIME24", "MATH-500", "OlympiadBench", "synthetic",
    ]  # fmt: skip


def test_record_from_row_field_variants():
    amc = record_from_row({"id": 0, "problem": "p", "answer": 27.0}, "AMC", 0, "f")
    assert (amc["id"], amc["answer"]) == ("0", "27.0")
    ob = record_from_row(
        {"id": 7, "question": "q", "final_answer": ["$69$,$84$"], "solution": ["s1", "s2"]}, "OB", 0, "f"
    )
    assert (ob["problem"], ob["answer"], ob["solution"]) == ("q", "$69$,$84$", "s1")
    assert normalize_gold(ob["answer"]) == "69,84"
    minerva = record_from_row({"problem": "p", "solution": "so \\boxed{1.6} cm", "idx": 3}, "Minerva", 0, "f")
    assert (minerva["id"], minerva["answer"]) == ("3", "1.6")
    gsm = record_from_row({"question": "q", "answer": "work\n#### 1,234"}, "GSM8K", 5, "f")
    assert (gsm["id"], gsm["answer"]) == ("5", "1234")
    with pytest.raises(BenchmarkError, match=r"f: row 2 .*found fields \['text'\]"):
        record_from_row({"text": "x"}, "B", 2, "f")


def test_extract_choice():
    assert extract_choice("so \\boxed{C}") == "C"
    assert extract_choice("\\boxed{\\text{(b)}}") == "B"
    assert extract_choice("...\nANSWER: D") == "D"
    assert extract_choice("The answer is (A).") == "A"
    assert extract_choice("no letter here") is None


def test_make_prompt_templates():
    file_prompt = [{"role": "system", "content": "S"}, {"role": "user", "content": "P"}]
    rec = {"problem": "P", "prompt": file_prompt}
    assert make_prompt(rec, "auto") == file_prompt
    assert make_prompt(rec, "auto", system_prompt="X")[0] == {"role": "system", "content": "X"}
    assert len(make_prompt(rec, "auto", system_prompt="X")) == 2
    qwen = make_prompt({"problem": "P", "prompt": None}, "auto")
    assert qwen == [
        {
            "role": "user",
            "content": "P\nPlease reason step by step, and put your final answer within \\boxed{}.",
        }
    ]
    assert make_prompt(rec, "plain") == [{"role": "user", "content": "P"}]


def test_samples_file_tolerates_a_truncated_last_line(tmp_path):
    path = tmp_path / "samples.jsonl"
    good = json.dumps({"benchmark": "b", "id": "0", "sample": 0, "correct": True})
    path.write_text(good + "\n" + '{"benchmark": "b", "id"')
    assert read_samples(path) == [json.loads(good)]
    assert repair_tail(path) == len('{"benchmark": "b", "id"')
    assert path.read_text() == good + "\n"
    assert repair_tail(path) == 0
    path.write_text(good + "\n" + "{broken\n" + good + "\n")
    with pytest.raises(ValueError, match=r"samples.jsonl:2: not valid JSON"):
        read_samples(path)


def test_eval_config_schema_rejects_unknown_keys_and_bad_values(tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from prefix_rft.config.compose import conf_dir
    from prefix_rft.eval.config import ConfigError, register_eval_configs
    from prefix_rft.eval.runner import run_evaluation

    register_eval_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose(config_name="eval", overrides=["samples=3", "benchmarks=[math500,AMC@x.jsonl]"])
        assert cfg.samples == 3 and list(cfg.benchmarks) == ["math500", "AMC@x.jsonl"]
        assert cfg.model_path == "builtin:tiny-warm" and cfg.backend == "transformers"
        with pytest.raises(Exception, match="nope"):
            compose(config_name="eval", overrides=["nope=1"])
        # Hydra's '+' appends keys even to typed configs: run_evaluation still rejects them by name
        appended = compose(config_name="eval", overrides=["+nope=1", f"output_dir={tmp_path}"])
    GlobalHydra.instance().clear()
    with pytest.raises(ConfigError, match="backend='x'"):
        run_evaluation({"backend": "x", "output_dir": str(tmp_path)})
    with pytest.raises(ConfigError, match=r"unknown eval config keys \['nope'\]"):
        run_evaluation(appended)
    with pytest.raises(ConfigError, match="unknown eval config keys"):
        run_evaluation({"sample": 3, "output_dir": str(tmp_path)})
