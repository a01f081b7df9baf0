"""Start-up checks: everything knowable from the config fails here, before a model is loaded."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from prefix_rft.config.schema import TrainConfig
from prefix_rft.config.trainer_args import set_trainer_args

TRAINERS = ("grpo", "prefix_rft", "rl_sft_loss", "relift", "sft")
# Trainers built on PrefixRFTTrainer (its rollouts and loss).
PREFIX_TRAINERS = ("prefix_rft", "rl_sft_loss", "relift")
NEEDS_DEMONSTRATIONS = ("rl_sft_loss", "relift", "sft")
BACKENDS = ("transformers", "vllm_colocate", "vllm_server")
DATA_SOURCES = ("synthetic", "hub", "local")
PREFIX_UPDATE_MODES = ("entropy_top", "entropy_bottom", "random", "all", "none")
ADVANTAGE_BASELINES = ("group", "on_policy")
LOSS_TYPES_WITH_PREFIXES = ("dr_grpo", "grpo", "bnpo")


class ConfigError(ValueError):
    """A config value is invalid; the message names the key and what was expected."""


def _one_of(key: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}={value!r} is not valid; expected one of {list(allowed)}")


def check_schema(cfg: DictConfig) -> None:
    """Reject keys the schema does not know, including ones added with Hydra's ``+key=value``."""
    # Re-create the config as plain data first: a composed config carries the relaxed struct flags of
    # Hydra's '+' overrides, and merging it would let those keys through.
    plain = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    try:
        OmegaConf.merge(OmegaConf.structured(TrainConfig), plain)
    except OmegaConfBaseException as err:
        raise ConfigError(f"invalid config: {err}") from err


def validate_train_config(cfg: DictConfig) -> None:
    """Run every check that needs no model or data; raises :class:`ConfigError`."""
    check_schema(cfg)
    algo, trainer = cfg.algorithm, set_trainer_args(cfg.trainer)
    _one_of("algorithm.trainer", algo.trainer, TRAINERS)
    _one_of("generation.backend", cfg.generation.backend, BACKENDS)
    _one_of("data.source", cfg.data.source, DATA_SOURCES)
    _one_of("data.on_bad_row", cfg.data.on_bad_row, ("error", "skip"))
    _one_of("data.prompt_messages", cfg.data.prompt_messages, ("keep", "template"))
    if cfg.data.max_pass_rate is not None and not cfg.data.pass_rate_file:
        raise ConfigError(
            "data.max_pass_rate needs data.pass_rate_file (python -m prefix_rft.data.subsets ...)"
        )
    _one_of("algorithm.prefix_update", algo.prefix_update, PREFIX_UPDATE_MODES)
    _one_of("algorithm.advantage_baseline", algo.advantage_baseline, ADVANTAGE_BASELINES)

    from prefix_rft.data.prompts import PROMPT_TEMPLATES
    from prefix_rft.prefix.schedulers import build_scheduler
    from prefix_rft.rewards.rewards import get_reward_funcs

    _one_of("data.prompt_template", cfg.data.prompt_template, tuple(PROMPT_TEMPLATES))
    try:
        get_reward_funcs(list(algo.reward_funcs))
        build_scheduler_from_config(cfg.scheduler, build_scheduler)
    except ValueError as err:
        raise ConfigError(str(err)) from err
    if algo.reward_weights is not None and len(algo.reward_weights) != len(algo.reward_funcs):
        raise ConfigError(
            f"algorithm.reward_weights has {len(algo.reward_weights)} values but algorithm.reward_funcs "
            f"has {len(algo.reward_funcs)}"
        )

    num_generations = trainer.get("num_generations", 8)
    if not 0 <= algo.num_prefixed <= num_generations:
        raise ConfigError(
            f"algorithm.num_prefixed={algo.num_prefixed} must be between 0 and "
            f"trainer.num_generations={num_generations}"
        )
    if algo.trainer == "grpo" and algo.num_prefixed:
        raise ConfigError(
            "algorithm.num_prefixed must be 0 with algorithm.trainer=grpo (use trainer=prefix_rft)"
        )
    if not 0.0 < algo.keep_fraction <= 1.0:
        raise ConfigError(f"algorithm.keep_fraction={algo.keep_fraction} must be in (0, 1]")
    if algo.num_prefixed and not cfg.data.demonstration_column:
        raise ConfigError(
            "algorithm.num_prefixed > 0 needs demonstrations: set data.demonstration_column to the column that "
            "holds worked solutions"
        )
    if algo.trainer in NEEDS_DEMONSTRATIONS or algo.sft_first:
        if not cfg.data.demonstration_column:
            raise ConfigError(
                f"algorithm={algo.name} trains on demonstrations: set data.demonstration_column to the column "
                "that holds worked solutions"
            )
    _check_baseline_knobs(cfg)
    if algo.trainer in PREFIX_TRAINERS:
        loss_type = trainer.get("loss_type", "dapo")
        _one_of("trainer.loss_type", loss_type, LOSS_TYPES_WITH_PREFIXES)
        if trainer.get("beta", 0.0) != 0.0:
            raise ConfigError(
                "trainer.beta must be 0 for algorithm.trainer=prefix_rft (the method uses no KL term)"
            )
        if trainer.get("importance_sampling_level", "token") != "token":
            raise ConfigError(
                "trainer.importance_sampling_level must be 'token' for algorithm.trainer=prefix_rft"
            )

    if cfg.peft.load_in_4bit:
        if not cfg.peft.enabled:
            raise ConfigError(
                "peft.load_in_4bit=true (QLoRA) needs peft.enabled=true: a 4-bit base cannot be trained"
            )
        _one_of("peft.bnb_4bit_quant_type", cfg.peft.bnb_4bit_quant_type, ("nf4", "fp4"))
        _one_of(
            "peft.bnb_4bit_compute_dtype", cfg.peft.bnb_4bit_compute_dtype, ("bfloat16", "float16", "float32")
        )
    if not 0.0 < cfg.data.fraction <= 1.0:
        raise ConfigError(f"data.fraction={cfg.data.fraction} must be in (0, 1]")
    max_completion = trainer.get("max_completion_length", 512)
    needed = cfg.data.max_prompt_length + max_completion
    if needed > cfg.model.max_context_length:
        raise ConfigError(
            f"data.max_prompt_length ({cfg.data.max_prompt_length}) + trainer.max_completion_length "
            f"({max_completion}) = {needed} exceeds model.max_context_length ({cfg.model.max_context_length}); "
            "lower one of them or raise the model's context window"
        )


