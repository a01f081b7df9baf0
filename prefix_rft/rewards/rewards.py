"""Reward functions with TRL's signature ``f(completions, **columns) -> list[float]``."""

from __future__ import annotations

from collections.abc import Callable

from prefix_rft.rewards.grader import extract_answer, get_default_grader


def _text(completion) -> str:
    # Conversational completions are lists of messages; the answer is in the last one.
    return completion[-1]["content"] if isinstance(completion, list) else completion


def accuracy(completions, answer, **kwargs) -> list[float]:
    """1.0 when the completion's last ``\\boxed{}`` is equivalent to the reference ``answer`` (math-verify)."""
    return get_default_grader().grade_many([_text(c) for c in completions], [str(a) for a in answer])


def format(completions, **kwargs) -> list[float]:  # noqa: A001 - TRL logs rewards by __name__
    """1.0 when the completion ends its reasoning with a non-empty ``\\boxed{...}`` answer."""
    return [1.0 if extract_answer(_text(c)) else 0.0 for c in completions]


accuracy_reward = accuracy
format_reward = format

REWARD_FUNCS: dict[str, Callable] = {"accuracy": accuracy, "format": format}


def get_reward_funcs(names: list[str]) -> list[Callable]:
    """Reward functions by name; unknown names raise ValueError listing the valid ones."""
    unknown = [n for n in names if n not in REWARD_FUNCS]
    if unknown:
        raise ValueError(f"unknown reward functions {unknown}; expected names from {sorted(REWARD_FUNCS)}")
    return [REWARD_FUNCS[n] for n in names]
