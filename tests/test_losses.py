"""Exact values of the pure loss functions on hand-made tensors."""

from __future__ import annotations

import math

import pytest
import torch

from prefix_rft.losses import (
    aggregate_loss,
    clipped_surrogate,
    group_advantages,
    policy_shaping,
    prefix_rft_policy_loss,
    prefix_update_mask,
    sft_nll,
    shaped_surrogate,
    token_advantages,
    top_fraction_threshold,
)


def test_group_advantages_dr_grpo_no_std_scaling():
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0])
    adv = group_advantages(rewards, 4)
    assert adv.tolist() == [0.5, -0.5, -0.5, 0.5, 0.25, 0.25, 0.25, -0.75]


def test_group_advantages_on_policy_baseline_and_nan():
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, float("nan"), 1.0, 0.0, 1.0])
    hybrid = torch.tensor([False, False, False, True, False, False, False, True])
    adv = group_advantages(rewards, 4, hybrid, baseline="on_policy")
    # group 1: on-policy mean 1/3, group mean 1/2 (for the hybrid); group 2: NaN row excluded, gets 0
    expected = [2 / 3, -1 / 3, -1 / 3, 0.5, 0.0, 0.5, -0.5, 1 / 3]
    assert adv.tolist() == pytest.approx(expected)
    # a group made only of hybrids falls back to the group mean
    adv = group_advantages(torch.tensor([1.0, 0.0]), 2, torch.tensor([True, True]), baseline="on_policy")
    assert adv.tolist() == [0.5, -0.5]
    with pytest.raises(ValueError, match="baseline"):
        group_advantages(rewards, 4, baseline="median")


def test_top_fraction_threshold_counts():
    values = torch.arange(10, dtype=torch.float32)  # 0..9
    assert top_fraction_threshold(values, 0.2).item() == 8.0  # the 2 largest: 8, 9
    assert top_fraction_threshold(values, 0.2, largest=False).item() == 1.0  # 0, 1
    assert top_fraction_threshold(values[:7], 0.2).item() == 5.0  # ceil(1.4) = 2 -> 5, 6
    assert top_fraction_threshold(values[:1], 0.2).item() == 0.0  # at least one
    assert top_fraction_threshold(values[:0], 0.2) is None


# Two rows of 8 tokens. Row 0: prefix = first 5 tokens, then 2 continuation tokens, 1 pad.
# Row 1: on-policy, 6 tokens, 2 pads.
PREFIX = torch.tensor([[1, 1, 1, 1, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0]], dtype=torch.bool)
LOSS = torch.tensor([[1, 1, 1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1, 0, 0]], dtype=torch.bool)
ENT = torch.tensor([[0.1, 0.9, 0.3, 0.7, 0.2, 5.0, 6.0, 9.0], [8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 9.0, 9.0]])


def test_entropy_top_selects_exactly_the_top_prefix_tokens():
    keep = prefix_update_mask(PREFIX, LOSS, ENT, "entropy_top", keep_fraction=0.4)
    # 5 prefix tokens, 40% -> 2: entropies 0.9 and 0.7; continuation/on-policy/pad never marked
    assert keep.int().tolist() == [[0, 1, 0, 1, 0, 0, 0, 0], [0] * 8]
    keep = prefix_update_mask(PREFIX, LOSS, ENT, "entropy_top", keep_fraction=0.2)
    assert keep.int().tolist() == [[0, 1, 0, 0, 0, 0, 0, 0], [0] * 8]


def test_entropy_bottom_all_none_and_given_threshold():
    keep = prefix_update_mask(PREFIX, LOSS, ENT, "entropy_bottom", keep_fraction=0.4)
    assert keep.int().tolist() == [[1, 0, 0, 0, 1, 0, 0, 0], [0] * 8]
    assert prefix_update_mask(PREFIX, LOSS, ENT, "all").int().tolist() == [[1, 1, 1, 1, 1, 0, 0, 0], [0] * 8]
    assert not prefix_update_mask(PREFIX, LOSS, ENT, "none").any()
    # a threshold computed elsewhere (e.g. over all processes) is used as is
    keep = prefix_update_mask(PREFIX, LOSS, ENT, "entropy_top", threshold=0.25)
    assert keep.int().tolist() == [[0, 1, 1, 1, 0, 0, 0, 0], [0] * 8]


def test_ties_are_all_kept_and_empty_prefix():
    ent = torch.tensor([[0.5, 0.5, 0.5, 0.1, 0.1, 0, 0, 0], [0.0] * 8])
    keep = prefix_update_mask(PREFIX, LOSS, ent, "entropy_top", keep_fraction=0.2)
    assert keep.int().tolist() == [[1, 1, 1, 0, 0, 0, 0, 0], [0] * 8]
    empty = torch.zeros_like(PREFIX)
    assert not prefix_update_mask(empty, LOSS, ENT, "entropy_top").any()
    assert not prefix_update_mask(empty, LOSS, ENT, "random").any()
    with pytest.raises(ValueError, match="entropy_top"):
        prefix_update_mask(PREFIX, LOSS, ENT, "middle")


def test_random_mode_picks_exactly_k_prefix_tokens_reproducibly():
    prefix = torch.zeros(4, 16, dtype=torch.bool)
    prefix[:, :10] = True
    loss = torch.ones(4, 16, dtype=torch.bool)
    a = prefix_update_mask(prefix, loss, None, "random", 0.2, generator=torch.Generator().manual_seed(1))
    b = prefix_update_mask(prefix, loss, None, "random", 0.2, generator=torch.Generator().manual_seed(1))
    assert int(a.sum()) == 8  # ceil(0.2 * 40)
    assert not (a & ~prefix).any()
    assert torch.equal(a, b)


