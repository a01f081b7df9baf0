"""Start-up checks: everything knowable from the config fails here, before a model is loaded.

The checks of an algorithm's own knobs live in its config class (``check``), and the trainer runs the
same method again against the ``GRPOConfig`` it receives; this module checks the groups around it.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from prefix_rft.config.trainer_args import TrainerValues, set_trainer_args
from prefix_rft.errors import ConfigError, MissingExtraError, one_of

__all__ = [
    "ConfigError",
    "check_environment",
    "check_ranges",
    "check_schema",
    "check_trl_configs",
    "validate_train_config",
]

logger = logging.getLogger(__name__)

DATA_SOURCES = ("synthetic", "hub", "local")


def check_schema(cfg: DictConfig) -> None:
    """Reject keys the schema does not know, including ones added with Hydra's ``+key=value``."""
    from prefix_rft.config.schema import train_config_class

    # Re-create the config as plain data first: a composed config carries the relaxed struct flags of
    # Hydra's '+' overrides, and merging it would let those keys through.
    plain = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    try:
        OmegaConf.merge(OmegaConf.structured(train_config_class()), plain)
    except OmegaConfBaseException as err:
        raise ConfigError(f"invalid config: {err}") from err


def validate_train_config(cfg: DictConfig, overrides: list[str] | None = None) -> None:
    """Run every check that needs no model or data; raises :class:`ConfigError`.

    ``overrides``: the command line's overrides, for the notices about knobs the run ignores (only the
    ones the user set are reported; None: every set knob counts as the user's).
    """
    from prefix_rft.config.algorithm_args import algorithm_from_config
    from prefix_rft.config.build import BACKEND_TO_TRL, build_prefix_scheduler
    from prefix_rft.config.knob_notices import report_ignored_knobs
    from prefix_rft.rewards.rewards import get_reward_funcs

    check_schema(cfg)
    entry, algo = algorithm_from_config(cfg)
    report_ignored_knobs(cfg, overrides)
    check_ranges(cfg)
    trainer = TrainerValues(cfg.trainer)
    one_of("generation.backend", cfg.generation.backend, BACKEND_TO_TRL)
    _check_data(cfg.data)
    try:
        get_reward_funcs(list(cfg.reward.funcs))
        # An algorithm that draws no prefix ratio reads no scheduler: its values are ignored, not checked.
        scheduler = build_prefix_scheduler(cfg) if algo.uses_scheduler else None
    except ValueError as err:
        raise ConfigError(str(err)) from err
    if getattr(scheduler, "rising", False):
        logger.warning(
            "scheduler.low_start=%s < scheduler.low_end=%s: the prefix ratio's lower bound rises over "
            "training (scheduler.allow_rising=true; the paper's schedule falls)",
            cfg.scheduler.low_start,
            cfg.scheduler.low_end,
        )

    algo.check(trainer)
    if entry.requires_demonstrations(algo) and not cfg.data.demonstration_column:
        raise ConfigError(
            f"algorithm={entry.name} trains on demonstrations: set data.demonstration_column to the column "
            "that holds worked solutions"
        )
    _check_sft_trainer(cfg)
    _check_deepspeed(cfg)
    _check_budget(cfg)
    _check_peft(cfg.peft)
    _check_context(cfg, trainer)


