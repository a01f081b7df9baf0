"""Token budgets derived from the config: how long a prompt may be."""

from __future__ import annotations

from omegaconf import DictConfig


def prompt_length_limit(cfg: DictConfig) -> int:
    """``data.max_prompt_length``, or when it is null the room the context window leaves for a prompt:
    ``model.max_context_length - trainer.max_completion_length`` (TRL's default 256 when unset)."""
    if cfg.data.max_prompt_length is not None:
        return int(cfg.data.max_prompt_length)
    from prefix_rft.config.trainer_args import TrainerValues

    return int(cfg.model.max_context_length) - int(TrainerValues(cfg.trainer).max_completion_length)
