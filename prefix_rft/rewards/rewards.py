"""Reward functions with TRL's signature ``f(completions, **columns) -> list[float]``, and how the
``reward`` group names them: a registered name or an import path, with parameters.

TRL passes every column of a training row (``answer``, and any ``data.extra_columns``) as a keyword
argument, so a reward that needs another column only needs that column kept.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping
from typing import Any

from prefix_rft.rewards.grader import extract_answer
from prefix_rft.rewards.grading import grade


def _text(completion) -> str:
    # Conversational completions are lists of messages; the answer is in the last one.
    return completion[-1]["content"] if isinstance(completion, list) else completion


def accuracy(completions, answer, style: str = "boxed", **kwargs) -> list[float]:
    """1.0 when the completion's answer matches the reference ``answer``.

    ``style``: ``boxed`` (the last ``\\boxed{}``, equivalence by math-verify) or ``choice`` (a letter,
    exact match); see :func:`prefix_rft.rewards.grading.grade`.
    """
    return [g.score for g in grade(style, [_text(c) for c in completions], [str(a) for a in answer])]


def format(completions, **kwargs) -> list[float]:  # noqa: A001 - TRL logs rewards by __name__
    """1.0 when the completion ends its reasoning with a non-empty ``\\boxed{...}`` answer."""
    return [1.0 if extract_answer(_text(c)) else 0.0 for c in completions]


accuracy_reward = accuracy
format_reward = format

REWARD_FUNCS: dict[str, Callable] = {"accuracy": accuracy, "format": format}


def resolve_reward(name: str) -> Callable:
    """A registered reward, or the function at the import path ``package.module:function``."""
    if name in REWARD_FUNCS:
        return REWARD_FUNCS[name]
    if ":" not in name:
        raise ValueError(
            f"unknown reward functions [{name!r}]; expected names from {sorted(REWARD_FUNCS)} or an import "
            "path package.module:function"
        )
    module_name, _, attr = name.partition(":")
    try:
        func = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"reward function {name!r} cannot be imported: {err}") from err
    if not callable(func):
        raise ValueError(f"reward function {name!r} is not callable")
    return func


def with_params(func: Callable, params: Mapping[str, Any]) -> Callable:
    """``func`` with ``params`` bound as keyword arguments, keeping its ``__name__`` (TRL logs rewards by it)."""
    if not params:
        return func
    bound = functools.partial(func, **dict(params))
    return functools.update_wrapper(bound, func)


def get_reward_funcs(specs: list) -> list[Callable]:
    """Reward functions from names or ``reward.funcs`` entries ({name, weight, params}).

    Unknown names, failed imports and parameters the function does not take raise ValueError naming them.
    """
    funcs = []
    for spec in specs:
        name = spec if isinstance(spec, str) else spec.name
        params = {} if isinstance(spec, str) else dict(spec.params or {})
        func = resolve_reward(name)
        _check_params(name, func, params)
        funcs.append(with_params(func, params))
    return funcs


def _check_params(name: str, func: Callable, params: Mapping[str, Any]) -> None:
    import inspect

    # Named parameters only: a typo must not vanish into the function's **kwargs.
    accepted = [
        k
        for k, p in inspect.signature(func).parameters.items()
        if p.kind is not inspect.Parameter.VAR_KEYWORD
    ]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ValueError(f"reward {name} takes no parameter {unknown}; its parameters: {sorted(accepted)}")
