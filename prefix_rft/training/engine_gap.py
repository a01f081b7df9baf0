"""``generation/logprob_gap``: how far the generation engine's log-probs of the sampled tokens are from the
trainer's own recomputation, every step an engine (vLLM) generates.

An engine that samples from stale or differently packed weights still returns plausible text; the only
cheap signal is that its per-token log-probs stop matching the policy being trained (silent
train/inference mismatch). TRL already recomputes the policy's log-probs of every rollout right after
generation (``old_per_token_logps``, for its importance-sampling correction) and keeps the engine's
(``sampling_per_token_logps``), so the gap costs one masked mean. Tokens the engine did not sample
(demonstration prefixes, whole-demonstration rows) carry NaN engine log-probs and are left out.
"""

from __future__ import annotations

import functools
import math

import torch

LOGPROB_GAP = "generation/logprob_gap"


def logprob_gap_sums(
    trainer_logps: torch.Tensor, engine_logps: torch.Tensor, mask: torch.Tensor
) -> tuple[float, int]:
    """``(sum of |trainer - engine|, number of tokens)`` over the ``mask``ed tokens whose engine log-prob
    is known (not NaN); shapes ``(B, T)``."""
    keep = mask.bool() & ~torch.isnan(engine_logps) & ~torch.isnan(trainer_logps)
    diff = (trainer_logps.float() - engine_logps.float()).abs()[keep]
    return float(diff.sum()), int(keep.sum())


def record_logprob_gap(trainer, output: dict, mode: str) -> float | None:
    """Append the batch's mean gap (over all processes) to ``trainer._metrics[mode][LOGPROB_GAP]``.

    Needs both log-prob tensors in ``output`` (TRL adds them when vLLM generates with its default
    ``vllm_importance_sampling_correction=True``); returns the gap, or None when there is nothing to compare.
    Every process must call it (the sums are reduced across processes)."""
    old, sampled = output.get("old_per_token_logps"), output.get("sampling_per_token_logps")
    if old is None or sampled is None:
        return None
    total, count = logprob_gap_sums(old, sampled, output["completion_mask"])
    stats = torch.tensor([total, count], dtype=torch.float64, device=old.device)
    total, count = trainer.accelerator.reduce(stats, reduction="sum").tolist()
    if not count:
        return None
    gap = total / count
    trainer._metrics[mode][LOGPROB_GAP].append(gap)
    return gap


def install_logprob_gap(trainer) -> bool:
    """Make a GRPOTrainer (or subclass) that generates with vLLM log :data:`LOGPROB_GAP` every step.

    Wraps the instance's ``_generate_and_score_completions`` (the one place where both log-prob tensors
    exist), so it works for every algorithm's trainer, TRL's own included. Returns whether it installed."""
    if not getattr(trainer, "use_vllm", False) or not hasattr(trainer, "_generate_and_score_completions"):
        return False
    inner = trainer._generate_and_score_completions

    @functools.wraps(inner)
    def generate_and_score(inputs):
        output = inner(inputs)
        record_logprob_gap(trainer, output, "train" if trainer.model.training else "eval")
        return output

    trainer._generate_and_score_completions = generate_and_score
    return True


def format_gap(value: float) -> str:
    """The gap as the progress line shows it (small numbers in scientific notation)."""
    return f"{value:.1e}" if value and (abs(value) < 1e-3 or not math.isfinite(value)) else f"{value:.4f}"
