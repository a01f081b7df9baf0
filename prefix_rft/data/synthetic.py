"""An offline synthetic math task: short arithmetic word problems with worked demonstrations.

Difficulty is the number of arithmetic steps. A tiny character-level model learns one- and two-step
problems in a short warm start but errs on long chains, because each step's mistakes compound: the
regime in which the paper argues demonstrations help.
"""

from __future__ import annotations

import random

NAMES = ("Ann", "Ben", "Cal", "Dee", "Eva", "Fox", "Gus", "Ivy")
ITEMS = ("apples", "pens", "coins", "cards", "books", "eggs")


def _problem(rng: random.Random, num_steps: int) -> dict:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    value = rng.randint(1, 9)
    sentences = [f"{name} has {value} {item}."]
    work = []
    for _ in range(num_steps):
        if value > 0 and rng.random() < 0.5:
            amount = rng.randint(1, min(value, 9))
            sentences.append(f"{name} gives away {amount}.")
            work.append(f"{value}-{amount}={value - amount}.")
            value -= amount
        else:
            amount = rng.randint(1, 9)
            sentences.append(f"{name} gets {amount} more.")
            work.append(f"{value}+{amount}={value + amount}.")
            value += amount
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
    ``\\boxed{answer}``; answers are non-negative integers.
    """
    if n < 0:
        raise ValueError(f"number of problems n={n} must be >= 0")
    if not 1 <= min_steps <= max_steps:
        raise ValueError(f"steps range [{min_steps}, {max_steps}] must satisfy 1 <= min_steps <= max_steps")
    rng = random.Random(seed)
    return [_problem(rng, rng.randint(min_steps, max_steps)) for _ in range(n)]
