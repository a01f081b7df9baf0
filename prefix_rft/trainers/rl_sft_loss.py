"""``RLWithSFTLossTrainer``: Dr. GRPO on on-policy rollouts plus a weighted NLL on the demonstrations.

The "RL with SFT loss" baseline. Rollouts are TRL's and the policy loss is the base trainer's Dr. GRPO
(:class:`~prefix_rft.trainers.base.DrGRPOTrainer`); this class only adds, for every prompt of the batch, its
demonstration as a supervised target:

    loss = policy_loss + sft_coef * token_mean NLL(demonstration | prompt)

(the NLL sum is :func:`prefix_rft.losses.weighted_nll_sum`, divided by the step's demonstration tokens)

Each prompt's demonstration is attached to one row of its group (the first slot), so a prompt
counts once however many rollouts it has. The token mean runs over every demonstration token of the
optimizer step (all micro-batches, all processes), so it does not depend on how gradient accumulation
splits the batch: a mean of per-micro-batch means would weight short and long demonstrations
differently, and micro-batches holding no demonstration row would dilute the term.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from prefix_rft.cost.counters import record_cost
from prefix_rft.errors import ConfigError
from prefix_rft.losses import weighted_nll_sum
from prefix_rft.trainers.algorithm_config import knob
from prefix_rft.trainers.base import DrGRPOTrainer
from prefix_rft.trainers.demonstrations import (
    SupervisedTermConfig,
    demonstration_logps,
    demonstration_text,
    pad_ids,
    step_token_normalizer,
)


@dataclass
class RLWithSFTLossConfig(SupervisedTermConfig):
    """RL with SFT loss: Dr. GRPO plus ``sft_coef`` x the token-mean NLL of the batch's demonstrations."""

    sft_coef: float = knob(
        0.1, "Weight of the NLL of the demonstrations of the batch's prompts (not published; 0.1 is ours)."
    )

    def check(self, args) -> None:
        super().check(args)
        if self.sft_coef < 0:
            raise ConfigError(f"algorithm.sft_coef={self.sft_coef} must be >= 0")


class RLWithSFTLossTrainer(DrGRPOTrainer):
    """DrGRPOTrainer with an NLL term on demonstrations, weighted by ``algorithm.sft_coef``."""

    algorithm: RLWithSFTLossConfig

    def _supervised_group(self, group: int) -> bool:
        """Whether group ``group`` of the generation batch gets its demonstration as a target (all do here)."""
        return True

    def _demonstration_targets(self, inputs) -> list[list[int]]:
        """Demonstration ids (cut to the completion budget, closed with end-of-turn) for the first slot of
        every supervised group; empty for other rows and rows without a demonstration."""
        offset = self.accelerator.process_index * len(inputs)
        targets: list[list[int]] = []
        for i, row in enumerate(inputs):
            group, slot = divmod(offset + i, self.num_generations)
            demo = demonstration_text(row)
            if slot != 0 or demo is None or not self._supervised_group(group):
                targets.append([])
                continue
            targets.append(self._demo_target_ids(demo))
        return targets

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        device = output["completion_ids"].device
        output["demo_ids"], output["demo_mask"] = pad_ids(
            self._demonstration_targets(inputs), self.processing_class.pad_token_id, device=device
        )
        # Demonstration tokens of the whole generation batch over all processes: the SFT term's normaliser.
        output["demo_num_tokens"] = self.accelerator.gather(output["demo_mask"].sum()).sum()
        return output

    # Hooks of the weighting (CHORD overrides them): loss = policy_coef x policy loss + sft_coef x the
    # token mean of weight_t x NLL_t over the step's demonstration tokens.
    def _policy_coef(self) -> float:
        """Weight of the policy loss (1 here)."""
        return 1.0

    def _sft_coef(self) -> float:
        """Weight of the supervised term (``algorithm.sft_coef`` here)."""
        return self.algorithm.sft_coef

    def _sft_token_weights(self, logps: torch.Tensor) -> torch.Tensor | None:
        """Per-token weights of the demonstration NLL, no gradient; None: plain NLL."""
        return None

    def _compute_loss(self, model, inputs):
        policy_coef, sft_coef = self._policy_coef(), self._sft_coef()
        loss = super()._compute_loss(model, inputs)
        if policy_coef != 1.0:
            loss = policy_coef * loss
        mode = "train" if self.model.training else "eval"
        demo_mask = inputs["demo_mask"]
        rows = demo_mask.any(dim=1)  # only rows that carry a demonstration need a forward pass
        stat = torch.zeros(4, device=loss.device)
        if sft_coef > 0 and rows.any():
            logps = demonstration_logps(
                self,
                model,
                inputs["prompt_ids"][rows],
                inputs["prompt_mask"][rows],
                inputs["demo_ids"][rows],
                demo_mask[rows],
                batch_size=self.algorithm.sft_micro_batch_size,
            )
            mask = demo_mask[rows].to(logps.dtype)
            weights = self._sft_token_weights(logps.detach())
            weighted_sum = weighted_nll_sum(logps, mask, weights)
            normalizer = step_token_normalizer(self, inputs["demo_num_tokens"], mode)
            loss = loss + sft_coef * weighted_sum / normalizer
            prompt_tokens = inputs["prompt_mask"][rows].sum().float()
            weight_sum = mask.sum() if weights is None else (weights.detach() * mask).sum()
            stat = torch.stack(
                [
                    -(logps.detach() * mask).sum().float(),
                    mask.sum().float(),
                    prompt_tokens,
                    weight_sum.float(),
                ]
            )
        # Collective on every process, whether or not its micro-batch had demonstrations.
        total, count, prompts, weight_sum = self.accelerator.reduce(stat, reduction="sum").tolist()
        if count:
            self._metrics[mode]["sft/demo_nll"].append(total / count)
            self._log_sft_weights(mode, weight_sum / count)
            if mode == "train":
                record_cost(self, trained_sft_tokens=count, forward_backward_tokens=count + prompts)
        return loss

    def _log_sft_weights(self, mode: str, mean_weight: float) -> None:
        """Log the mean per-token weight of the supervised term (nothing here: it is 1)."""
