"""An offline synthetic math task: short arithmetic word problems with worked demonstrations.

Difficulty is the number of arithmetic steps. A start amount of 10-89 changes by 1-9 per step and stays
within 10-99, so every answer is a two-digit number spread over ~90 values: no answer value covers more than
~2% of the problems of any level, and the answer never equals a number written in the problem (each step
changes the amount). A model therefore cannot score by guessing a constant or copying the last number; it
has to carry out every step, and its working can be checked step by step (:func:`check_working`).
"""

from __future__ import annotations

import random
import re

NAMES = ("Ann", "Ben", "Cal", "Dee", "Eva", "Fox", "Gus", "Ivy")
ITEMS = ("apples", "pens", "coins", "cards", "books", "eggs")
START_RANGE = (10, 89)
VALUE_RANGE = (10, 99)
MAX_CHANGE = 9

_START = re.compile(r"^\w+ has (\d+) ")
_CHANGE = re.compile(r"(gets|gives away) (\d+)")
_EQUATION = re.compile(r"(\d+)\s*([+-])\s*(\d+)\s*=\s*(\d+)")


def _problem(rng: random.Random, num_steps: int) -> dict:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    value = rng.randint(*START_RANGE)
    sentences = [f"{name} has {value} {item}."]
    work = []
    for _ in range(num_steps):
        amount = rng.randint(1, MAX_CHANGE)
        if value + amount > VALUE_RANGE[1]:
            add = False
        elif value - amount < VALUE_RANGE[0]:
            add = True
        else:
            add = rng.random() < 0.5
        if add:
            sentences.append(f"{name} gets {amount} more.")
            work.append(f"{value}+{amount}={value + amount}.")
            value += amount
        else:
            sentences.append(f"{name} gives away {amount}.")
            work.append(f"{value}-{amount}={value - amount}.")
            value -= amount
    sentences.append(f"How many {item} does {name} have?")
    return {
        "problem": " ".join(sentences),
        "answer": str(value),
        "solution": " ".join(work) + f" \\boxed{{{value}}}",
        "num_steps": num_steps,
    }


def generate_problems(n: int, seed: int, min_steps: int = 1, max_steps: int = 4) -> list[dict]:
    """``n`` problems ({problem, answer, solution, num_steps}), identical for the same arguments.

    ``num_steps`` is drawn uniformly from ``[min_steps, max_steps]``; every solution ends in
    ``\\boxed{answer}``; answers are integers in 10-99.
    """
    if n < 0:
        raise ValueError(f"number of problems n={n} must be >= 0")
    if not 1 <= min_steps <= max_steps:
        raise ValueError(f"steps range [{min_steps}, {max_steps}] must satisfy 1 <= min_steps <= max_steps")
    rng = random.Random(seed)
    return [_problem(rng, rng.randint(min_steps, max_steps)) for _ in range(n)]


def generate_mixture(n: int, seed: int, weights: dict[int, float]) -> list[dict]:
    """``n`` problems whose step counts follow ``weights`` ({num_steps: weight}), seeded and shuffled.

    Counts are allotted by largest remainder, so the mixture is exact rather than sampled.
    """
    if not weights or any(k < 1 or w < 0 for k, w in weights.items()) or sum(weights.values()) <= 0:
        raise ValueError(f"weights={weights} must map step counts >= 1 to non-negative weights, not all 0")
    total = sum(weights.values())
    exact = {k: n * w / total for k, w in weights.items()}
    counts = {k: int(v) for k, v in exact.items()}
    for k in sorted(exact, key=lambda k: counts[k] - exact[k])[: n - sum(counts.values())]:
        counts[k] += 1
    rng = random.Random(seed)
    rows = [_problem(rng, k) for k in sorted(counts) for _ in range(counts[k])]
    rng.shuffle(rows)
    return rows


def parse_problem(problem: str) -> tuple[int, list[int]] | None:
    """(start amount, signed changes) of a synthetic problem's text, or None if it is not one."""
    start = _START.search(problem)
    if start is None:
        return None
    changes = [int(n) if verb == "gets" else -int(n) for verb, n in _CHANGE.findall(problem)]
    return int(start.group(1)), changes


def check_working(problem: str, completion: str) -> dict[str, bool]:
    """How a completion's working compares with the problem's steps (before its final answer).

    ``steps_ok``: it writes exactly as many equations as the problem has steps; ``arithmetic_ok``: every
    equation it writes is arithmetically right (and it writes at least one); ``faithful``: the equations are
    exactly the problem's chain (start amount, each change in order, each result carried to the next).
    A right final answer without ``faithful`` working is a guess or a shortcut.
    """
    parsed = parse_problem(problem)
    body = completion.split("\\boxed", 1)[0]
    equations = [(int(a), op, int(b), int(c)) for a, op, b, c in _EQUATION.findall(body)]
    arithmetic_ok = bool(equations) and all((a + b if op == "+" else a - b) == c for a, op, b, c in equations)
    if parsed is None:
        return {"steps_ok": False, "arithmetic_ok": arithmetic_ok, "faithful": False}
    value, changes = parsed
    expected = []
    for change in changes:
        expected.append((value, "+" if change > 0 else "-", abs(change), value + change))
        value += change
    return {
        "steps_ok": len(equations) == len(changes),
        "arithmetic_ok": arithmetic_ok,
        "faithful": equations == expected,
    }
