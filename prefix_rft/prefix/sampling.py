"""Cutting a demonstration into a prefix, in token-id space (no decode/re-encode shifts the boundary)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def prefix_length(ratio: float, demo_len: int, min_prefix_tokens: int = 1, allow_full: bool = False) -> int:
    """Prefix length ``L = floor(ratio * demo_len)`` clamped to ``[min_prefix_tokens, demo_len - 1]``.

    The upper clamp keeps at least one demonstration token for the model to write; with
    ``allow_full`` (LUFFY-style off-policy rollouts) it is ``demo_len``. A demonstration too short to
    hold ``min_prefix_tokens`` under that bound gets no prefix (0): the rollout is on-policy.
    """
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"prefix ratio {ratio} must be in [0, 1]")
    if min_prefix_tokens < 0:
        raise ValueError(f"min_prefix_tokens={min_prefix_tokens} must be >= 0")
    upper = demo_len if allow_full else demo_len - 1
    if upper < max(min_prefix_tokens, 1):
        return 0
    return min(max(math.floor(ratio * demo_len), min_prefix_tokens), upper)


def prompt_prefix_length(ratio: float, demo_len: int, budget: int, min_prefix_tokens: int = 1) -> int:
    """Prefix tokens moved into the prompt: ``floor(ratio * demo_len)`` clamped to ``[min_prefix_tokens,
    demo_len - 1]`` (at least one demonstration token left to write) and to ``budget - 1`` (at least one
    continuation token fits the trajectory budget); 0 when no prefix fits."""
    return min(prefix_length(ratio, demo_len, min_prefix_tokens), max(budget - 1, 0))


def cut_demonstration(
    demo_ids: Sequence[int], ratio: float, min_prefix_tokens: int = 1, allow_full: bool = False
) -> list[int]:
    """The first :func:`prefix_length` token ids of a tokenized demonstration."""
    return list(demo_ids[: prefix_length(ratio, len(demo_ids), min_prefix_tokens, allow_full)])
