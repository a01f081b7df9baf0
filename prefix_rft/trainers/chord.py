"""``ChordTrainer``: CHORD (Zhang et al., arXiv 2508.11408), GRPO and SFT on demonstrations in one loss.

    loss = (1 - mu(s)) * L_GRPO + mu(s) * L_SFT,   L_SFT = token mean of phi_t * (-log p_t)

over the demonstration tokens of the optimizer step, where ``s`` is the optimizer step, ``mu`` rises
linearly from 0 to ``mu_peak`` over ``mu_warmup_steps``, then decays from ``mu_peak`` to ``mu_valley``
along a half cosine over ``mu_decay_steps`` and stays there (:func:`chord_mu`), and ``phi_t = p_t (1 - p_t)``
with ``p_t`` the policy's probability of the demonstration token, taken without gradient (:func:`chord_phi`;
``phi_weighting=false`` makes every weight 1: CHORD-mu). The GRPO part is this project's Dr. GRPO on the
on-policy rollouts (no prefixes); the demonstrations are the batch prompts' own, one per prompt, as in
``rl_sft_loss`` (:class:`~prefix_rft.trainers.rl_sft_loss.RLWithSFTLossTrainer`, whose batching, token-mean
normaliser and cost accounting this class reuses).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from prefix_rft.errors import ConfigError
from prefix_rft.trainers.algorithm_config import knob
from prefix_rft.trainers.demonstrations import SupervisedTermConfig
from prefix_rft.trainers.rl_sft_loss import RLWithSFTLossTrainer


def chord_mu(step: int, warmup_steps: int, decay_steps: int, peak: float, valley: float) -> float:
    """CHORD's global coefficient at optimizer step ``step`` (0 = the first step).

    Linear warm-up ``peak * step / warmup_steps`` for ``step < warmup_steps``; then the half cosine
    ``valley + (peak - valley) * (1 + cos(pi * k / decay_steps)) / 2`` with ``k = step - warmup_steps``;
    ``valley`` from ``warmup_steps + decay_steps`` on (so ``decay_steps=0`` with ``peak == valley`` is a
    constant coefficient, CHORD-phi's setting). The schedule of the official implementation.
    """
    if step < warmup_steps:
        return peak * step / warmup_steps
    if step >= warmup_steps + decay_steps:
        return valley
    k = step - warmup_steps
    return valley + (peak - valley) * 0.5 * (1.0 + math.cos(math.pi * k / decay_steps))


def chord_phi(logps: torch.Tensor) -> torch.Tensor:
    """CHORD's token weight ``phi = p (1 - p)``, ``p = exp(logps)``, without gradient.

    Largest (1/4) at ``p = 1/2``; near 0 for tokens the policy already predicts (``p -> 1``) and for
    tokens far from it (``p -> 0``), so neither dominates the SFT gradient.
    """
    p = torch.exp(logps.detach())
    return p * (1.0 - p)


@dataclass
class ChordConfig(SupervisedTermConfig):
    """CHORD's knobs: the schedule of the global coefficient mu and the token weighting phi."""

    mu_peak: float = knob(
        0.5,
        "Largest mu, reached after the warm-up (official example config: 0.5; CHORD-mu: 0.9; CHORD-phi: 0.1).",
    )
    mu_valley: float = knob(
        0.02, "mu after the decay (official example config: 0.02; CHORD-mu: 0.05; CHORD-phi: 0.1)."
    )
    mu_warmup_steps: int = knob(
        200,
        "Optimizer steps of the linear rise of mu from 0 to mu_peak (official example: 200; the variants: 0).",
    )
    mu_decay_steps: int = knob(
        400,
        "Optimizer steps of the cosine decay from mu_peak to mu_valley (official example: 400; CHORD-mu: 200).",
    )
    phi_weighting: bool = knob(
        True, "Weight each demonstration token's NLL by phi = p(1-p) (CHORD-phi; false: plain NLL, CHORD-mu)."
    )

    def check(self, args) -> None:
        super().check(args)
        for name in ("mu_peak", "mu_valley"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"algorithm.{name}={value} must be in [0, 1] (mu weighs SFT against GRPO)")
        for name in ("mu_warmup_steps", "mu_decay_steps"):
            if getattr(self, name) < 0:
                raise ConfigError(f"algorithm.{name}={getattr(self, name)} must be >= 0")

    def mu(self, step: int) -> float:
        """mu at optimizer step ``step``."""
        return chord_mu(step, self.mu_warmup_steps, self.mu_decay_steps, self.mu_peak, self.mu_valley)


class ChordTrainer(RLWithSFTLossTrainer):
    """RLWithSFTLossTrainer whose two terms are weighted ``1 - mu`` and ``mu`` and whose NLL is phi-weighted."""

    algorithm: ChordConfig

    def _mu(self) -> float:
        return self.algorithm.mu(self.state.global_step)

    def _policy_coef(self) -> float:
        return 1.0 - self._mu()

    def _sft_coef(self) -> float:
        return self._mu()

    def _sft_token_weights(self, logps: torch.Tensor) -> torch.Tensor | None:
        return chord_phi(logps) if self.algorithm.phi_weighting else None

    def _compute_loss(self, model, inputs):
        mode = "train" if self.model.training else "eval"
        self._metrics[mode]["chord/mu"].append(self._mu())
        return super()._compute_loss(model, inputs)

    def _log_sft_weights(self, mode: str, mean_weight: float) -> None:
        if self.algorithm.phi_weighting:
            self._metrics[mode]["chord/phi_mean"].append(mean_weight)
