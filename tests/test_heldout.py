"""The held-out evaluation of a run: paired intervals, report lines, process metrics, disjoint problems."""

from __future__ import annotations

import math

import pytest

from prefix_rft.config.compose import compose_config
from prefix_rft.data.sources import heldout_records, load_train_dataset
from prefix_rft.eval.heldout import format_change, paired_difference, report_lines


def test_paired_difference_exact_values():
    mean, se = paired_difference([0.0, 0.5, 1.0, 0.25], [0.5, 0.5, 1.0, 1.0])
    # diffs 0.5, 0, 0, 0.75: mean 0.3125, sample sd 0.375, se 0.1875
    assert mean == pytest.approx(0.3125)
    assert se == pytest.approx(0.1875)
    assert math.isnan(paired_difference([1.0], [0.0])[1])
    with pytest.raises(ValueError, match="equal, non-empty"):
        paired_difference([1.0], [1.0, 0.0])


def test_format_change_and_report_lines():
    before = {"accuracy": 0.25, "per_problem": [0.0, 0.5, 1.0, 0.25]}
    after = {"accuracy": 0.75, "per_problem": [0.5, 0.5, 1.0, 1.0]}
    text = format_change(before, after)
    # +0.3125 +- 1.96 * 0.1875
    assert text == "before 0.250 -> after 0.750 (+0.312, 95% CI -0.055..+0.680)"
    assert format_change({}, after) == "before n/a -> after 0.75"
    before.update({"chance/best_constant": 0.02, "chance/last_number": 0.0, "process/faithful": 0.5})
    before["process/right_answer_wrong_working"] = 0.1
    after.update({"process/faithful": 0.7, "process/right_answer_wrong_working": 0.05})
    after.update({"chance/best_constant": 0.02, "chance/last_number": 0.0})
    lines = report_lines(before, after, num_problems=4, samples=2, temperature=1.0)
    assert lines[0].startswith("held-out accuracy (4 problems, avg@2, T=1): before 0.250 -> after 0.750")
    assert "  chance: best constant answer 0.020, last number in the problem 0.000" in lines
    assert "  working: faithful 0.500 -> 0.700, right_answer_wrong_working 0.100 -> 0.050" in lines


def test_heldout_problems_never_occur_in_training():
    # 1-step problems repeat often enough that a 3000-problem training set meets the held-out seed's draws.
    cfg = compose_config(
        [
            "data.synthetic.num_train=3000",
            "data.synthetic.train_min_steps=1",
            "data.synthetic.train_max_steps=1",
            "data.synthetic.num_eval=300",
            "data.synthetic.eval_min_steps=1",
            "data.synthetic.eval_max_steps=1",
        ]
    )
    records = heldout_records(cfg.data)
    train = load_train_dataset(cfg.data)
    train_users = {p[-1]["content"] for p in train["prompt"]}
    assert len(records) == 300
    from prefix_rft.data.synthetic import generate_problems

    raw = generate_problems(300, seed=cfg.data.synthetic.seed + 1, min_steps=1, max_steps=1)
    assert any(r["problem"] in u for r in raw for u in train_users)  # the filter had work to do
    assert not any(r["prompt"][-1]["content"] in train_users for r in records)
    assert {r["num_steps"] for r in records} == {1}
    assert all(r["problem"] in r["prompt"][-1]["content"] for r in records)
