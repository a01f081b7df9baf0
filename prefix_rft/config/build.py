"""Config -> TRL objects: GRPOConfig, PEFT config, reward functions and the trainer."""

from __future__ import annotations

import logging
from typing import Any

from omegaconf import DictConfig

from prefix_rft.config.trainer_args import set_trainer_args

logger = logging.getLogger(__name__)

BACKEND_TO_TRL = {
    "transformers": {"use_vllm": False},
    "vllm_colocate": {"use_vllm": True, "vllm_mode": "colocate"},
    "vllm_server": {"use_vllm": True, "vllm_mode": "server"},
}


def trl_kwargs(cfg: DictConfig, target_cls: type) -> dict[str, Any]:
    """The ``trainer.*`` values set in the config that ``target_cls`` accepts, plus the top-level ones."""
    import dataclasses

    accepted = {f.name for f in dataclasses.fields(target_cls) if f.init}
    values = set_trainer_args(cfg.trainer)
    ignored = sorted(k for k in values if k not in accepted)
    if ignored:
        logger.info("%s ignores trainer.%s", target_cls.__name__, ", trainer.".join(ignored))
    kwargs = {k: v for k, v in values.items() if k in accepted}
    kwargs["output_dir"] = str(cfg.output_dir)
    kwargs["seed"] = cfg.seed
    return kwargs


def build_grpo_config(cfg: DictConfig):
    """A ``trl.GRPOConfig`` from the ``trainer`` group and the generation backend."""
    from trl import GRPOConfig

    kwargs = trl_kwargs(cfg, GRPOConfig)
    kwargs.update(BACKEND_TO_TRL[cfg.generation.backend])
    return GRPOConfig(**kwargs)


def build_peft_config(cfg: DictConfig):
    """A ``peft.LoraConfig`` when ``peft.enabled``, else None."""
    if not cfg.peft.enabled:
        return None
    from omegaconf import OmegaConf
    from peft import LoraConfig

    target = cfg.peft.target_modules
    target = OmegaConf.to_container(target) if OmegaConf.is_config(target) else target
    return LoraConfig(
        r=cfg.peft.r,
        lora_alpha=cfg.peft.lora_alpha,
        lora_dropout=cfg.peft.lora_dropout,
        target_modules=target,
        task_type="CAUSAL_LM",
    )


def build_reward_funcs(cfg: DictConfig) -> list:
    """The configured reward functions (TRL signature)."""
    from prefix_rft.rewards.rewards import get_reward_funcs

    return get_reward_funcs(list(cfg.algorithm.reward_funcs))


def build_rl_trainer(cfg: DictConfig, model, tokenizer, train_dataset):
    """GRPOTrainer (algorithm.trainer=grpo) or PrefixRFTTrainer (algorithm.trainer=prefix_rft)."""
    from trl import GRPOTrainer

    args = build_grpo_config(cfg)
    if cfg.algorithm.reward_weights is not None:
        args.reward_weights = list(cfg.algorithm.reward_weights)
    common = {
        "model": model,
        "reward_funcs": build_reward_funcs(cfg),
        "args": args,
        "train_dataset": train_dataset,
        "processing_class": tokenizer,
        "peft_config": build_peft_config(cfg),
    }
    if cfg.algorithm.trainer == "grpo":
        return GRPOTrainer(**common)
    from prefix_rft.config.validate import build_scheduler_from_config
    from prefix_rft.trainers.prefix_rft import PrefixRFTArgs, PrefixRFTTrainer

    algo = cfg.algorithm
    prefix_args = PrefixRFTArgs(
        num_prefixed=algo.num_prefixed,
        prefix_update=algo.prefix_update,
        keep_fraction=algo.keep_fraction,
        advantage_baseline=algo.advantage_baseline,
        min_prefix_tokens=algo.min_prefix_tokens,
        allow_full_prefix=algo.allow_full_prefix,
    )
    return PrefixRFTTrainer(
        **common, prefix_args=prefix_args, prefix_scheduler=build_scheduler_from_config(cfg.scheduler)
    )
