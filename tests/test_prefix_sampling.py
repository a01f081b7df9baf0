"""Prefix cuts at the clamps and the prefix-ratio schedulers' values."""

from __future__ import annotations

import pytest
import torch

from prefix_rft.prefix.sampling import cut_demonstration, prefix_length
from prefix_rft.prefix.schedulers import build_scheduler, scheduler_from_state, step_generator


@pytest.mark.parametrize(
    ("ratio", "demo_len", "min_tokens", "allow_full", "expected"),
    [
        (0.5, 10, 1, False, 5),
        (0.55, 10, 1, False, 5),  # floor
        (0.0, 10, 1, False, 1),  # lower clamp
        (0.0, 10, 3, False, 3),
        (1.0, 10, 1, False, 9),  # upper clamp keeps one token to write
        (0.99, 10, 1, False, 9),
        (1.0, 10, 1, True, 10),  # LUFFY-style full demonstration
        (0.5, 1, 1, False, 0),  # too short for a prefix: on-policy
        (0.5, 3, 3, False, 0),
        (0.5, 0, 1, True, 0),
    ],
)
def test_prefix_length_clamps(ratio, demo_len, min_tokens, allow_full, expected):
    assert prefix_length(ratio, demo_len, min_tokens, allow_full) == expected


def test_cut_demonstration_is_token_exact_and_validates():
    ids = [11, 12, 13, 14, 15, 16, 17, 18]
    assert cut_demonstration(ids, 0.5) == [11, 12, 13, 14]
    assert cut_demonstration(ids, 1.0) == ids[:7]
    with pytest.raises(ValueError, match="ratio"):
        prefix_length(1.5, 10)


def test_cosine_scheduler_paper_values():
    s = build_scheduler("cosine", high=0.95, low_start=0.95, low_end=0.05, decay_steps=500)
    assert s.bounds(0) == pytest.approx((0.95, 0.95))
    assert s.bounds(250) == pytest.approx((0.5, 0.95))
    assert s.bounds(500) == pytest.approx((0.05, 0.95))
    assert s.bounds(1000) == pytest.approx((0.05, 0.95))
    assert s.mean(500) == pytest.approx(0.5)
    assert s.bounds(125)[0] == pytest.approx(0.05 + 0.9 * 0.5 * (1 + 2**-0.5))


def test_linear_uniform_constant():
    lin = build_scheduler("linear", high=0.95, low_start=0.95, low_end=0.05, decay_steps=500)
    assert lin.bounds(250) == pytest.approx((0.5, 0.95))
    assert lin.bounds(100) == pytest.approx((0.77, 0.95))
    assert build_scheduler("uniform", low=0.1, high=0.6).bounds(123) == (0.1, 0.6)
    assert build_scheduler("constant", value=0.3).sample(7, 3) == [0.3, 0.3, 0.3]


def test_sampling_is_bounded_and_reproducible():
    s = build_scheduler("cosine", decay_steps=100)
    draws = s.sample(50, 1000, generator=step_generator(0, 50))
    low, high = s.bounds(50)
    assert all(low <= d <= high for d in draws)
    assert draws == s.sample(50, 1000, generator=step_generator(0, 50))
    assert draws != s.sample(50, 1000, generator=step_generator(0, 51))
    assert sum(draws) / len(draws) == pytest.approx(s.mean(50), abs=0.02)
    assert isinstance(step_generator(1, 2, 3), torch.Generator)


def test_state_round_trip_and_errors():
    for s in (
        build_scheduler("cosine", decay_steps=7),
        build_scheduler("linear", high=0.9, low_start=0.8, low_end=0.1, decay_steps=3),
        build_scheduler("uniform", low=0.2, high=0.4),
        build_scheduler("constant", value=0.6),
    ):
        again = scheduler_from_state(s.state_dict())
        assert type(again) is type(s) and again.state_dict() == s.state_dict()
        assert again.bounds(2) == s.bounds(2)
    with pytest.raises(ValueError, match="decay_steps"):
        build_scheduler("cosine", decay_steps=0)
    with pytest.raises(ValueError, match="scheduler.high"):
        build_scheduler("uniform", low=0.2, high=1.2)
    with pytest.raises(ValueError, match="low_start"):
        build_scheduler("cosine", high=0.5, low_start=0.9)
    with pytest.raises(ValueError, match="expected one of"):
        build_scheduler("step")