# Ranges of the values that TRL's and torch's own checks leave to fail late (AdamW rejects a negative
# learning rate only when the optimizer is built, after the model loaded; a batch of 0 fails in the data
# loader; numpy refuses a negative seed in the first call that seeds). key -> (test, what is expected).
# Checked in both trainer groups; a key that is not set keeps TRL's default and is not checked.
_POSITIVE_INT = (lambda v: v >= 1, "a whole number >= 1")
_NON_NEGATIVE = (lambda v: v >= 0, "a number >= 0")
_FRACTION = (lambda v: 0 <= v <= 1, "a number in [0, 1]")
TRAINER_RANGES: dict[str, tuple[Any, str]] = {
    "learning_rate": _NON_NEGATIVE,
    "per_device_train_batch_size": _POSITIVE_INT,
    "per_device_eval_batch_size": _POSITIVE_INT,
    "gradient_accumulation_steps": _POSITIVE_INT,
    "max_completion_length": _POSITIVE_INT,
    "max_prompt_length": _POSITIVE_INT,
    "max_length": _POSITIVE_INT,
    "num_generations": (lambda v: v >= 2, "a whole number >= 2 (advantages compare rollouts of a group)"),
    "generation_batch_size": _POSITIVE_INT,
    "steps_per_generation": _POSITIVE_INT,
    "num_iterations": _POSITIVE_INT,
    "num_train_epochs": _NON_NEGATIVE,
    "logging_steps": (lambda v: v > 0, "a number > 0"),
    "save_steps": (lambda v: v > 0, "a number > 0"),
    "save_total_limit": _POSITIVE_INT,
    "weight_decay": _NON_NEGATIVE,
    "max_grad_norm": _NON_NEGATIVE,
    "warmup_ratio": _FRACTION,
    "warmup_steps": _NON_NEGATIVE,
    "adam_beta1": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "adam_beta2": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "adam_epsilon": _NON_NEGATIVE,
    "temperature": (lambda v: v > 0, "a number > 0"),
    "top_p": (lambda v: 0 < v <= 1, "a number in (0, 1]"),
    "top_k": _NON_NEGATIVE,
    "min_p": _FRACTION,
    "repetition_penalty": (lambda v: v > 0, "a number > 0"),
    "beta": _NON_NEGATIVE,
    "epsilon": _NON_NEGATIVE,
    "epsilon_high": _NON_NEGATIVE,
    "dataloader_num_workers": _NON_NEGATIVE,
}
# The other groups' numbers whose schema type admits values that cannot work.
OTHER_RANGES: dict[str, tuple[Any, str]] = {
    "seed": (lambda v: 0 <= v < 2**32, "a whole number in [0, 2**32)"),
    "model.max_context_length": _POSITIVE_INT,
    "data.seed": (lambda v: 0 <= v < 2**32, "a whole number in [0, 2**32)"),
    "data.max_samples": _POSITIVE_INT,
    "data.max_prompt_length": _POSITIVE_INT,
    "data.synthetic.num_train": _POSITIVE_INT,
    "data.synthetic.num_eval": _NON_NEGATIVE,
    "heldout_eval.samples": _POSITIVE_INT,
    "heldout_eval.max_new_tokens": _POSITIVE_INT,
    "heldout_eval.batch_size": _POSITIVE_INT,
    "heldout_eval.temperature": _NON_NEGATIVE,
    "peft.r": _POSITIVE_INT,
    "peft.lora_alpha": (lambda v: v > 0, "a number > 0"),
    "peft.lora_dropout": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
}


def check_ranges(cfg: DictConfig) -> None:
    """Refuse numbers outside the range that can work (:data:`TRAINER_RANGES`, :data:`OTHER_RANGES`)."""
    values: dict[str, Any] = {}
    for group in ("trainer", "sft_trainer"):
        for key, value in set_trainer_args(cfg[group]).items():
            if key in TRAINER_RANGES:
                values[f"{group}.{key}"] = (value, TRAINER_RANGES[key])
    for key, rule in OTHER_RANGES.items():
        values[key] = (OmegaConf.select(cfg, key, throw_on_missing=False), rule)
    for key, (value, (ok, expected)) in values.items():
        if value is None or isinstance(value, bool) or not isinstance(value, int | float):
            continue  # unset, or a type the schema already refused
        if not ok(value):
            raise ConfigError(f"{key}={value} is not valid; expected {expected}")


def check_trl_configs(cfg: DictConfig) -> None:
    """Build the TRL config objects of the run's stages (``GRPOConfig`` for RL, ``SFTConfig`` for SFT) so
    that TRL's own checks of them (batch sizes that do not divide, bf16 without a GPU, ...) fail before
    a model is loaded; the trainers build them again from the same config."""
    from prefix_rft.config.algorithm_args import algorithm_from_config
    from prefix_rft.config.build import build_grpo_config, build_sft_config

    if _uses_deepspeed(cfg):
        # With DeepSpeed, a TRL config registers a process-wide DeepSpeed config (ZeRO-3 model loading
        # reads it) and needs the deepspeed package: only the trainer builds it, once.
        return
    entry, _ = algorithm_from_config(cfg)
    builders = {"rl": build_grpo_config, "sft": build_sft_config}
    for kind in entry.stages:
        builders[kind](cfg)


def _uses_deepspeed(cfg: DictConfig) -> bool:
    from prefix_rft.launch_env import launched_with

    configured = any(set_trainer_args(cfg[g]).get("deepspeed") for g in ("trainer", "sft_trainer"))
    return configured or launched_with("DEEPSPEED")


def _check_context(cfg: DictConfig, trainer: TrainerValues) -> None:
    from prefix_rft.config.lengths import prompt_length_limit

    completion, window = trainer.max_completion_length, cfg.model.max_context_length
    if cfg.data.max_prompt_length is None:
        if prompt_length_limit(cfg) < 1:
            raise ConfigError(
                f"trainer.max_completion_length ({completion}) leaves no room for a prompt in "
                f"model.max_context_length ({window}); lower it or raise the model's context window"
            )
        return
    needed = cfg.data.max_prompt_length + completion
    if needed > window:
        raise ConfigError(
            f"data.max_prompt_length ({cfg.data.max_prompt_length}) + trainer.max_completion_length "
            f"({completion}) = {needed} exceeds model.max_context_length ({window}); lower one of them "
            "(data.max_prompt_length=null fits prompts to the window) or raise the model's context window"
        )


