"""Pure tensor functions of Prefix-RFT and its baselines (no trainer state, so they are testable alone).

Shapes: ``(B, T)`` is rows x completion tokens; masks are bool or 0/1 tensors of that shape.
``loss_mask`` marks real completion tokens; ``prefix_mask`` marks the demonstration tokens that a
hybrid rollout starts with (a subset of ``loss_mask``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

PREFIX_UPDATE_MODES = ("entropy_top", "entropy_bottom", "random", "all", "none")
ADVANTAGE_BASELINES = ("group", "on_policy")


def group_advantages(
    rewards: Tensor, num_generations: int, is_hybrid: Tensor | None = None, baseline: str = "group"
) -> Tensor:
    """Dr. GRPO advantages: reward minus its group's mean reward, with no std scaling.

    Rows come in groups of ``num_generations`` consecutive rollouts of one prompt. With
    ``baseline="on_policy"`` the on-policy rows of a group are centred on the mean of the on-policy
    rows only (hybrid rows keep the whole-group mean; a group without on-policy rows uses the group
    mean). NaN rewards (unscorable rollouts) are left out of the means and get advantage 0.
    """
    if baseline not in ADVANTAGE_BASELINES:
        raise ValueError(
            f"advantage baseline {baseline!r} is not valid; expected one of {list(ADVANTAGE_BASELINES)}"
        )
    grouped = rewards.float().view(-1, num_generations)
    group_mean = torch.nanmean(grouped, dim=1, keepdim=True).expand_as(grouped)
    centre = group_mean
    if baseline == "on_policy" and is_hybrid is not None:
        hybrid = is_hybrid.bool().view(-1, num_generations)
        on_policy_rewards = grouped.masked_fill(hybrid, float("nan"))
        on_policy_mean = torch.nanmean(on_policy_rewards, dim=1, keepdim=True).expand_as(grouped)
        on_policy_mean = torch.where(torch.isnan(on_policy_mean), group_mean, on_policy_mean)
        centre = torch.where(hybrid, group_mean, on_policy_mean)
    return torch.nan_to_num(grouped - centre, nan=0.0).view(-1)


def top_fraction_threshold(values: Tensor, fraction: float, largest: bool = True) -> Tensor | None:
    """The k-th largest (or smallest) of ``values`` with ``k = ceil(fraction * n)``; None if nothing to keep."""
    n = values.numel()
    if n == 0 or fraction <= 0:
        return None
    k = min(max(math.ceil(fraction * n - 1e-9), 1), n)  # the epsilon keeps 0.2 * 10 at exactly 2
    return torch.topk(values.flatten().float(), k, largest=largest).values[-1]


def prefix_update_mask(
    prefix_mask: Tensor,
    loss_mask: Tensor,
    entropies: Tensor | None,
    mode: str,
    keep_fraction: float = 0.2,
    threshold: Tensor | float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Which prefix tokens keep their advantage (bool ``(B, T)``); never a non-prefix or padded token.

    * ``entropy_top``: prefix tokens whose entropy is >= the top-``keep_fraction`` threshold (the
      paper's rule, k = 20%). ``threshold`` is the one computed over all processes; without it, it is
      computed over this batch. Ties at the threshold are all kept.
    * ``entropy_bottom``: the lowest-entropy ones, likewise.
    * ``random``: exactly ``ceil(keep_fraction * n)`` prefix tokens drawn uniformly with ``generator``.
    * ``all`` / ``none``: every / no prefix token.
    """
    if mode not in PREFIX_UPDATE_MODES:
        raise ValueError(f"prefix_update={mode!r} is not valid; expected one of {list(PREFIX_UPDATE_MODES)}")
    candidates = prefix_mask.bool() & loss_mask.bool()
    if mode == "all":
        return candidates
    if mode == "none" or not candidates.any():
        return torch.zeros_like(candidates)
    if mode == "random":
        idx = candidates.flatten().nonzero().squeeze(1)
        k = min(max(math.ceil(keep_fraction * idx.numel() - 1e-9), 1), idx.numel())
        chosen = idx[torch.randperm(idx.numel(), generator=generator)[:k].to(idx.device)]
        keep = torch.zeros(candidates.numel(), dtype=torch.bool, device=candidates.device)
        keep[chosen] = True
        return keep.view_as(candidates)
    if entropies is None:
        raise ValueError(f"prefix_update={mode!r} needs per-token entropies")
    largest = mode == "entropy_top"
    if threshold is None:
        threshold = top_fraction_threshold(entropies[candidates], keep_fraction, largest=largest)
        if threshold is None:
            return torch.zeros_like(candidates)
    selected = entropies >= threshold if largest else entropies <= threshold
    return selected & candidates