def _check_baseline_knobs(cfg: DictConfig) -> None:
    """Checks of the keys that the baselines (SFT, LUFFY, RL+SFT loss, ReLIFT) add."""
    algo = cfg.algorithm
    _one_of("algorithm.off_policy_loss", algo.off_policy_loss, ("clipped", "shaped"))
    if algo.off_policy_loss == "shaped" and not algo.allow_full_prefix:
        raise ConfigError(
            "algorithm.off_policy_loss=shaped applies to full-demonstration rollouts only: set "
            "algorithm.allow_full_prefix=true (and a scheduler that reaches ratio 1, e.g. scheduler=constant "
            "scheduler.value=1.0)"
        )
    if algo.shaping_gamma <= 0:
        raise ConfigError(f"algorithm.shaping_gamma={algo.shaping_gamma} must be > 0")
    if algo.sft_coef < 0:
        raise ConfigError(f"algorithm.sft_coef={algo.sft_coef} must be >= 0")
    if algo.sft_buffer_size < 1:
        raise ConfigError(f"algorithm.sft_buffer_size={algo.sft_buffer_size} must be >= 1")
    if algo.sft_learning_rate <= 0:
        raise ConfigError(f"algorithm.sft_learning_rate={algo.sft_learning_rate} must be > 0")
    if algo.sft_micro_batch_size < 1:
        raise ConfigError(f"algorithm.sft_micro_batch_size={algo.sft_micro_batch_size} must be >= 1")
    if algo.sft_first and algo.trainer == "sft":
        raise ConfigError("algorithm.sft_first=true needs an RL trainer after the SFT stage, not trainer=sft")
    import dataclasses

    from trl import SFTConfig

    sft_fields = {f.name for f in dataclasses.fields(SFTConfig)}
    for key in set_trainer_args(cfg.sft_trainer):
        if key not in sft_fields:
            raise ConfigError(f"sft_trainer.{key} is not a field of TRL's SFTConfig")


def build_scheduler_from_config(sched_cfg: DictConfig, build_scheduler=None):
    """Instantiate the prefix-ratio scheduler named by ``scheduler.name`` with the keys it uses."""
    if build_scheduler is None:
        from prefix_rft.prefix.schedulers import build_scheduler
    name = sched_cfg.name
    if name in ("cosine", "linear"):
        kwargs = {
            "high": sched_cfg.high,
            "low_start": sched_cfg.low_start,
            "low_end": sched_cfg.low_end,
            "decay_steps": sched_cfg.decay_steps,
        }
    elif name == "uniform":
        kwargs = {"low": sched_cfg.low, "high": sched_cfg.high}
    elif name == "constant":
        kwargs = {"value": sched_cfg.value}
    else:
        raise ConfigError(
            f"scheduler.name={name!r} is not valid; expected one of cosine, linear, uniform, constant"
        )
    return build_scheduler(name, **kwargs)
