"""Start-up checks: everything knowable from the config fails here, before a model is loaded.

The checks of an algorithm's own knobs live in its config class (``check``), and the trainer runs the
same method again against the ``GRPOConfig`` it receives; this module checks the groups around it.
"""

from __future__ import annotations

import dataclasses
import logging

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from prefix_rft.config.trainer_args import TrainerValues, set_trainer_args
from prefix_rft.errors import ConfigError, MissingExtraError, one_of

__all__ = ["ConfigError", "check_environment", "check_schema", "validate_train_config"]

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


def validate_train_config(cfg: DictConfig) -> None:
    """Run every check that needs no model or data; raises :class:`ConfigError`."""
    from prefix_rft.config.algorithm_args import algorithm_from_config, ignored_knobs
    from prefix_rft.config.build import BACKEND_TO_TRL
    from prefix_rft.prefix.schedulers import scheduler_from_config
    from prefix_rft.rewards.rewards import get_reward_funcs

    check_schema(cfg)
    entry, algo = algorithm_from_config(cfg)
    ignored = ignored_knobs(cfg)
    if ignored:
        logger.info(
            "algorithm=%s ignores %s: knobs of other algorithms (a sweep's shared overrides, scale=cpu's ReLIFT buffer)",
            entry.name,
            ", ".join(f"algorithm.{k}" for k in ignored),
        )
    trainer = TrainerValues(cfg.trainer)
    one_of("generation.backend", cfg.generation.backend, BACKEND_TO_TRL)
    _check_data(cfg.data)
    try:
        get_reward_funcs(list(cfg.reward.funcs))
        scheduler = scheduler_from_config(cfg.scheduler)
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
