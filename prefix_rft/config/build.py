"""Config -> TRL objects: GRPOConfig/SFTConfig, PEFT config, reward functions and the trainers."""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any

from omegaconf import DictConfig

from prefix_rft.algorithms import STAGE_KINDS
from prefix_rft.config.trainer_args import set_trainer_args
from prefix_rft.errors import ConfigError

logger = logging.getLogger(__name__)

BACKEND_TO_TRL = {
    "transformers": {"use_vllm": False},
    "vllm_colocate": {"use_vllm": True, "vllm_mode": "colocate"},
    "vllm_server": {"use_vllm": True, "vllm_mode": "server"},
}


def trl_kwargs(cfg: DictConfig, target_cls: type) -> dict[str, Any]:
    """The ``trainer.*`` values set in the config that ``target_cls`` accepts, plus the top-level ones."""
    accepted = {f.name for f in dataclasses.fields(target_cls) if f.init}
    values = set_trainer_args(cfg.trainer)
    ignored = sorted(k for k in values if k not in accepted)
    if ignored:
        logger.info("%s ignores trainer.%s", target_cls.__name__, ", trainer.".join(ignored))
    kwargs = {k: v for k, v in values.items() if k in accepted}
    kwargs["output_dir"] = str(cfg.output_dir)
    kwargs["seed"] = cfg.seed
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and "use_cpu" not in kwargs:
        import torch

        # Several processes without a GPU: accelerate forms a gloo group only in CPU mode; otherwise each
        # process would train alone on its own data.
        if not torch.cuda.is_available():
            kwargs["use_cpu"] = True
    return kwargs


def build_grpo_config(cfg: DictConfig):
    """A ``trl.GRPOConfig`` from the ``trainer`` group, the generation backend and the reward weights."""
    from trl import GRPOConfig

    kwargs = trl_kwargs(cfg, GRPOConfig)
    kwargs.update(BACKEND_TO_TRL[cfg.generation.backend])
    kwargs["reward_weights"] = [float(f.weight) for f in cfg.reward.funcs]
    return _trl_config(GRPOConfig, kwargs, "trainer.*")


def _trl_config(cls: type, kwargs: dict[str, Any], keys: str):
    """``cls(**kwargs)``; TRL's own consistency checks (a batch not divisible by num_generations, bf16
    without a GPU, ...) become a :class:`ConfigError` naming the settings."""
    try:
        return cls(**kwargs)
    except ValueError as err:
        message = " ".join(str(err).split())
        raise ConfigError(f"TRL's {cls.__name__} rejects the {keys} settings: {message}") from err


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


def build_quantization_config(cfg: DictConfig):
    """A ``BitsAndBytesConfig`` for QLoRA when ``peft.load_in_4bit``, else None."""
    if not cfg.peft.load_in_4bit:
        return None
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=cfg.peft.bnb_4bit_quant_type,
        bnb_4bit_compute_dtype=getattr(torch, cfg.peft.bnb_4bit_compute_dtype),
        bnb_4bit_use_double_quant=cfg.peft.bnb_4bit_use_double_quant,
    )


def build_reward_funcs(cfg: DictConfig) -> list:
    """The configured reward functions (TRL signature), with their parameters bound."""
    from prefix_rft.rewards.rewards import get_reward_funcs

    return get_reward_funcs(list(cfg.reward.funcs))


def build_rl_trainer(cfg: DictConfig, model, tokenizer, train_dataset):
    """The RL trainer of the configured algorithm (its registry entry's class, counting its cost), with the
    algorithm's knobs."""
    from prefix_rft.config.algorithm_args import algorithm_from_config
    from prefix_rft.cost.trainers import with_cost_accounting

    entry, algorithm = algorithm_from_config(cfg)
    if entry.trainer is None:
        raise ValueError(f"algorithm={entry.name} has no RL stage")
    return with_cost_accounting(entry.trainer)(
        model=model,
        reward_funcs=build_reward_funcs(cfg),
        args=build_grpo_config(cfg),
        train_dataset=train_dataset,
        processing_class=tokenizer,
        peft_config=build_peft_config(cfg),
        # Only an algorithm that draws prefix ratios gets (and makes the run build) a scheduler.
        **algorithm.trainer_kwargs(build_prefix_scheduler(cfg) if algorithm.uses_scheduler else None),
    )


# Schedulers built so far, by their settings: the start-up check and the trainer share one object (they are
# frozen dataclasses, so sharing is safe).
_BUILT_SCHEDULERS: dict[tuple, Any] = {}


def build_prefix_scheduler(cfg: DictConfig):
    """The prefix-ratio scheduler of ``scheduler.*`` (for the algorithms whose config ``uses_scheduler``),
    built once per setting: the start-up check builds it, the trainer gets that object."""
    from prefix_rft.prefix.schedulers import scheduler_from_config, scheduler_keys

    name = cfg.scheduler.name
    key = (name, tuple((k, cfg.scheduler[k]) for k in scheduler_keys(name) if k in cfg.scheduler))
    if key not in _BUILT_SCHEDULERS:
        _BUILT_SCHEDULERS[key] = scheduler_from_config(cfg.scheduler)
    return _BUILT_SCHEDULERS[key]


def build_sft_config(cfg: DictConfig):
    """A ``trl.SFTConfig``: the generic Trainer settings of ``trainer.*`` (budget, batch, logging, saving),
    overridden by ``sft_trainer.*``. RL-specific fields that SFTConfig shares by name but not by meaning
    (``loss_type``) are not inherited, and neither is ``trainer.max_steps`` when ``sft_trainer`` sizes the SFT
    by epochs (``num_train_epochs`` without ``max_steps``): an RL step budget would silently cut it."""
    from transformers import TrainingArguments
    from trl import SFTConfig

    from prefix_rft.config.lengths import prompt_length_limit

    generic = {f.name for f in dataclasses.fields(TrainingArguments) if f.init}
    kwargs = {k: v for k, v in trl_kwargs(cfg, SFTConfig).items() if k in generic}
    accepted = {f.name for f in dataclasses.fields(SFTConfig) if f.init}
    sft = {k: v for k, v in set_trainer_args(cfg.sft_trainer).items() if k in accepted}
    if "num_train_epochs" in sft and "max_steps" not in sft:
        kwargs.pop("max_steps", None)
    kwargs.update(sft)
    # Room for prompt + demonstration, like the RL context budget.
    max_completion = set_trainer_args(cfg.trainer).get("max_completion_length", 1024)
    kwargs.setdefault("max_length", prompt_length_limit(cfg) + max_completion)
    return _trl_config(SFTConfig, kwargs, "trainer.* / sft_trainer.*")


def build_sft_trainer(cfg: DictConfig, model, tokenizer, train_dataset):
    """TRL's SFTTrainer on the demonstrations (loss on completion tokens only, same prompt as RL), counting
    its cost."""
    from prefix_rft.cost.trainers import CostAccountingSFTTrainer
    from prefix_rft.trainers.sft import demonstrations_dataset

    return CostAccountingSFTTrainer(
        model=model,
        args=build_sft_config(cfg),
        train_dataset=demonstrations_dataset(train_dataset),
        processing_class=tokenizer,
        peft_config=build_peft_config(cfg),
    )


# The trainer builder of each kind of stage, in the order of prefix_rft.algorithms.STAGE_KINDS.
STAGE_BUILDERS = dict(zip(STAGE_KINDS, (build_sft_trainer, build_rl_trainer)))
