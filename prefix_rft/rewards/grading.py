"""``grade(style, completions, golds)``: the one grading entry point of rewards, evaluation and held-out accuracy.

Answer styles:

* ``boxed``: math. The prediction is the last ``\\boxed{}``; it is correct when math-verify finds it
  equivalent to the reference (through :class:`~prefix_rft.rewards.grader.Grader`: strings that match
  are scored at once, the rest in time-bounded worker processes), as written or after the answer-form
  rewrites of :mod:`~prefix_rft.rewards.answer_forms` (which only add matches).
  Several boxes: when the reference lists several answers (``{1,2,3}``, ``1, 2, 3``, ``(1,2),(2,1)``)
  and the completion ends with several boxes parted only by commas, "and"/"or" or ``$``
  (``\\boxed{1}, \\boxed{2}, \\boxed{3}``), those boxes together are the prediction, compared as one
  list (each answer once, in any order where math-verify reads the list as a set). Against a reference
  with one answer, only the last box counts: hedging with several boxes earns nothing extra.
* ``choice``: multiple choice (ARC-c, GPQA-diamond, MMLU-Pro). The prediction is a letter (see
  :func:`extract_choice`); it is correct when it equals the reference letter.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from prefix_rft.rewards.grader import Grader, extract_answer, get_default_grader

ANSWER_STYLES = ("boxed", "choice")


class Graded(NamedTuple):
    """One graded completion: the extracted prediction (None if there is none) and its score (1.0 or 0.0)."""

    pred: str | None
    score: float


_CHOICE_PATTERNS = (
    re.compile(r"ANSWER\s*[:：]\s*\(?\$?([A-J])\b", re.I),
    re.compile(r"answer is\s*[:：]?\s*\(?\$?(?:\\text\{)?([A-J])\b"),
)


def extract_choice(text: str) -> str | None:
    """The chosen letter: the last ``\\boxed{}`` (``C``, ``(C)``, ``\\text{C}``), else ``ANSWER: C`` or ``answer is (C)``."""
    boxed = extract_answer(text)
    if boxed is not None:
        # Unwrap \text{...}-style wrappers and a leading "(", then expect the letter alone or followed
        # by punctuation/text ("C", "(C)", "C. 42").
        inner = (
            re.sub(r"\\(?:text|textbf|mathrm|mathbf)\{([^{}]*)\}", r"\1", boxed).strip().lstrip("(").strip()
        )
        m = re.match(r"([A-Ja-j])(?:$|[\s.:)])", inner)
        if m:
            return m.group(1).upper()
    for pattern in _CHOICE_PATTERNS:
        found = pattern.findall(text)
        if found:
            return found[-1].upper()
    return None


def grade(
    style: str, completions: Sequence[str], golds: Sequence[str], grader: Grader | None = None
) -> list[Graded]:
    """Grade ``completions`` against reference answers ``golds`` in one answer ``style``.

    ``grader``: the math-verify worker pool for ``boxed`` (default: the process-wide one).
    """
    if len(completions) != len(golds):
        raise ValueError(f"{len(completions)} completions but {len(golds)} reference answers")
    if style == "choice":
        preds = [extract_choice(text) for text in completions]
        return [
            Graded(p, 1.0 if p is not None and p == str(g).strip().upper() else 0.0)
            for p, g in zip(preds, golds)
        ]
    if style != "boxed":
        raise ValueError(f"answer style {style!r} is not valid; expected one of {list(ANSWER_STYLES)}")
    grader = grader or get_default_grader()
    scores = grader.grade_many(list(completions), [str(g) for g in golds])
    return [Graded(extract_answer(text), score) for text, score in zip(completions, scores)]
