"""Cost counting in the trainers: a mixin for every GRPOTrainer-based RL trainer and TRL's SFTTrainer with it.

The RL counts come from three GRPOTrainer hooks, each seeing every process's share once:

* ``_generate``: the prompt and completion lengths of the sampled rows (before any masking);
* ``_generate_and_score_completions`` (training only): rollouts, hybrids, whole-demonstration rows, tokens
  sampled, the context the engine read, and the extra forward passes TRL makes over the batch
  (old-policy log-probs, reference log-probs);
* ``compute_loss`` (training only): the tokens of each micro-batch in the loss, by kind, and the tokens of
  its forward + backward pass. Counting per micro-batch makes the totals independent of how gradient
  accumulation splits a batch and right with ``num_iterations > 1``.

What a row is comes from the batch itself: ``prefix_mask`` (demonstration tokens at the start of a
completion) and ``demonstration_row`` (the row is a whole demonstration, not sampled), both written by
:class:`~prefix_rft.trainers.prefix_rft.PrefixRFTTrainer`; without them every row is an on-policy rollout.
Trainers with a supervised term add their SFT tokens themselves (:func:`~.counters.record_cost`).

:func:`with_cost_accounting` gives any registered trainer class the mixin, so an algorithm added to the
registry is counted without code of its own.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from trl import SFTTrainer

from prefix_rft.cost.counters import CostState, cost_state, record_cost


def num_parameters(model) -> int:
    """Parameters of a (possibly wrapped, LoRA-adapted, ZeRO-3-partitioned or 4-bit) model, shared ones once."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        if hasattr(p, "ds_numel"):  # ZeRO-3 keeps a partition locally; ds_numel is the full size
            total += int(p.ds_numel)
        elif getattr(p, "quant_state", None) is not None:  # bitsandbytes 4-bit packs two weights per byte
            total += int(torch.Size(p.quant_state.shape).numel())
        else:
            total += p.numel()
    return total


def _global_sum(trainer, values: list) -> list[int]:
    """Sum a few local counts over processes (one collective)."""
    device = trainer.accelerator.device
    local = torch.tensor([int(v) for v in values], dtype=torch.long, device=device)
    return [int(v) for v in trainer.accelerator.reduce(local, reduction="sum").tolist()]


def _row_flags(batch: dict[str, Any], rows: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(prefix_mask as bool (rows, T) or None-equivalent zeros, demonstration_row as bool (rows,))."""
    width = batch["completion_mask"].size(1)
    prefix = batch.get("prefix_mask")
    prefix = (
        prefix.bool() if prefix is not None else torch.zeros(rows, width, dtype=torch.bool, device=device)
    )
    demo = batch.get("demonstration_row")
    demo = demo.bool() if demo is not None else torch.zeros(rows, dtype=torch.bool, device=device)
    return prefix, demo


class CostAccounting:
    """Mixin for GRPOTrainer subclasses: counts rollouts, tokens by kind and extra forward passes."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if cost_state(self) is None:
            self.add_callback(CostState())
        self._sampled_lengths: tuple[list[int], list[int]] | None = None

    def _generate(self, prompts):
        result = super()._generate(prompts)
        prompt_ids, completion_ids, tool_mask = result[0], result[1], result[2]
        if tool_mask is not None:  # tool output is not sampled: only the model's tokens count
            lengths = [int(sum(m)) for m in tool_mask]
        else:
            lengths = [len(ids) for ids in completion_ids]
        self._sampled_lengths = ([len(ids) for ids in prompt_ids], lengths)
        return result

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        if self.model.training:
            self._count_rollouts(output)
        self._sampled_lengths = None
        return output

    def _count_rollouts(self, output: dict[str, Any]) -> None:
        mask = output["completion_mask"]
        rows, device = mask.size(0), mask.device
        prompt_lens, completion_lens = self._sampled_lengths or ([0] * rows, mask.sum(1).tolist())
        prefix, demo = _row_flags(output, rows, device)
        prefix_lens = prefix.sum(1)
        sampled = ~demo
        generated = (torch.tensor(completion_lens, device=device) - prefix_lens).clamp(min=0)
        context = torch.tensor(prompt_lens, device=device) + prefix_lens
        # TRL's extra forward passes over the whole batch: old-policy and reference log-probs.
        passes = int(output.get("old_per_token_logps") is not None)
        passes += int(output.get("ref_per_token_logps") is not None)
        batch_tokens = output["prompt_mask"].sum() + mask.sum()
        totals = _global_sum(
            self,
            [
                sampled.sum(),
                (sampled & (prefix_lens > 0)).sum(),
                demo.sum(),
                (generated * sampled).sum(),
                (context * sampled).sum(),
                passes * batch_tokens,
            ],
        )
        record_cost(
            self,
            **dict(
                zip(
                    (
                        "rollouts",
                        "hybrid_rollouts",
                        "demonstration_rows",
                        "tokens_generated",
                        "generation_context_tokens",
                        "forward_only_tokens",
                    ),
                    totals,
                )
            ),
        )

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.model.training:
            self._count_trained(inputs)
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    def _count_trained(self, inputs: dict[str, Any]) -> None:
        mask = inputs["completion_mask"].bool()
        if inputs.get("tool_mask") is not None:
            mask = mask & inputs["tool_mask"].bool()
        prefix, demo = _row_flags(inputs, mask.size(0), mask.device)
        demo = demo.unsqueeze(1)
        totals = _global_sum(
            self,
            [
                (mask & ~prefix & ~demo).sum(),
                (mask & prefix & ~demo).sum(),
                (mask & demo).sum(),
                inputs["prompt_mask"].sum() + inputs["completion_mask"].sum(),
            ],
        )
        record_cost(
            self,
            trained_on_policy_tokens=totals[0],
            trained_prefix_tokens=totals[1],
            trained_full_demonstration_tokens=totals[2],
            forward_backward_tokens=totals[3],
        )


@functools.cache
def with_cost_accounting(trainer_cls: type) -> type:
    """``trainer_cls`` with :class:`CostAccounting` mixed in (itself when it already has it)."""
    if issubclass(trainer_cls, CostAccounting):
        return trainer_cls
    return type(
        trainer_cls.__name__,
        (CostAccounting, trainer_cls),
        {"__module__": trainer_cls.__module__, "__doc__": trainer_cls.__doc__},
    )


class CostAccountingSFTTrainer(SFTTrainer):
    """TRL's SFTTrainer that counts its supervised tokens (loss targets) and the tokens it runs through."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if cost_state(self) is None:
            self.add_callback(CostState())

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.model.training:
            # A label predicts from the token before it, so the first position of a sequence is never a target
            # (the padding-free collator also masks every packed sequence's first label).
            targets = (inputs["labels"][..., 1:] != -100).sum()
            if "attention_mask" in inputs:
                processed = inputs["attention_mask"].sum()
            else:  # padding-free: one flat sequence
                processed = torch.tensor(inputs["input_ids"].size(1))
            trained, through = _global_sum(self, [targets, processed])
            record_cost(self, trained_sft_tokens=trained, forward_backward_tokens=through)
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
