"""Chance baselines: the accuracy a policy gets without solving anything, to print next to real accuracy.

An accuracy only means something above what guessing gives. Two guesses cover the shortcuts a small
policy finds first: always answering the most common answer of the set (``best_constant``), and
answering with the last number written in the problem (``last_number``).
"""

from __future__ import annotations

import re
from collections import Counter

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _canonical(answer: str) -> str:
    """An answer as a comparable string: numbers lose formatting (``"27.0"`` -> ``"27"``)."""
    text = answer.strip().replace(",", "")
    try:
        value = float(text)
    except ValueError:
        return text
    return str(int(value)) if value.is_integer() else str(value)


def chance_baselines(problems: list[str], answers: list[str]) -> dict[str, float]:
    """Accuracy of always giving the set's most common answer, and of copying the problem's last number."""
    if len(problems) != len(answers):
        raise ValueError(f"{len(problems)} problems but {len(answers)} answers")
    if not answers:
        return {}
    canonical = [_canonical(a) for a in answers]
    most_common = Counter(canonical).most_common(1)[0][1]
    last_hits = 0
    for problem, answer in zip(problems, canonical):
        numbers = _NUMBER.findall(problem)
        last_hits += bool(numbers) and _canonical(numbers[-1]) == answer
    return {"best_constant": most_common / len(answers), "last_number": last_hits / len(answers)}
