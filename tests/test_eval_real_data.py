"""Loaders and grader on the real benchmark files in ../shared/data (skipped when absent)."""

from __future__ import annotations

import pytest

from prefix_rft.eval.suites import get_spec, load_benchmarks, load_jsonl, load_luffy_parquet
from prefix_rft.rewards.grader import Grader, normalize_gold

# (rows in the parquet, unique problems) per benchmark of luffy_valid_all.parquet
LUFFY_COUNTS = {
    "AIME24": (960, 30),
    "AIME25": (960, 30),
    "AMC": (2656, 83),
    "MATH-500": (500, 500),
    "Minerva": (272, 272),
    "OlympiadBench": (675, 675),
}


@pytest.fixture(scope="module")
def grader():
    with Grader(num_workers=2, timeout=5.0) as g:
        yield g


@pytest.fixture(scope="module")
def luffy(shared_data):
    return load_luffy_parquet(shared_data / "benchmarks" / "luffy_valid_all.parquet")


def test_math500_reference_solutions_grade_correct(shared_data, grader):
    records = load_jsonl(shared_data / "solutions" / "math500.jsonl")
    assert len(records) == 500 and records[0]["benchmark"] == "MATH-500"
    solutions, answers = [r["solution"] for r in records], [r["answer"] for r in records]
    rate = sum(grader.grade_many(solutions, answers)) / len(records)
    print(f"MATH-500 reference solutions graded correct against their answers: {rate:.3f}")
    assert rate >= 0.99
    shifted = answers[1:] + answers[:1]  # every solution against the next problem's answer
    wrong = 1 - sum(grader.grade_many(solutions, shifted)) / len(records)
    print(f"MATH-500 solutions graded wrong against the next problem's answer: {wrong:.3f}")
    assert wrong >= 0.99


def test_luffy_parquet_counts_and_copies(luffy, shared_data):
    assert {name: (sum(r["copies"] for r in recs), len(recs)) for name, recs in luffy.items()} == LUFFY_COUNTS
    for name, recs in luffy.items():
        # avg@32 = 32 samples per unique problem: the default k matches the file's copies
        assert {r["copies"] for r in recs} == {
            get_spec(name).samples if name in ("AIME24", "AIME25", "AMC") else 1
        }
        assert recs[0]["prompt"][0]["role"] == "system" and recs[0]["prompt"][-1]["role"] == "user"
        assert len({r["id"] for r in recs}) == len(recs)
    selected = load_benchmarks(
        ["aime25", "math500"],
        data_file=str(shared_data / "benchmarks" / "luffy_valid_all.parquet"),
        max_items=5,
    )
    assert {k: len(v) for k, v in selected.items()} == {"AIME25": 5, "MATH-500": 5}
    ood = load_luffy_parquet(shared_data / "benchmarks" / "luffy_valid_gpqa.parquet")
    assert {k: len(v) for k, v in ood.items()} == {"GPQA-diamond": 198}


def test_amc_float_answers_grade_correctly(luffy, shared_data, grader):
    golds = [r["answer"] for r in luffy["AMC"]]
    assert all(g.endswith(".0") for g in golds)  # the file's quirk: "142.0"
    ints = [str(int(float(g))) for g in golds]
    assert grader.grade_many([f"so \\boxed{{{i}}}" for i in ints], golds) == [1.0] * len(golds)
    assert grader.grade_many([f"\\boxed{{{int(i) + 1}}}" for i in ints], golds) == [0.0] * len(golds)
    amc23 = load_jsonl(shared_data / "solutions" / "amc23.jsonl")
    assert len(amc23) == 40 and amc23[0]["answer"] == "27.0"
    assert grader.grade_many(["\\boxed{27}", "\\boxed{27.0}", "\\boxed{28}"], ["27.0"] * 3) == [1.0, 1.0, 0.0]


def test_olympiadbench_answers_grade_correctly(luffy, shared_data, grader):
    jsonl = load_jsonl(shared_data / "solutions" / "olympiadbench.jsonl")
    golds = [r["answer"] for r in luffy["OlympiadBench"]]
    assert len(jsonl) == len(golds) == 675
    assert sum("$" in g for g in golds) > 100  # many answers are wrapped in $...$
    # The JSONL's final_answer list (its own rendering), stripped of $, boxed as a model would write it.
    preds = [f"The answer is $\\boxed{{{r['answer'].replace('$', '')}}}$." for r in jsonl]
    rate = sum(grader.grade_many(preds, golds)) / len(golds)
    # Mismatched pairs all go through sympy (~10 ms each): the first 200 keep the test short.
    n = 200
    wrong = 1 - sum(grader.grade_many(preds[:n], golds[1 : n + 1])) / n
    print(f"OlympiadBench: correct {rate:.3f}, wrong against the next answer {wrong:.3f} (first {n})")
    assert rate >= 0.99 and wrong >= 0.99
    assert normalize_gold("$69$,$84$") == "69,84"
    assert grader.grade_many(["\\boxed{69, 84}", "\\boxed{69}"], ["$69$,$84$"] * 2) == [1.0, 0.0]


def test_qwen_jsonl_layout_files(shared_data):
    counts = {
        "math500": 500,
        "aime24": 30,
        "amc23": 40,
        "minerva_math": 272,
        "olympiadbench": 675,
        "gsm8k": 1319,
    }
    names = {"math500": "MATH-500", "aime24": "AIME24", "amc23": "AMC", "minerva_math": "Minerva"}
    for stem, n in counts.items():
        records = load_jsonl(shared_data / "solutions" / f"{stem}.jsonl")
        assert len(records) == n and all(r["answer"] for r in records), stem
        assert len({r["id"] for r in records}) == n, stem
        if stem in names:
            assert records[0]["benchmark"] == names[stem]
    by_dir = load_benchmarks(["minerva", "gsm8k"], data_dir=str(shared_data / "solutions"))
    assert by_dir["Minerva"][0]["answer"] == "1.6" and by_dir["GSM8K"][0]["answer"] == "18"