def token_advantages(advantages: Tensor, prefix_mask: Tensor, keep_mask: Tensor) -> Tensor:
    """Per-token advantages: the row's advantage everywhere except on prefix tokens not kept (0 there)."""
    adv = advantages.unsqueeze(1) if advantages.dim() == 1 else advantages
    adv = adv.expand(prefix_mask.shape)
    dropped = prefix_mask.bool() & ~keep_mask.bool()
    return adv.masked_fill(dropped, 0.0)


def clipped_surrogate(
    logps: Tensor, old_logps: Tensor, advantages: Tensor, epsilon_low: float = 0.2, epsilon_high: float = 0.2
) -> tuple[Tensor, dict[str, Tensor]]:
    """PPO per-token loss ``-min(r A, clip(r, 1 - eps_low, 1 + eps_high) A)`` with ``r = exp(logps - old)``."""
    ratio = torch.exp(logps - old_logps)
    clipped = torch.clamp(ratio, 1 - epsilon_low, 1 + epsilon_high)
    loss = -torch.min(ratio * advantages, clipped * advantages)
    stats = {
        "ratio": ratio.detach(),
        "is_low_clipped": (ratio < 1 - epsilon_low) & (advantages < 0),
        "is_high_clipped": (ratio > 1 + epsilon_high) & (advantages > 0),
    }
    return loss, stats


def policy_shaping(logps: Tensor, gamma: float = 0.1) -> Tensor:
    """LUFFY's regularized importance weight ``f(p) = p / (p + gamma)``, ``p = exp(logps)``.

    The behaviour policy of a demonstration is taken as 1. ``df/dlogp = gamma p / (p + gamma)^2``
    is largest for low-probability tokens, which is the point: it keeps them from being ignored.
    """
    p = torch.exp(logps)
    return p / (p + gamma)


def shaped_surrogate(logps: Tensor, advantages: Tensor, gamma: float = 0.1) -> Tensor:
    """Per-token loss of off-policy (demonstration) tokens: ``-f(p) A``, no clipping, no old-policy ratio."""
    return -policy_shaping(logps, gamma) * advantages


