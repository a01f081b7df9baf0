"""Structured configs (dataclasses) for every Hydra group, registered in Hydra's ConfigStore.

Each group in ``conf/`` (model, data, reward, peft, generation) is validated against the dataclass
of the same name here, so an unknown key or a wrong type fails at start-up, before any model is
loaded. ``trainer.*`` holds TRL's own arguments (see :mod:`.trainer_args`); ``algorithm.*`` the knobs
of the registered algorithms (see :mod:`.algorithm_args`); ``scheduler.*`` the keys of the registered
prefix-ratio schedulers (see :mod:`.scheduler_args`). The ``scale`` group has no
schema of its own: it sets values of the other groups.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from prefix_rft.config.model_options import ModelOptions

# OmegaConf cannot validate PEP 604 unions, so ``Optional[...]`` is used throughout this module.
# ruff: noqa: UP045


@dataclass
class ModelConfig(ModelOptions):
    """The policy model and its tokenizer (loading options: :class:`ModelOptions`)."""

    # Hub id, local directory, or ``builtin:<preset>`` (an offline tiny model built on first use).
    name_or_path: str = MISSING
    # Short name used in run folder names.
    short_name: str = "model"
    # Context window the run may use (prompt + completion must fit). Checked at start-up.
    max_context_length: int = 4096


@dataclass
class SyntheticTaskConfig:
    """The offline synthetic math task (used when data.source=synthetic)."""

    # Number of training problems.
    num_train: int = 2000
    # Difficulty (number of arithmetic steps) of training problems: inclusive range.
    train_min_steps: int = 3
    train_max_steps: int = 3
    # Held-out problems for the before/after accuracy printed at the end of a run.
    num_eval: int = 200
    eval_min_steps: int = 3
    eval_max_steps: int = 3
    # Seed of the generator (eval uses seed + 1 and drops any problem the training set contains).
    seed: int = 0


@dataclass
class DataConfig:
    """Training data: where prompts, reference answers and demonstrations come from."""

    # Short name used in run folder names.
    name: str = "data"
    # synthetic (built-in task), hub (datasets.load_dataset id), or local (parquet/jsonl/json file).
    source: str = "synthetic"
    # Hub id or local file path (ignored for synthetic).
    path: Optional[str] = None
    # Dataset split to read.
    split: str = "train"
    # Column holding the problem text (a string) or a ready conversational prompt (list of messages).
    problem_column: str = "problem"
    # Column holding the reference final answer.
    answer_column: str = "answer"
    # Column holding the demonstration (worked solution) used for prefixes/SFT; None = no demonstrations.
    demonstration_column: Optional[str] = "solution"
    # Prompt template: qwen_math, luffy, plain (see prefix_rft.data.prompts).
    prompt_template: str = "qwen_math"
    # When the problem column already holds a message list: keep (use it as the prompt) or template
    # (take its last user turn as the problem and apply prompt_template).
    prompt_messages: str = "keep"
    # Swap the demonstrations (demonstration-quality ablation): a local parquet/jsonl/json file with
    # columns `problem` and `demonstration`, matched to the training rows by problem text.
    demonstrations_file: Optional[str] = None
    # Extra system prompt prepended to every prompt.
    system_prompt: Optional[str] = None
    # Keep this fraction of the training rows (seeded), e.g. 0.1 or 0.01 for the paper's data ablations.
    fraction: float = 1.0
    # Keep at most this many training rows (after fraction).
    max_samples: Optional[int] = None
    # Seed for subset selection.
    seed: int = 0
    # Hard subset: a JSONL of {problem, pass_rate} measured for some model (prefix-rft-pass-rates ...);
    # rows with pass_rate above max_pass_rate are dropped.
    pass_rate_file: Optional[str] = None
    # Keep rows whose measured pass rate is at most this (e.g. 0.0: only prompts the model never solves).
    max_pass_rate: Optional[float] = None
    # Prompts longer than this many tokens are an error (or skipped if on_bad_row=skip); null = what the
    # model's context window leaves after the completion (model.max_context_length - trainer.max_completion_length).
    max_prompt_length: Optional[int] = None
    # What to do with a malformed row (missing/empty problem, answer or demonstration): error or skip.
    on_bad_row: str = "error"
    # Source columns kept beside prompt/answer/demonstration, under their own names: the reward functions
    # receive every column of a row as a keyword argument (e.g. a difficulty or a test-case column).
    extra_columns: list[str] = field(default_factory=list)
    # Settings of the synthetic task.
    synthetic: SyntheticTaskConfig = field(default_factory=SyntheticTaskConfig)


@dataclass
class RewardFuncConfig:
    """One reward function of the ``reward`` group."""

    # A registered name (accuracy, format: prefix_rft.rewards.rewards.REWARD_FUNCS) or an import path
    # ``package.module:function`` of a function with TRL's signature f(completions, **columns) -> list[float].
    name: str = MISSING
    # Weight of this reward in the sum that advantages are computed from.
    weight: float = 1.0
    # Keyword arguments bound to the function, e.g. {style: choice} for multiple-choice accuracy.
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class RewardConfig:
    """The reward functions of the RL stage (their columns: every column of the training rows)."""

    funcs: list[RewardFuncConfig] = field(default_factory=lambda: [RewardFuncConfig(name="accuracy")])


@dataclass
class PeftConfig:
    """Parameter-efficient fine-tuning (LoRA)."""

    # Train a LoRA adapter instead of the full model.
    enabled: bool = False
    # LoRA rank.
    r: int = 16
    # LoRA alpha (scale = alpha / r).
    lora_alpha: int = 32
    # Dropout on the LoRA input.
    lora_dropout: float = 0.05
    # Modules to adapt: "all-linear" or a list of module names.
    target_modules: Any = "all-linear"
    # After training, also save the base model with the adapter folded in to <output_dir>/merged
    # (a plain checkpoint for vLLM or any transformers user; the adapter itself is saved in any case).
    merge_on_save: bool = False
    # Load the base model in 4 bit (QLoRA, needs bitsandbytes and a GPU).
    load_in_4bit: bool = False
    # QLoRA 4-bit weight format: nf4 or fp4.
    bnb_4bit_quant_type: str = "nf4"
    # QLoRA compute dtype: bfloat16, float16 or float32.
    bnb_4bit_compute_dtype: str = "bfloat16"
    # QLoRA double quantization (quantize the quantization constants too).
    bnb_4bit_use_double_quant: bool = True


@dataclass
class GenerationBackendConfig:
    """Rollout generation backend (maps onto TRL's use_vllm / vllm_mode)."""

    # transformers, vllm_colocate, vllm_server.
    backend: str = "transformers"


@dataclass
class HeldoutEvalConfig:
    """The quick held-out accuracy printed before and after training."""

    # Run it at all.
    enabled: bool = True
    # Samples per problem (accuracy is avg@k).
    samples: int = 4
    # Sampling temperature (0 = greedy).
    temperature: float = 0.6
    # Also measure greedy accuracy (one extra greedy pass; reported under greedy/).
    greedy: bool = False
    # Max new tokens per sample.
    max_new_tokens: int = 96
    # Problems per generate() call.
    batch_size: int = 32


@dataclass
class TrainConfig:
    """Top-level config of ``prefix-rft-train``."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    # The registered algorithm and its knobs; typed by train_config_class() from the registry.
    algorithm: Any = MISSING
    reward: RewardConfig = field(default_factory=RewardConfig)
    # Prefix-ratio scheduler; typed by train_config_class() from the registered schedulers.
    scheduler: Any = MISSING
    peft: PeftConfig = field(default_factory=PeftConfig)
    generation: GenerationBackendConfig = field(default_factory=GenerationBackendConfig)
    # TRL GRPOConfig/SFTConfig arguments (generated from the installed TRL; see trainer_args.py); typed
    # by train_config_class().
    trainer: Any = MISSING
    # TRL SFTConfig fields for SFT (algorithm=sft and the SFT stage of sft_then_rft); they override
    # trainer.* there (e.g. an SFT learning rate), so both share the budget set in trainer.*.
    sft_trainer: Any = MISSING
    heldout_eval: HeldoutEvalConfig = field(default_factory=HeldoutEvalConfig)
    # Run folder (checkpoints, logs, resolved config, metrics).
    output_dir: str = MISSING
    # Global seed (also TRL's seed).
    seed: int = 42
    # Resume: null (fresh), "latest" (newest checkpoint in output_dir if any) or a checkpoint path.
    resume_from_checkpoint: Optional[str] = None
    # Modules imported before the config is built, which register algorithms of your own
    # (prefix_rft.plugins; installed entry points of group prefix_rft.algorithms load without it).
    plugins: list[str] = field(default_factory=list)


def train_config_class(trainer_args: type | None = None, algorithm_args: type | None = None) -> type:
    """:class:`TrainConfig` with ``trainer``/``sft_trainer`` typed by TRL's fields, ``algorithm`` by the
    registered algorithms and ``scheduler`` by the registered schedulers (generated on every call, so that
    an algorithm or scheduler registered at run time, e.g. in a test, is part of the schema). The two
    TRL/registry classes may be given (the cached schema); the scheduler's needs neither, so it is live."""
    from prefix_rft.config.scheduler_args import make_scheduler_args_class

    if trainer_args is None:
        from prefix_rft.config.trainer_args import make_trainer_args_class

        trainer_args = make_trainer_args_class()
    if algorithm_args is None:
        from prefix_rft.config.algorithm_args import make_algorithm_args_class

        algorithm_args = make_algorithm_args_class()
    scheduler_args = make_scheduler_args_class()
    return dataclasses.make_dataclass(
        "TrainConfig",
        [
            ("algorithm", algorithm_args, field(default_factory=algorithm_args)),
            ("scheduler", scheduler_args, field(default_factory=scheduler_args)),
            ("trainer", trainer_args, field(default_factory=trainer_args)),
            ("sft_trainer", trainer_args, field(default_factory=trainer_args)),
        ],
        bases=(TrainConfig,),
    )


def register_configs(cached: bool = False) -> None:
    """Register the root schema (conf/config.yaml lists it first in its defaults, so every group is typed)
    and one node per registered algorithm: ``algorithm_registry/<name>`` (its knobs' defaults, which
    ``conf/algorithm/<name>.yaml`` pulls in), and ``algorithm/<name>`` itself when there is no such YAML;
    likewise ``scheduler/<name>`` (its keys' defaults) for a registered scheduler without a YAML preset.

    ``cached``: build the generated groups from the schema cache (:mod:`.schema_cache`) instead of TRL
    and the registry, so that composing a config does not import TRL; only the built-in algorithms are
    known then (the command-line tools; the run itself checks the config against the live schema).
    """
    from prefix_rft.config.paths import conf_dir
    from prefix_rft.config.scheduler_args import scheduler_defaults
    from prefix_rft.config.schema_cache import REGISTRY_GROUP, SchemaSpec
    from prefix_rft.prefix.schedulers import SCHEDULERS

    spec = SchemaSpec.cached() if cached else SchemaSpec.live()
    store = ConfigStore.instance()
    store.store(name="train_schema", node=train_config_class(*spec.classes()))
    presets = conf_dir() / "algorithm"
    for name, node in spec.algorithms.items():
        store.store(group=REGISTRY_GROUP, name=name, node=node)
        if not (presets / f"{name}.yaml").is_file():
            store.store(group="algorithm", name=name, node=node)
    for name in SCHEDULERS:
        if not (conf_dir() / "scheduler" / f"{name}.yaml").is_file():
            store.store(group="scheduler", name=name, node=scheduler_defaults(name))
