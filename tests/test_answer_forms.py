"""Answer forms real benchmarks use and plain string / sympy comparison gets wrong, graded by the grader.

Each case is (prediction inside \\boxed{}, reference answer as a benchmark file writes it, expected
verdict). Measured before the normalisation in prefix_rft/rewards/answer_forms.py: 83 of 93 right
(wrong: percentages, number and unit in one \\text{}, ~ before a unit, the Unicode degree sign, a thin
space between digit groups, a bold AIME answer); after: 93 of 93. The negative cases guard against a
normalisation that makes different answers equal.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from prefix_rft.rewards.answer_forms import normalize_answer
from prefix_rft.rewards.grader import Grader, extract_answer

# (prediction, reference answer, 1 = equivalent / 0 = not)
CASES = [
    # percentages
    ("50\\%", "50", 1),
    ("50", "50\\%", 1),
    ("50 \\%", "50", 1),
    ("8", "$8 \\%$", 1),
    ("8\\%", "$8 \\%$", 1),
    ("50\\%", "5", 0),
    ("9", "$8 \\%$", 0),
    ("50 \\text{ percent}", "50", 1),
    ("50\\text{\\%}", "50", 1),
    ("50%", "50", 1),
    # a percentage in words, against a percent sign (math-verify's own cases; the rewrite once broke them)
    ("28 percent", "$28\\%$", 1),
    ("28 pct", "$28\\%$", 1),
    ("28 percentage", "$28\\%$", 1),
    ("29 percent", "$28\\%$", 0),
    # a percentage equals its number and its value (decided in prefix_rft/rewards/answer_forms.py)
    ("50\\%", "0.5", 1),
    ("0.5", "50\\%", 1),
    ("50\\%", "\\frac{1}{2}", 1),
    ("50\\%", "0.6", 0),
    ("60\\%", "0.5", 0),
    # e-notation is the number it denotes
    ("1e3", "1000", 1),
    ("1000", "1e3", 1),
    ("2.5E-2", "0.025", 1),
    ("1e3", "100", 0),
    ("2e", "2e", 1),  # not e-notation: left alone
    # units and text wrappers
    ("10 \\text{ cm}", "10", 1),
    ("\\text{10 cm}", "10", 1),
    ("10\\mbox{ cm}", "10", 1),
    ("10 \\text{cm}^2", "10", 1),
    ("5~\\mathrm{cm}", "5", 1),
    ("5 \\mathrm{~cm}", "5", 1),
    ("5\\,\\text{m}", "5", 1),
    ("5 \\text{ m/s}", "5", 1),
    ("10\\text{ cm}", "11", 0),
    ("\\text{11 cm}", "10", 0),
    ("\\text{Evelyn}", "\\text{Evelyn}", 1),
    ("Evelyn", "\\text{Evelyn}", 1),
    ("\\text{east}", "\\text{west}", 0),
    ("\\text{(C)}", "\\text{(C)}", 1),
    ("C", "\\text{(C)}", 1),
    ("(C)", "\\text{(C)}", 1),
    ("\\text{(D)}", "\\text{(C)}", 0),
    ("\\textbf{(073)}", "073", 1),
    ("\\textbf{(074)}", "073", 0),
    ("\\mathbf{42}", "42", 1),
    # degrees
    ("30^\\circ", "30", 1),
    ("30", "30^\\circ", 1),
    ("30^{\\circ}", "30^\\circ", 1),
    ("30°", "30", 1),
    ("30 degrees", "30", 1),
    ("\\frac{270}{7}", "\\frac{270}7\\text{ degrees}", 1),
    ("\\frac{270}{7}^\\circ", "\\frac{270}7\\text{ degrees}", 1),
    ("30^\\circ", "60", 0),
    ("31°", "30", 0),
    # thousands separators
    ("58500", "58,500", 1),
    ("58,500", "58500", 1),
    ("1{,}000", "1000", 1),
    ("12,345,678", "12345678", 1),
    ("1\\,000", "1000", 1),
    ("32348", "\\$32,\\!348", 1),
    ("\\$32,348", "\\$32,\\!348", 1),
    ("1,000", "100", 0),
    ("32,349", "\\$32,\\!348", 0),
    ("32349", "32,\\! 349", 1),  # a separator followed by a space is still a separator
    ("32,\\! 349", "32349", 1),
    ("11,\\! 111,\\! 111,\\! 100", "11111111100", 1),
    ("32,\\! 348", "32349", 0),
    ("(2,251,252)", "$(2,251,252)$", 1),
    ("2251252", "$(2,251,252)$", 0),
    # mixed numbers
    ("\\frac{9}{5}", "1\\frac{4}{5}", 1),
    ("1.8", "1\\frac{4}{5}", 1),
    ("\\frac{275}{2}", "137 \\frac{1}{2}", 1),
    ("2\\frac{1}{2}", "\\frac{5}{2}", 1),
    ("2\\tfrac12", "5/2", 1),
    ("\\frac{4}{5}", "1\\frac{4}{5}", 0),
    ("2\\frac{1}{2}", "1", 0),
    # intervals
    ("[1, 3)", "[1,3)", 1),
    ("(3, 4]", "(3,4]", 1),
    ("[3,4]", "(3,4]", 0),
    ("(2, \\infty)", "(2,\\infty)", 1),
    ("(-\\infty, 2) \\cup (3, \\infty)", "(-\\infty, 2) \\cup (3, \\infty)", 1),
    ("(0,9) \\cup (9,36)", "(0,9) \\cup (9,36)", 1),
    ("(0,36)", "(0,9) \\cup (9,36)", 0),
    ("x \\in [1,3)", "[1,3)", 1),
    # x = 5 style
    ("x = 5", "5", 1),
    ("5", "x=5", 1),
    ("x=5", "6", 0),
    ("y = 2x+3", "y = 2x + 3", 1),
    ("2x+3", "y = 2x + 3", 1),
    ("a=3", "3", 1),
    # multiple answers
    ("3, 5", "5, 3", 1),
    ("x=3, x=5", "3, 5", 1),
    ("3 \\text{ and } 5", "3, 5", 1),
    ("x = 3 \\text{ or } x = 5", "3, 5", 1),
    ("\\{3, 5\\}", "3,5", 1),
    ("3", "3, 5", 0),
    ("3, 5, 7", "3, 5", 0),
    ("1+\\sqrt{19}, 1-\\sqrt{19}", "1 \\pm \\sqrt{19}", 1),
    ("1+\\sqrt{19}", "1 \\pm \\sqrt{19}", 0),
    ("2500, 7500", "2500,7500", 1),
    # money
    ("\\$5", "5", 1),
    ("\\$1,250", "1250", 1),
    ("18.90", "\\$18.90", 1),
    ("18.9", "\\$18.90", 1),
    ("5 \\text{ dollars}", "5", 1),
    # plain equivalences that must keep working
    ("\\dfrac{1}{2}", "\\frac12", 1),
    ("0.5", "\\frac{1}{2}", 1),
    ("(1, 2)", "(1,2)", 1),
    ("(2, 1)", "(1,2)", 0),
    ("3\\sqrt{2}", "\\sqrt{18}", 1),
    ("10^{\\circ}\\text{C}", "10", 1),
    ("073", "73", 1),
]


@pytest.fixture(scope="module")
def grader():
    with Grader(num_workers=2, timeout=5.0) as g:
        yield g


def test_answer_forms_table(grader):
    scores = grader.grade_many([f"\\boxed{{{p}}}" for p, _, _ in CASES], [g for _, g, _ in CASES])
    wrong = [(p, g, e, s) for (p, g, e), s in zip(CASES, scores) if s != e]
    assert not wrong, f"{len(wrong)} of {len(CASES)} graded wrongly: {wrong}"


def test_normalize_answer_rewrites():
    assert normalize_answer("50\\%") == "50"
    assert normalize_answer("50\\text{\\%}") == "50"
    assert normalize_answer("\\text{10 cm}") == "10\\text{ cm}"
    assert normalize_answer("30°") == "30^\\circ"
    assert normalize_answer("1\\,000") == "1000"
    assert normalize_answer("\\$32,\\!348") == "\\$32348"
    assert normalize_answer("32,\\! 349") == "32349"
    assert normalize_answer("28 percent") == normalize_answer("28 pct") == "28"
    assert normalize_answer("1e3") == "1\\times10^{3}"
    assert normalize_answer("percentile") == "percentile"
    assert normalize_answer("\\textbf{(073)}") == "073"
    assert normalize_answer("5~\\mathrm{cm}") == "5 \\mathrm{cm}"
    assert normalize_answer("(1, 2)") == "(1, 2)"  # tuples and intervals are left alone
    assert normalize_answer("x \\in [1,3)") == "x \\in [1,3)"


# (completion, reference answer, expected): several boxes against a reference answer that lists several answers
SEVERAL_BOXES = [
    ("so \\boxed{1}, \\boxed{2}, \\boxed{3}", "{1,2,3}", 1),
    ("\\boxed{1} and \\boxed{2} and \\boxed{3}", "$${1,2,3}$$", 1),
    ("$\\boxed{3}$, $\\boxed{1}$, $\\boxed{2}$", "1, 2, 3", 1),  # a list of answers: in any order
    ("\\boxed{1}, \\boxed{2}", "{1,2,3}", 0),  # one missing
    ("\\boxed{1}, \\boxed{2}, \\boxed{3}, \\boxed{4}", "{1,2,3}", 0),  # one too many
    (
        "first \\boxed{7}; so the roots are \\boxed{1}, \\boxed{2}, \\boxed{3}",
        "1, 2, 3",
        1,
    ),  # prose parts runs
    ("\\boxed{(1, 2)}, \\boxed{(2, 1)}", "(1,2),(2,1)", 1),
    # a reference answer with one answer: the last box only, as before
    ("\\boxed{1}, \\boxed{2}", "2", 1),
    ("\\boxed{2}, \\boxed{1}", "2", 0),
    ("\\boxed{1}, \\boxed{000}", "1,000", 0),  # 1,000 is one number, not a list
]


def test_several_boxes_against_several_answers(grader):
    scores = grader.grade_many([c for c, _, _ in SEVERAL_BOXES], [g for _, g, _ in SEVERAL_BOXES])
    assert [int(s) for s in scores] == [e for _, _, e in SEVERAL_BOXES]


SHARED_FILES = ["math500", "aime24", "amc23", "minerva_math", "olympiadbench", "gsm8k"]


def test_reference_answers_and_solutions_of_the_shared_benchmarks_grade_100_percent(shared_data, grader):
    """Every reference answer graded against itself (as a boxed completion), and every reference
    solution that has a final \\boxed{} against its answer: no regression from the normalisation."""
    from prefix_rft.eval.suites import load_jsonl

    for name in SHARED_FILES:
        records = load_jsonl(shared_data / "solutions" / f"{name}.jsonl")
        golds = [r["answer"] for r in records]
        scores = grader.grade_many([f"\\boxed{{{a}}}" for a in golds], golds)
        assert sum(scores) == len(records), (name, [g for g, s in zip(golds, scores) if s < 1][:5])
        solved = [
            (r["solution"], r["answer"]) for r in records if r["solution"] and extract_answer(r["solution"])
        ]
        scores = grader.grade_many([s for s, _ in solved], [a for _, a in solved])
        assert sum(scores) == len(solved), (
            name,
            [extract_answer(s) for (s, _), x in zip(solved, scores) if x < 1],
        )


def test_grader_without_a_main_guard_raises_instead_of_scoring_zero(tmp_path):
    """Workers start with spawn, which re-imports the calling script: a script without a main guard
    cannot start them. That is an error naming the fix, never every answer silently scored 0."""
    script = tmp_path / "grade_script.py"
    script.write_text(
        textwrap.dedent(
            """
            from prefix_rft.rewards.grading import grade

            print("scores", [g.score for g in grade("boxed", ["\\\\boxed{0.5}"], ["\\\\frac{1}{2}"])])
            """
        )
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "GradingError" in proc.stderr and "if __name__ == '__main__':" in proc.stderr
    assert "scores [0.0]" not in proc.stdout
    guarded = tmp_path / "guarded.py"
    guarded.write_text(
        script.read_text().replace('print("scores"', 'if __name__ == "__main__":\n    print("scores"')
    )
    proc = subprocess.run([sys.executable, str(guarded)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "scores [1.0]" in proc.stdout, proc.stderr[-2000:]