def _check_budget(cfg: DictConfig) -> None:
    """Training length: trainer.max_steps (and sft_trainer.max_steps) > 0, or -1 = TRL's "train
    trainer.num_train_epochs epochs"; anything else would train a surprising number of steps."""
    for group in ("trainer", "sft_trainer"):
        values = set_trainer_args(cfg[group])
        steps = values.get("max_steps")
        if steps is None:
            continue
        if steps == -1:
            epochs = values.get(
                "num_train_epochs", set_trainer_args(cfg.trainer).get("num_train_epochs", 3.0)
            )
            if epochs <= 0:
                raise ConfigError(
                    f"{group}.max_steps=-1 trains {group}.num_train_epochs epochs, but that is {epochs}; "
                    "set a positive number of epochs or of steps"
                )
        elif steps < 1:
            raise ConfigError(
                f"{group}.max_steps={steps} is not valid; expected a positive number of optimizer steps, "
                f"or -1 to train {group}.num_train_epochs epochs"
            )


def _require_module(module: str, needed_by: str, install: str) -> None:
    import importlib

    try:
        importlib.import_module(module)
    except ImportError as err:
        raise MissingExtraError(
            f"{needed_by} needs the {module} package ({err}); install it with {install}"
        ) from err


def check_environment(cfg: DictConfig) -> None:
    """What this machine must have for the config: the optional packages (and GPU) the chosen groups
    need. Separate from :func:`validate_train_config` so that a GPU recipe can be checked on a laptop;
    the run calls both before any model is loaded."""
    if cfg.peft.load_in_4bit:
        _require_module(
            "bitsandbytes",
            "peft=qlora (peft.load_in_4bit=true)",
            "pip install bitsandbytes (on a CUDA machine)",
        )
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(
                "peft=qlora (peft.load_in_4bit=true) loads the base model in 4 bit, which needs a CUDA GPU; "
                "none is visible (use peft=lora on this machine)"
            )
    if cfg.generation.backend != "transformers":
        _require_module(
            "vllm",
            f"generation={cfg.generation.backend}",
            "pip install -e '.[vllm]' on a CUDA machine (or use generation=transformers)",
        )


def _check_data(data: DictConfig) -> None:
    from prefix_rft.data.prompts import PROMPT_TEMPLATES

    one_of("data.source", data.source, DATA_SOURCES)
    one_of("data.on_bad_row", data.on_bad_row, ("error", "skip"))
    one_of("data.prompt_messages", data.prompt_messages, ("keep", "template"))
    one_of("data.prompt_template", data.prompt_template, PROMPT_TEMPLATES)
    if data.max_pass_rate is not None and not data.pass_rate_file:
        raise ConfigError("data.max_pass_rate needs data.pass_rate_file (prefix-rft-pass-rates ...)")
    if not 0.0 < data.fraction <= 1.0:
        raise ConfigError(f"data.fraction={data.fraction} must be in (0, 1]")


def _check_sft_trainer(cfg: DictConfig) -> None:
    from trl import SFTConfig

    sft_fields = {f.name for f in dataclasses.fields(SFTConfig)}
    for key in set_trainer_args(cfg.sft_trainer):
        if key not in sft_fields:
            raise ConfigError(f"sft_trainer.{key} is not a field of TRL's SFTConfig")


def _check_deepspeed(cfg: DictConfig) -> None:
    """Refuse a DeepSpeed set-up that silently drops gradients (prefix_rft/config/deepspeed_guard.py): the
    configs of ``trainer.deepspeed`` / ``sft_trainer.deepspeed`` and the one ``accelerate launch`` passed."""
    from prefix_rft.config.deepspeed_guard import (
        UnsafeDeepSpeedError,
        check_environment,
        check_offload_setting,
        offload_setting,
    )

    for group in ("trainer", "sft_trainer"):
        value = set_trainer_args(cfg[group]).get("deepspeed")
        if value is None:
            continue
        try:
            check_offload_setting(offload_setting(value, f"{group}.deepspeed"))
        except UnsafeDeepSpeedError as err:
            key = f"{group}.deepspeed"
            raise ConfigError(str(err) if key in str(err) else f"{key}: {err}") from None
    try:
        check_environment()
    except UnsafeDeepSpeedError as err:
        raise ConfigError(str(err)) from None


def _check_peft(peft: DictConfig) -> None:
    if not peft.load_in_4bit:
        return
    if not peft.enabled:
        raise ConfigError(
            "peft.load_in_4bit=true (QLoRA) needs peft.enabled=true: a 4-bit base cannot be trained"
        )
    one_of("peft.bnb_4bit_quant_type", peft.bnb_4bit_quant_type, ("nf4", "fp4"))
    one_of("peft.bnb_4bit_compute_dtype", peft.bnb_4bit_compute_dtype, ("bfloat16", "float16", "float32"))
