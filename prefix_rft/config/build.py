"""Config -> TRL objects: GRPOConfig, PEFT config, reward functions and the trainer."""

from __future__ import annotations

import dataclasses
import logging
import os
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
    """The configured reward functions (TRL signature)."""
    from prefix_rft.rewards.rewards import get_reward_funcs

    return get_reward_funcs(list(cfg.algorithm.reward_funcs))


def build_prefix_args(cfg: DictConfig):
    """The method's knobs (:class:`PrefixRFTArgs`) from the ``algorithm`` group."""
    from prefix_rft.trainers.prefix_rft import PrefixRFTArgs

    algo = cfg.algorithm
    return PrefixRFTArgs(
        num_prefixed=algo.num_prefixed,
        prefix_update=algo.prefix_update,
        keep_fraction=algo.keep_fraction,
        advantage_baseline=algo.advantage_baseline,
        min_prefix_tokens=algo.min_prefix_tokens,
        allow_full_prefix=algo.allow_full_prefix,
        off_policy_loss=algo.off_policy_loss,
        shaping_gamma=algo.shaping_gamma,
        on_policy_clip=algo.on_policy_clip,
    )


def build_rl_trainer(cfg: DictConfig, model, tokenizer, train_dataset):
    """The RL trainer named by ``algorithm.trainer``.

    grpo: TRL's GRPOTrainer; prefix_rft: PrefixRFTTrainer (Prefix-RFT, LUFFY); rl_sft_loss:
    RLWithSFTLossTrainer; relift: ReLIFTTrainer. The last three share PrefixRFTTrainer's rollouts and loss.
    """
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
    algo = cfg.algorithm
    if algo.trainer == "grpo":
        return GRPOTrainer(**common)
    from prefix_rft.config.validate import build_scheduler_from_config

    common["prefix_args"] = build_prefix_args(cfg)
    common["prefix_scheduler"] = build_scheduler_from_config(cfg.scheduler)
    if algo.trainer == "prefix_rft":
        from prefix_rft.trainers.prefix_rft import PrefixRFTTrainer

        return PrefixRFTTrainer(**common)
    if algo.trainer == "rl_sft_loss":
        from prefix_rft.trainers.rl_sft_loss import RLWithSFTLossTrainer

        return RLWithSFTLossTrainer(
            **common, sft_coef=algo.sft_coef, sft_micro_batch_size=algo.sft_micro_batch_size
        )
    if algo.trainer == "relift":
        from prefix_rft.trainers.relift import ReLIFTTrainer

        return ReLIFTTrainer(
            **common,
            sft_buffer_size=algo.sft_buffer_size,
            sft_learning_rate=algo.sft_learning_rate,
            sft_micro_batch_size=algo.sft_micro_batch_size,
        )
    raise ValueError(f"algorithm.trainer={algo.trainer!r} is not an RL trainer")


def build_sft_config(cfg: DictConfig):
    """A ``trl.SFTConfig``: the generic Trainer settings of ``trainer.*`` (budget, batch, logging, saving),
    overridden by ``sft_trainer.*``. RL-specific fields that SFTConfig shares by name but not by meaning
    (``loss_type``) are not inherited."""
    from transformers import TrainingArguments
    from trl import SFTConfig

    generic = {f.name for f in dataclasses.fields(TrainingArguments) if f.init}
    kwargs = {k: v for k, v in trl_kwargs(cfg, SFTConfig).items() if k in generic}
    accepted = {f.name for f in dataclasses.fields(SFTConfig) if f.init}
    kwargs.update({k: v for k, v in set_trainer_args(cfg.sft_trainer).items() if k in accepted})
    # Room for prompt + demonstration, like the RL context budget.
    max_completion = set_trainer_args(cfg.trainer).get("max_completion_length", 1024)
    kwargs.setdefault("max_length", cfg.data.max_prompt_length + max_completion)
    return SFTConfig(**kwargs)


def build_sft_trainer(cfg: DictConfig, model, tokenizer, train_dataset):
    """TRL's SFTTrainer on the demonstrations (loss on completion tokens only, same prompt as RL)."""
    from trl import SFTTrainer

    from prefix_rft.trainers.sft import demonstrations_dataset

    return SFTTrainer(
        model=model,
        args=build_sft_config(cfg),
        train_dataset=demonstrations_dataset(train_dataset),
        processing_class=tokenizer,
        peft_config=build_peft_config(cfg),
    )