def test_token_advantages_zero_only_on_dropped_prefix_tokens():
    keep = torch.tensor([[0, 1, 0, 1, 0, 0, 0, 0], [0] * 8], dtype=torch.bool)
    adv = token_advantages(torch.tensor([2.0, -1.0]), PREFIX, keep)
    assert adv.tolist() == [[0, 2, 0, 2, 0, 2, 2, 2], [-1.0] * 8]


def test_clipped_surrogate_by_hand():
    logps = torch.log(torch.tensor([[1.5, 0.5, 1.1, 0.7]]))
    old = torch.zeros(1, 4)
    adv = torch.tensor([[1.0, -1.0, -2.0, 1.0]])
    loss, stats = clipped_surrogate(logps, old, adv, 0.2, 0.2)
    # ratio 1.5, A>0: min(1.5, 1.2) = 1.2 -> -1.2; ratio 0.5, A<0: min(-0.5, -0.8) = -0.8 -> 0.8;
    # ratio 1.1, A=-2: min(-2.2, -2.2) -> 2.2; ratio 0.7, A=1: min(0.7, 0.8) = 0.7 -> -0.7
    assert loss[0].tolist() == pytest.approx([-1.2, 0.8, 2.2, -0.7])
    assert stats["is_high_clipped"].tolist() == [[True, False, False, False]]
    assert stats["is_low_clipped"].tolist() == [[False, True, False, False]]


def test_aggregations():
    per_token = torch.tensor([[1.0, 2.0, 3.0, 0.0], [4.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]])
    assert aggregate_loss(per_token, mask, "dr_grpo", max_completion_length=8).item() == pytest.approx(
        10 / 16
    )
    assert aggregate_loss(per_token, mask, "grpo").item() == pytest.approx((2.0 + 4.0) / 2)
    assert aggregate_loss(per_token, mask, "bnpo").item() == pytest.approx(10 / 4)
    with pytest.raises(ValueError, match="max_completion_length"):
        aggregate_loss(per_token, mask, "dr_grpo")


def test_no_prefix_equals_trl_dr_grpo_formula():
    torch.manual_seed(0)
    logps, old = torch.randn(3, 5) - 2, torch.randn(3, 5) - 2
    adv = torch.tensor([0.5, -1.0, 0.25])
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    none = torch.zeros(3, 5, dtype=torch.bool)
    loss, _ = prefix_rft_policy_loss(logps, old, adv, mask, none, none, max_completion_length=7)
    # TRL's dr_grpo written out: -min(r A, clip(r) A), masked sum / (B * max_completion_length)
    r = torch.exp(logps - old)
    a = adv.unsqueeze(1)
    per_token = -torch.min(r * a, torch.clamp(r, 0.8, 1.2) * a)
    assert loss.item() == pytest.approx(((per_token * mask).sum() / (3 * 7)).item(), abs=1e-7)


def test_policy_shaping_value_gradient_and_no_clipping():
    logps = torch.log(torch.tensor([0.1, 0.5, 0.9])).requires_grad_()
    f = policy_shaping(logps, gamma=0.1)
    p = torch.tensor([0.1, 0.5, 0.9])
    assert f.tolist() == pytest.approx((p / (p + 0.1)).tolist())
    f.sum().backward()
    assert logps.grad.tolist() == pytest.approx((0.1 * p / (p + 0.1) ** 2).tolist())
    # shaped tokens are never clipped even when the ratio to an old policy would be huge
    lp = torch.tensor([[math.log(0.9)]])
    assert shaped_surrogate(lp, torch.tensor([[2.0]])).item() == pytest.approx(-2 * 0.9 / 1.0)
    loss, stats = prefix_rft_policy_loss(
        lp,
        torch.tensor([[-20.0]]),
        torch.tensor([2.0]),
        torch.ones(1, 1),
        torch.ones(1, 1),
        torch.ones(1, 1),
        off_policy_mask=torch.ones(1, 1, dtype=torch.bool),
        max_completion_length=1,
    )
    assert loss.item() == pytest.approx(-1.8)
    assert stats["clip_ratio/high_mean"].item() == 0.0


def test_full_prefix_rft_loss_by_hand():
    # one row, 4 tokens: 2 prefix tokens (first kept, second dropped), 2 continuation tokens
    logps = torch.log(torch.tensor([[1.5, 1.0, 0.5, 1.0]]))
    old = torch.zeros(1, 4)
    prefix = torch.tensor([[1, 1, 0, 0]], dtype=torch.bool)
    keep = torch.tensor([[1, 0, 0, 0]], dtype=torch.bool)
    loss_mask = torch.ones(1, 4, dtype=torch.bool)
    weights = torch.tensor([[3.0, 3.0, 0.5, 2.0]])  # vLLM IS ratios; prefix tokens must get 1
    loss, stats = prefix_rft_policy_loss(
        logps,
        old,
        torch.tensor([1.0]),
        loss_mask,
        prefix,
        keep,
        importance_weights=weights,
        max_completion_length=5,
    )
    # token losses: -1.2 (clipped, weight 1), 0 (dropped), -0.5*0.5, -1.0*2
    assert loss.item() == pytest.approx((-1.2 + 0.0 - 0.25 - 2.0) / 5)
    assert stats["prefix/num_tokens"].item() == 2
    assert stats["prefix/update_fraction"].item() == 0.5
    assert stats["clip_ratio/high_mean"].item() == pytest.approx(0.25)


def test_sft_nll_reductions():
    logps = torch.tensor([[-1.0, -2.0, 0.0], [-4.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert sft_nll(logps, mask).item() == pytest.approx(7 / 3)
    assert sft_nll(logps, mask, "sequence_mean").item() == pytest.approx((1.5 + 4.0) / 2)
