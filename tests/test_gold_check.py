"""Reference answers graded against themselves when the training data loads (through ``prefix-rft-train``
in this process): unreadable ones are reported with their share and row numbers, dropped under
``data.on_bad_row=skip``, and a file where none is readable is refused before any training."""

from __future__ import annotations

import json

from prefix_rft.data.gold_check import gold_style
from prefix_rft.rewards.grader import Grader

TINY = [
    "model.name_or_path=builtin:tiny-warm",
    "heldout_eval.enabled=false",
    "trainer.max_steps=1",
    "trainer.per_device_train_batch_size=4",
    "trainer.num_generations=4",
    "trainer.max_completion_length=8",
]


def write_rows(path, answers: list[str]) -> None:
    rows = [
        {"problem": f"What is {i} + 0?", "answer": a, "solution": f"\\boxed{{{a}}}"}
        for i, a in enumerate(answers)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_self_grade_exact_verdicts():
    cases = ["5", "-2.50", "\\frac{", "\\frac{1}{2}", "", "x^2+1", "28\\%", "$\\sqrt{2}$", "{\\frac{1}{2}"]
    with Grader() as grader:
        assert grader.self_grade(cases) == [True, True, False, True, False, True, True, True, False]


def test_gold_style_follows_the_accuracy_reward():
    assert gold_style([{"name": "accuracy", "weight": 1.0}]) == "boxed"
    assert gold_style([{"name": "format"}, {"name": "accuracy", "params": {"style": "choice"}}]) == "choice"
    assert gold_style([{"name": "my.module:reward"}]) is None


def test_no_readable_answer_is_refused(train_cli, tmp_path):
    data = tmp_path / "broken.jsonl"
    write_rows(data, ["\\frac{"] * 6)
    code, _, err = train_cli("data=local", f"data.path={data}", f"hydra.run.dir={tmp_path / 'run'}", *TINY)
    lines = [line for line in err.splitlines() if line.startswith("prefix-rft-")]
    assert code == 2 and "Traceback" not in err and len(lines) == 1, err
    assert lines[0] == (
        f"prefix-rft-train: data error: none of the 6 reference answers of {data} can be graded (e.g. '\\\\frac{{', "
        "'\\\\frac{', '\\\\frac{'): math-verify does not read them even against themselves, so every reward would be 0; "
        "fix data.answer_column or the answers"
    )
    assert not (tmp_path / "run" / "model.safetensors").exists()


def warnings_of(run) -> list[str]:
    log = (run / "train.log").read_text()
    return [
        line.split(" - ", 1)[1]
        for line in log.splitlines()
        if "[prefix_rft.data.gold_check][WARNING]" in line
    ]


def test_some_unreadable_answers_are_reported_then_kept_or_dropped(train_cli, tmp_path):
    data = tmp_path / "mixed.jsonl"
    write_rows(data, ["1", "\\frac{", "3", "{4", "5", "6", "7", "8"])
    code, _, err = train_cli("data=local", f"data.path={data}", f"hydra.run.dir={tmp_path / 'a'}", *TINY)
    assert code == 0, err
    assert warnings_of(tmp_path / "a") == [
        f"2 of 8 reference answers of {data} (25.0%) cannot be graded, even against themselves (rows 1, 3; "
        "first: '\\\\frac{'): kept, they score 0"
    ]
    code, _, err = train_cli(
        "data=local", f"data.path={data}", "data.on_bad_row=skip", f"hydra.run.dir={tmp_path / 'b'}", *TINY
    )
    assert code == 0, err
    [line] = warnings_of(tmp_path / "b")
    assert line.endswith("dropped (data.on_bad_row=skip)")
