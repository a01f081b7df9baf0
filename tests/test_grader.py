"""Answer extraction, gold normalisation, bounded-time grading and the reward functions."""

from __future__ import annotations

import time

import pytest

from prefix_rft.rewards.grader import Grader, extract_answer, normalize_gold
from prefix_rft.rewards.rewards import accuracy, format, get_reward_funcs


@pytest.fixture(scope="module")
def grader():
    with Grader(num_workers=1, timeout=2.0) as g:
        yield g


def test_extract_answer_boxed():
    assert extract_answer("so \\boxed{\\frac{1}{2}} done") == "\\frac{1}{2}"
    assert extract_answer("\\boxed{1} then \\boxed{2}") == "2"  # the last box wins
    assert extract_answer("a \\boxed{\\{1,2\\}} b") == "\\{1,2\\}"
    assert extract_answer("\\fbox{7}") == "7"
    assert extract_answer("no box") is None
    assert extract_answer("\\boxed{1 + {2}") is None  # unbalanced
    with pytest.raises(ValueError, match="gsm8k"):
        extract_answer("x", style="latex")


def test_extract_answer_gsm8k():
    assert extract_answer("steps\n#### 1,234", style="gsm8k") == "1234"
    assert extract_answer("a #### 5 #### 72.", style="gsm8k") == "72"
    assert extract_answer("fallback \\boxed{9}", style="gsm8k") == "9"


def test_normalize_gold_quirks():
    assert normalize_gold("27.0") == "27"
    assert normalize_gold("2.5") == "2.5"
    assert normalize_gold("$\\frac{1}{2}$") == "\\frac{1}{2}"
    assert normalize_gold("\\(x^2\\)") == "x^2"
    assert normalize_gold("['3', '5']") == "3, 5"
    assert normalize_gold("['$\\\\frac{1}{2}$']") == "\\frac{1}{2}"


def test_grader_scores(grader):
    completions = [
        "so \\boxed{0.5}",  # equivalent form
        "\\boxed{3}",  # wrong
        "no final answer",  # unparseable
        "\\boxed{2.0}",  # equivalent to "2"
        "\\boxed{x+1}",  # algebraic equivalence
        "\\boxed{27}",  # AMC float gold
    ]
    golds = ["\\frac{1}{2}", "4", "1", "2", "1+x", "27.0"]
    assert grader.grade_many(completions, golds) == [1.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="reference answers"):
        grader.grade_many(["a"], [])


HANG = "\\boxed{9^{9^{9^{9}}}}"  # sympy evaluates a gigantic power: > 25 s unguarded on this machine


def test_pathological_input_is_bounded(grader):
    start = time.perf_counter()
    assert grader.grade(HANG, "1") == 0.0
    assert time.perf_counter() - start < grader.timeout + 3.0


def test_outer_timeout_kills_a_hung_worker_and_recovers():
    # math-verify's own alarm set far away: only the outer guard can stop the item
    with Grader(num_workers=1, timeout=1.0, inner_timeout=600) as g:
        assert g.grade("\\boxed{x+1}", "1+x") == 1.0  # starts the worker
        start = time.perf_counter()
        assert g.grade_many([HANG, "\\boxed{2}"], ["1", "2"]) == [0.0, 1.0]
        assert time.perf_counter() - start < 2 * g.timeout + 2.0
        assert g.num_timeouts == 1
        assert g.grade_many(["\\boxed{x+1}", "\\boxed{5}"], ["1+x", "6"]) == [1.0, 0.0]


def test_reward_functions_string_and_conversational():
    completions = ["\\boxed{5}", [{"role": "assistant", "content": "hence \\boxed{6}"}], "nothing"]
    assert accuracy(completions, answer=["5", "7", "1"]) == [1.0, 0.0, 0.0]
    assert format(completions) == [1.0, 1.0, 0.0]
    assert accuracy.__name__ == "accuracy"  # TRL logs rewards/<name>/mean
    assert get_reward_funcs(["accuracy", "format"]) == [accuracy, format]
    with pytest.raises(ValueError, match="speed"):
        get_reward_funcs(["speed"])


def test_workers_exit_when_the_training_process_is_killed(tmp_path):
    """A SIGKILLed trainer must not leave math-verify workers behind."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = (
        "import os, sys, time\n"
        "from prefix_rft.rewards.grader import Grader\n"
        "g = Grader(num_workers=2, timeout=30)\n"
        "assert g.grade_many(['\\\\boxed{\\\\frac{1}{2}}', '\\\\boxed{2}'], ['0.5', '3']) == [1.0, 0.0]\n"
        "print(' '.join(str(p) for p in g._get_pool()._processes), flush=True)\n"
        "time.sleep(600)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    pids = [int(p) for p in proc.stdout.readline().split()]
    assert len(pids) == 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        try:  # a zombie (exited, not yet reaped by init) counts as gone
            with open(f"/proc/{pid}/stat") as f:
                return f.read().split()[2] != "Z"
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 15
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(p) for p in pids)