def aggregate_loss(
    per_token_loss: Tensor,
    loss_mask: Tensor,
    loss_type: str = "dr_grpo",
    max_completion_length: int | None = None,
) -> Tensor:
    """Reduce per-token losses the way TRL's loss type of the same name does.

    ``dr_grpo``: ``sum / (B * max_completion_length)`` (a constant normaliser: no length bias);
    ``grpo``: mean over rows of per-row token means; ``bnpo``/``token_mean``: ``sum / #tokens``.
    """
    mask = loss_mask.to(per_token_loss.dtype)
    total = (per_token_loss * mask).sum()
    if loss_type == "dr_grpo":
        if max_completion_length is None:
            raise ValueError("loss_type='dr_grpo' needs max_completion_length")
        return total / (per_token_loss.size(0) * max_completion_length)
    if loss_type == "grpo":
        return ((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    if loss_type in ("bnpo", "token_mean"):
        return total / mask.sum().clamp(min=1.0)
    raise ValueError(f"loss_type={loss_type!r} is not valid; expected dr_grpo, grpo, bnpo or token_mean")


def sft_nll(logps: Tensor, mask: Tensor, reduction: str = "token_mean") -> Tensor:
    """Negative log-likelihood of demonstration tokens (``token_mean`` or ``sequence_mean``)."""
    m = mask.to(logps.dtype)
    if reduction == "token_mean":
        return -(logps * m).sum() / m.sum().clamp(min=1.0)
    if reduction == "sequence_mean":
        return (-(logps * m).sum(-1) / m.sum(-1).clamp(min=1.0)).mean()
    raise ValueError(f"reduction={reduction!r} is not valid; expected token_mean or sequence_mean")


def weighted_nll_sum(logps: Tensor, mask: Tensor, weights: Tensor | None = None) -> Tensor:
    """``sum(w_t * -log p_t)`` over ``mask``, ``w`` without gradient (None: every weight 1). The supervised
    term of RL-with-SFT, CHORD and HPT before its normaliser: the trainers divide it by the token count of
    the whole optimizer step (:func:`~prefix_rft.trainers.demonstrations.step_token_normalizer`)."""
    m = mask.to(logps.dtype)
    w = torch.ones_like(logps) if weights is None else weights.detach()
    return (w * -(logps * m)).sum()


def weighted_token_mean_nll(logps: Tensor, mask: Tensor, weights: Tensor | None = None) -> Tensor:
    """:func:`weighted_nll_sum` divided by the number of tokens in ``mask``: the supervised term of one
    batch on its own."""
    return weighted_nll_sum(logps, mask, weights) / mask.to(logps.dtype).sum().clamp(min=1.0)


def prefix_rft_policy_loss(
    logps: Tensor,
    old_logps: Tensor,
    advantages: Tensor,
    loss_mask: Tensor,
    prefix_mask: Tensor,
    keep_mask: Tensor,
    *,
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.2,
    loss_type: str = "dr_grpo",
    max_completion_length: int | None = None,
    off_policy_mask: Tensor | None = None,
    shaping_gamma: float = 0.1,
    importance_weights: Tensor | None = None,
    token_weights: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """The policy loss of one micro-batch (Prefix-RFT; LUFFY with ``off_policy_mask``).

    1. Per-token advantages: the row's advantage, zeroed on prefix tokens outside ``keep_mask``.
    2. Per-token loss: PPO clipped surrogate; on ``off_policy_mask`` tokens (full demonstrations)
       the shaped surrogate ``-f(p) A`` instead, never clipped.
    3. ``importance_weights`` (vLLM sampling correction, ``(B, T)`` or ``(B, 1)``) multiply the loss,
       except on prefix and off-policy tokens, which the inference engine did not sample (weight 1).
    4. ``token_weights`` (``(B, T)``, no gradient: an algorithm's per-token weighting such as SRFT's
       entropy weight of positive samples) multiply the per-token loss.
    5. Reduction by ``loss_type`` over ``loss_mask``.

    Returns the loss and scalar statistics (clip fractions over ``loss_mask``, prefix counts).
    """
    loss_mask = loss_mask.bool()
    prefix_mask = prefix_mask.bool() & loss_mask
    adv = token_advantages(advantages, prefix_mask, keep_mask)
    per_token, clip = clipped_surrogate(logps, old_logps, adv, epsilon_low, epsilon_high)
    not_sampled = prefix_mask
    if off_policy_mask is not None:
        off = off_policy_mask.bool()
        per_token = torch.where(off, shaped_surrogate(logps, adv, shaping_gamma), per_token)
        clip = {k: v & ~off if v.dtype == torch.bool else v for k, v in clip.items()}
        not_sampled = not_sampled | off
    if importance_weights is not None:
        weights = torch.where(
            not_sampled, torch.ones_like(per_token), importance_weights.expand_as(per_token)
        )
        per_token = per_token * weights
    if token_weights is not None:
        per_token = per_token * token_weights.detach()
    loss = aggregate_loss(per_token, loss_mask, loss_type, max_completion_length)

    m = loss_mask.float()
    n_tokens = m.sum().clamp(min=1.0)
    low = (clip["is_low_clipped"].float() * m).sum() / n_tokens
    high = (clip["is_high_clipped"].float() * m).sum() / n_tokens
    n_prefix = prefix_mask.sum()
    n_kept = (keep_mask.bool() & prefix_mask).sum()
    stats = {
        "clip_ratio/low_mean": low,
        "clip_ratio/high_mean": high,
        "clip_ratio/region_mean": ((clip["is_low_clipped"] | clip["is_high_clipped"]).float() * m).sum()
        / n_tokens,
        "prefix/num_tokens": n_prefix.float(),
        "prefix/update_fraction": n_kept.float() / n_prefix.clamp(min=1).float(),
    }
    return loss, stats
