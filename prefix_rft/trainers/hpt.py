"""``HPTTrainer``: per question, SFT on its demonstration or RL on its rollouts, chosen by rollout accuracy.

HPT, Hybrid Post-Training (Lv et al., arXiv 2509.04419, Algorithm 1 and the "switch" strategy of the
authors' code, TsinghuaC3I/Unify-Post-Training). For every question ``q`` the ``n`` on-policy rollouts
are scored; with ``P`` the number of solved rollouts,

    L(q) = alpha(P) * L_RL(q) + beta(P) * L_SFT(q),   alpha = 1[P > gate],  beta = 1[P <= gate]

so a question the policy cannot solve (well enough) trains on its demonstration only, and its rollouts
leave the RL loss; every other question is plain RL. Rollouts are TRL's, the RL loss the base trainer's
Dr. GRPO; the SFT term is :class:`RLWithSFTLossTrainer`'s weighted
token-mean NLL, with the demonstration attached to the first slot of each SFT-gated group only:

    loss = Dr.GRPO(rollouts of RL-gated questions) + sft_coef * token_mean NLL(demos of SFT-gated questions)

Removing a question's rollouts from the RL term is done by zeroing their completion mask: they keep
their place in the batch (TRL's fixed shapes) and in the Dr. GRPO normaliser ``B * max_completion_length``,
but contribute no token to the loss, the entropy bonus or the trained-token counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from prefix_rft.errors import ConfigError
from prefix_rft.trainers.algorithm_config import knob
from prefix_rft.trainers.rl_sft_loss import RLWithSFTLossConfig, RLWithSFTLossTrainer


def solved_counts(rewards: Sequence[float], num_generations: int, solved_reward: float = 1.0) -> list[int]:
    """Solved rollouts per group of ``num_generations`` consecutive rewards (NaN = unscorable = not solved)."""
    if len(rewards) % num_generations:
        raise ValueError(f"{len(rewards)} rewards do not split into groups of {num_generations}")
    counts = []
    for g in range(len(rewards) // num_generations):
        group = rewards[g * num_generations : (g + 1) * num_generations]
        counts.append(sum(1 for r in group if not math.isnan(r) and r >= solved_reward))
    return counts


def hpt_sft_gate(solved: Sequence[int], gate: int) -> list[bool]:
    """HPT's switch: True (SFT on the demonstration) where a group solved at most ``gate`` rollouts, False (RL)."""
    return [n <= gate for n in solved]


def gated_row_masks(sft_groups: Sequence[bool], num_generations: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row masks of a batch of groups: ``(rl_rows, demo_rows)``.

    ``rl_rows``: rows whose rollouts stay in the RL loss (their group is RL-gated). ``demo_rows``: the first
    slot of every SFT-gated group, which carries the group's demonstration (one target per question).
    """
    sft = torch.tensor(list(sft_groups), dtype=torch.bool).repeat_interleave(num_generations)
    first = (torch.arange(sft.numel()) % num_generations) == 0
    return ~sft, sft & first


@dataclass
class HPTConfig(RLWithSFTLossConfig):
    """HPT: per question, SFT on the demonstration when at most ``gate`` of its rollouts are solved, else RL."""

    gate: int = knob(
        0,
        "Questions with at most this many solved rollouts (of num_generations) train on their demonstration "
        "(SFT) instead of their rollouts (RL). Published: 0 for Qwen2.5-Math (SFT only when all fail), 2 for "
        "LLaMA-3.1-8B (switch_gate in the authors' scripts).",
    )
    solved_reward: float = knob(
        1.0,
        "A rollout counts as solved when its (weighted total) reward is at least this (accuracy reward: 1).",
    )
    sft_coef: float = knob(
        1.0, "Weight of the SFT term (published: 1.0 for Qwen2.5-Math-7B and LLaMA-3.1-8B, 0.3 for the 1.5B)."
    )

    def check(self, args) -> None:
        super().check(args)
        if not 0 <= self.gate < args.num_generations:
            # gate >= num_generations would send every question to SFT: that is algorithm=sft.
            raise ConfigError(
                f"algorithm.gate={self.gate} must be between 0 and trainer.num_generations - 1 "
                f"({args.num_generations - 1})"
            )


class HPTTrainer(RLWithSFTLossTrainer):
    """RLWithSFTLossTrainer whose SFT term and RL term are switched per question by the rollouts' accuracy."""

    algorithm: HPTConfig

    def _decide_gate(self, num_rows: int) -> None:
        """SFT-or-RL of every group of the whole (all processes) batch, from this generation's rewards."""
        self._solved: list[int] = []
        self._gated_sft: list[bool] = [False] * (num_rows // self.num_generations)
        if not self.model.training or self._rewards_per_func is None:
            return  # evaluation measures the policy: every question is RL, no demonstration
        rewards = self._global_rewards().tolist()
        self._solved = solved_counts(rewards, self.num_generations, self.algorithm.solved_reward)
        self._gated_sft = hpt_sft_gate(self._solved, self.algorithm.gate)

    def _supervised_group(self, group: int) -> bool:
        return self._gated_sft[group]

    def _demonstration_targets(self, inputs) -> list[list[int]]:
        """Demonstrations for the first slot of the SFT-gated groups only. The parent calls this after the
        rollouts are scored, so the gate is decided here, from the rewards of the whole batch."""
        self._decide_gate(len(inputs) * self.accelerator.num_processes)
        return super()._demonstration_targets(inputs)

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        if not self.model.training:
            return output
        offset = self.accelerator.process_index * len(inputs)
        all_rl, _ = gated_row_masks(self._gated_sft, self.num_generations)
        mask = output["completion_mask"]
        rl_rows = all_rl[offset : offset + len(inputs)].to(device=mask.device, dtype=mask.dtype)
        # SFT-gated questions leave the RL loss: none of their completion tokens is a loss token (this also
        # keeps them out of the entropy bonus and of the trained-token counts of the cost accounting).
        output["completion_mask"] = mask * rl_rows.unsqueeze(1)
        m = self._metrics["train"]
        m["hpt/sft_fraction"].append(sum(self._gated_sft) / max(len(self._gated_sft), 1))
        if self._solved:
            m["hpt/solved_mean"].append(sum(self._solved) / len(self._solved))
        return output
