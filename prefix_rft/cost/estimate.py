"""The ``cost`` block of ``metrics.json``: counts per stage and in total, a FLOPs estimate, time, GPU-hours.

FLOPs estimate, with N the parameter count of the trained model (LoRA adapters included):

    generation    2N x (tokens generated + generation context tokens)
    training      6N x forward + backward tokens      (forward 2N, backward 4N per token)
    forward only  2N x tokens of extra forward passes (old-policy / reference log-probs)

A token costs 2N in a forward pass (one multiply-add per parameter), and a backward pass twice that. The
attention term (quadratic in length), activation recomputation under gradient checkpointing, and the
smaller backward of LoRA are not modelled: this is the model-FLOPs count that compares algorithms, not
the hardware's. Unlike the 6ND / 8ND model of arXiv 2604.23747 (App. B: 2ND generation + 6ND training
per rollout token, completions only), prompt tokens are counted wherever the model runs over them (they
are read before sampling and go through every training forward/backward), so this estimate is the
higher of the two; the counts are all in ``metrics.json`` for whoever wants the other.

Wall time: ``train`` is the time inside ``trainer.train()`` summed over resumes; ``total`` adds what the
last invocation spent outside it (loading, held-out evaluation, saving). GPU-hours (CUDA only) are wall
time x the number of processes, one GPU each.
"""

from __future__ import annotations

from typing import Any

from prefix_rft.cost.counters import CostCounters

FLOPS_FORMULA = (
    "generation 2N x (tokens_generated + generation_context); training 6N x forward_backward; "
    "forward_only 2N x forward_only; N = parameters of the trained model"
)
TOKEN_KINDS = ("on_policy", "prefix", "full_demonstration", "sft")


def flops(counters: CostCounters, num_parameters: int) -> dict[str, float]:
    """The FLOPs estimate of one stage (see the module docstring)."""
    n = float(num_parameters)
    out = {
        "generation": 2 * n * (counters.tokens_generated + counters.generation_context_tokens),
        "training": 6 * n * counters.forward_backward_tokens,
        "forward_only": 2 * n * counters.forward_only_tokens,
    }
    out["total"] = sum(out.values())
    return out


def gpu_hours(seconds: float, num_gpus: int) -> float | None:
    """Wall seconds x GPUs in hours; None without GPUs."""
    return seconds * num_gpus / 3600 if num_gpus else None


def stage_cost(stage: str, counters: CostCounters, num_parameters: int, num_gpus: int) -> dict[str, Any]:
    """The cost record of one stage."""
    trained = {
        "on_policy": counters.trained_on_policy_tokens,
        "prefix": counters.trained_prefix_tokens,
        "full_demonstration": counters.trained_full_demonstration_tokens,
        "sft": counters.trained_sft_tokens,
    }
    trained["total"] = sum(trained.values())
    return {
        "stage": stage,
        "parameters": num_parameters,
        "rollouts": counters.rollouts,
        "hybrid_rollouts": counters.hybrid_rollouts,
        "demonstration_rows": counters.demonstration_rows,
        "tokens_generated": counters.tokens_generated,
        "tokens_trained": trained,
        "tokens_processed": {
            "generation_context": counters.generation_context_tokens,
            "forward_backward": counters.forward_backward_tokens,
            "forward_only": counters.forward_only_tokens,
        },
        "flops": flops(counters, num_parameters),
        "wall_seconds": {"train": counters.train_seconds},
        "gpu_hours": {"train": gpu_hours(counters.train_seconds, num_gpus)},
    }


def total_cost(stages: list[dict[str, Any]], overhead_seconds: float, num_gpus: int) -> dict[str, Any]:
    """The run's totals: the stages' counts summed, and wall time including ``overhead_seconds`` spent outside
    training (loading, evaluation, saving)."""
    summed = ("rollouts", "hybrid_rollouts", "demonstration_rows", "tokens_generated")
    total: dict[str, Any] = {k: sum(s[k] for s in stages) for k in summed}
    for key in ("tokens_trained", "tokens_processed", "flops"):
        total[key] = {k: sum(s[key][k] for s in stages) for k in stages[0][key]}
    train = sum(s["wall_seconds"]["train"] for s in stages)
    total["wall_seconds"] = {"train": train, "total": train + max(overhead_seconds, 0.0)}
    total["gpu_hours"] = {k: gpu_hours(v, num_gpus) for k, v in total["wall_seconds"].items()}
    total["num_gpus"] = num_gpus
    return total


def cost_block(stages: list[dict[str, Any]], overhead_seconds: float, num_gpus: int) -> dict[str, Any]:
    """``metrics.json``'s ``cost``: the formula, each stage's record and the total."""
    return {
        "flops_formula": FLOPS_FORMULA,
        "stages": stages,
        "total": total_cost(stages, overhead_seconds, num_gpus),
    }
