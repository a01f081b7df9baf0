"""Demonstration tokens as a batch: padding, their log-probs under the policy, the share of a step's
demonstration tokens in one micro-batch, and the knob the trainers with a supervised term on
demonstrations (``rl_sft_loss``, CHORD, ReLIFT) share.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from prefix_rft.data.columns import DEMONSTRATION
from prefix_rft.errors import ConfigError
from prefix_rft.trainers.algorithm_config import knob
from prefix_rft.trainers.base import DrGRPOConfig


@dataclass
class SupervisedTermConfig(DrGRPOConfig):
    """Dr. GRPO on on-policy rollouts plus a supervised term on demonstrations."""

    sft_micro_batch_size: int = knob(
        4, "Rows per forward pass of the supervised term (a memory bound, not the batch size)."
    )

    def check(self, args) -> None:
        super().check(args)
        if self.sft_micro_batch_size < 1:
            raise ConfigError(f"algorithm.sft_micro_batch_size={self.sft_micro_batch_size} must be >= 1")

    def needs_demonstrations(self) -> bool:
        return True


def demonstration_text(row: dict[str, Any], column: str = DEMONSTRATION) -> str | None:
    """The row's demonstration (the first one when the column holds several), or None."""
    demo = row.get(column)
    if isinstance(demo, (list, tuple)):
        demo = next((d for d in demo if d), None)
    return demo or None


def pad_ids(sequences: list[list[int]], pad_id: int, side: str = "right", device: torch.device | str = "cpu"):
    """Pad token id lists into ``(ids, mask)`` tensors; ``side="left"`` is the layout TRL uses for prompts.
    At least one column, so an all-empty batch still works."""
    width = max([len(s) for s in sequences] + [1])
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long, device=device)
    mask = torch.zeros((len(sequences), width), dtype=torch.long, device=device)
    for i, seq in enumerate(sequences):
        if seq:
            cols = slice(width - len(seq), width) if side == "left" else slice(0, len(seq))
            ids[i, cols] = torch.tensor(seq, dtype=torch.long, device=device)
            mask[i, cols] = 1
    return ids, mask


def demonstration_logps(
    trainer, model, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, demo_ids, demo_mask, batch_size=None
) -> torch.Tensor:
    """Per-token log-probs of ``demo_ids`` given left-padded prompts, computed exactly as the policy loss
    computes completion log-probs (TRL's ``_get_per_token_logps_and_entropies``, so at the sampling
    temperature: 1.0 in every shipped config, where this is the plain NLL)."""
    input_ids = torch.cat([prompt_ids, demo_ids], dim=1)
    attention_mask = torch.cat([prompt_mask, demo_mask], dim=1)
    logps, _, _ = trainer._get_per_token_logps_and_entropies(
        model, input_ids, attention_mask, demo_ids.size(1), batch_size=batch_size
    )
    return logps


def step_token_normalizer(trainer, num_tokens: torch.Tensor, mode: str) -> torch.Tensor:
    """This micro-batch's share of a step's ``num_tokens`` (summed over the generation batch and all
    processes), as TRL scales ``num_items_in_batch`` for its ``dapo`` loss: gradients are averaged over
    processes, and one generation batch spans ``steps_per_generation`` micro-batches of which an optimizer
    step takes ``gradient_accumulation_steps``. Dividing each micro-batch's token sum by it gives the
    token mean over the optimizer step, however accumulation splits the batch."""
    normalizer = num_tokens.float().clamp(min=1.0) / trainer.accelerator.num_processes
    if mode == "train":
        normalizer = (
            normalizer * trainer.current_gradient_accumulation_steps / trainer.args.steps_per_generation
        )
    return normalizer
