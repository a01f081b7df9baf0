"""``SRFTTrainer``: SRFT (Fu et al., arXiv 2506.19767), SFT and RL in one stage with entropy-aware weights.

Built, as SRFT is, on LUFFY (:class:`~prefix_rft.trainers.prefix_rft.PrefixRFTTrainer` with ratio 1): one
rollout of each group is the whole demonstration, advantages are taken over the whole group, and the
demonstration's tokens get the off-policy RL loss (LUFFY's shaped ``-f(p) A``). SRFT adds two weights, both
from the policy's per-token entropy ``H_t`` and both without gradient:

    L = L_RL(demonstrations) + L_RL(rollouts, positive tokens x w_RL) + L_SFT(demonstrations)
    w_RL  = positive_coef * exp(H_t)                     on tokens of on-policy rollouts with A > 0
    L_SFT = token mean over the step's demonstration tokens of w_SFT * (-log p_t)
    w_SFT = sft_coef * exp(sft_entropy_exponent * H_t)   (paper Eq. 8: exponent -1; its code: +1)

The SFT term reuses the log-probs of the policy loss's forward pass (the demonstration is a row of the
batch), so it costs no extra pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from prefix_rft.cost.counters import record_cost
from prefix_rft.errors import ConfigError
from prefix_rft.trainers.algorithm_config import knob
from prefix_rft.trainers.demonstrations import step_token_normalizer
from prefix_rft.trainers.prefix_rft import LUFFYConfig, PrefixRFTTrainer


def entropy_weight(entropies: torch.Tensor, coef: float, exponent: float) -> torch.Tensor:
    """``coef * exp(exponent * H_t)`` per token, without gradient (SRFT's ``sg(.)``)."""
    return coef * torch.exp(exponent * entropies.detach())


def positive_tokens(
    advantages: torch.Tensor, loss_mask: torch.Tensor, off_policy_mask: torch.Tensor
) -> torch.Tensor:
    """SRFT's "positive samples": the tokens of on-policy rollouts whose (row) advantage is positive."""
    adv = advantages.unsqueeze(1) if advantages.dim() == 1 else advantages
    return (adv > 0).expand_as(loss_mask) & loss_mask.bool() & ~off_policy_mask.bool()


def positive_token_weights(
    entropies: torch.Tensor,
    advantages: torch.Tensor,
    loss_mask: torch.Tensor,
    off_policy_mask: torch.Tensor,
    coef: float = 0.1,
) -> torch.Tensor:
    """SRFT's weights of the policy loss: ``coef * exp(H_t)`` on positive samples (:func:`positive_tokens`),
    1 everywhere else (negative samples, demonstrations)."""
    positive = positive_tokens(advantages, loss_mask, off_policy_mask)
    return torch.where(positive, entropy_weight(entropies, coef, 1.0), torch.ones_like(entropies))


def srft_sft_sum(
    logps: torch.Tensor,
    entropies: torch.Tensor,
    mask: torch.Tensor,
    coef: float = 0.5,
    exponent: float = -1.0,
) -> torch.Tensor:
    """``sum_t w_SFT,t * (-log p_t)`` over ``mask`` (the demonstration tokens), with
    ``w_SFT,t = coef * exp(exponent * H_t)``; divided by the token count it is SRFT's demonstration SFT loss."""
    m = mask.to(logps.dtype)
    return (entropy_weight(entropies, coef, exponent) * -(logps * m)).sum()


@dataclass
class SRFTConfig(LUFFYConfig):
    """SRFT's knobs: LUFFY's (one whole demonstration per group, shaped off-policy loss) plus the two weights."""

    sft_coef: float = knob(
        0.5, "Factor of the SFT weight w_SFT = sft_coef * exp(exponent * H) (published: 0.5)."
    )
    sft_entropy_exponent: float = knob(
        -1.0,
        "Exponent of the entropy in w_SFT: -1 as the paper writes it (Eq. 8: less imitation when the policy is "
        "uncertain); +1 is what the released code computes.",
    )
    positive_coef: float = knob(
        0.1,
        "Factor of the weight of positive on-policy samples w_RL = positive_coef * exp(H) (published: 0.1).",
    )

    def check(self, args) -> None:
        super().check(args)
        if self.num_prefixed < 1 or not self.allow_full_prefix:
            raise ConfigError(
                "algorithm=srft trains on whole demonstrations placed in the groups: it needs "
                "algorithm.num_prefixed >= 1 and algorithm.allow_full_prefix=true (with scheduler=full)"
            )
        if self.sft_coef < 0:
            raise ConfigError(f"algorithm.sft_coef={self.sft_coef} must be >= 0")
        if self.positive_coef <= 0:
            raise ConfigError(f"algorithm.positive_coef={self.positive_coef} must be > 0")
        if not math.isfinite(self.sft_entropy_exponent):
            raise ConfigError(f"algorithm.sft_entropy_exponent={self.sft_entropy_exponent} must be finite")


class SRFTTrainer(PrefixRFTTrainer):
    """PrefixRFTTrainer as LUFFY, with SRFT's entropy weight on positive samples and its weighted SFT term."""

    algorithm: SRFTConfig

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        # Demonstration tokens of the whole generation batch over all processes: the SFT term's normaliser.
        output["srft_demo_num_tokens"] = self.accelerator.gather(output["off_policy_mask"].sum()).sum()
        return output

    def _demo_tokens(self, inputs, loss_mask: torch.Tensor) -> torch.Tensor:
        return inputs["off_policy_mask"].bool() & loss_mask

    def _policy_token_weights(self, inputs, entropies, loss_mask, mode: str) -> torch.Tensor:
        demo = self._demo_tokens(inputs, loss_mask)
        weights = positive_token_weights(
            entropies, inputs["advantages"], loss_mask, demo, self.algorithm.positive_coef
        )
        positive = positive_tokens(inputs["advantages"], loss_mask, demo)  # for the metric only
        if self.accelerator.reduce(positive.sum().float(), reduction="sum").item():
            self._metrics[mode]["srft/positive_weight_mean"].append(
                self._masked_global_mean(weights, positive)
            )
        return weights

    def _same_pass_loss(self, inputs, logps, entropies, loss_mask, mode: str):
        a = self.algorithm
        demo = self._demo_tokens(inputs, loss_mask)
        weighted = srft_sft_sum(logps, entropies, demo, a.sft_coef, a.sft_entropy_exponent)
        weights = entropy_weight(entropies, a.sft_coef, a.sft_entropy_exponent)
        stat = torch.stack(
            [
                demo.sum().float(),
                -(logps.detach() * demo).sum().float(),
                (weights * demo).sum().float(),
                (entropies * demo).sum().float(),
            ]
        )
        count, nll, weight_sum, entropy_sum = self.accelerator.reduce(stat, reduction="sum").tolist()
        if not count:
            return 0.0
        m = self._metrics[mode]
        m["srft/demo_nll"].append(nll / count)
        m["srft/sft_weight_mean"].append(weight_sum / count)
        m["srft/demo_entropy"].append(entropy_sum / count)
        if mode == "train":
            # The same tokens are also in the RL loss (counted there as whole-demonstration tokens); the SFT
            # term is a second loss on them from the same forward pass, so no extra forward/backward tokens.
            record_cost(self, trained_sft_tokens=count)
        if a.sft_coef == 0:
            return 0.0
        return weighted / step_token_normalizer(self, inputs["srft_demo_num_tokens"], mode)
