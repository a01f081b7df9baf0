"""Structured configs (dataclasses) for every Hydra group, registered in Hydra's ConfigStore.

Each group in ``conf/`` (model, data, algorithm, scheduler, peft, generation) is validated against
the dataclass of the same name here, so an unknown key or a wrong type fails at start-up, before
any model is loaded. ``trainer.*`` holds TRL's own arguments (see :mod:`.trainer_args`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from prefix_rft.config.trainer_args import TrainerArgs

# OmegaConf cannot validate PEP 604 unions, so ``Optional[...]`` is used throughout this module.
# ruff: noqa: UP045


@dataclass
class ModelConfig:
    """The policy model and its tokenizer."""

    # Hub id, local directory, or ``builtin:<preset>`` (an offline tiny model built on first use).
    name_or_path: str = MISSING
    # Short name used in run folder names.
    short_name: str = "model"
    # Hub revision (branch, tag or commit) of the weights.
    revision: Optional[str] = None
    # Weight dtype: auto, bfloat16, float16 or float32.
    dtype: str = "auto"
    # attn_implementation passed to from_pretrained (eager, sdpa, flash_attention_2); None = transformers' choice.
    attn_implementation: Optional[str] = None
    # Allow custom modelling code from the hub.
    trust_remote_code: bool = False
    # Chat template: None keeps the tokenizer's own, a name from prefix_rft.models.chat_templates, or a Jinja string.
    chat_template: Optional[str] = None
    # Context window the run may use (prompt + completion must fit). Checked at start-up.
    max_context_length: int = 4096
    # Overrides applied to the model's config before loading (e.g. rope_theta / max_position_embeddings
    # for the 16k-context Qwen2.5-Math variant).
    config_overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class SyntheticTaskConfig:
    """The offline synthetic math task (used when data.source=synthetic)."""

    # Number of training problems.
    num_train: int = 2000
    # Difficulty (number of arithmetic steps) of training problems: inclusive range.
    train_min_steps: int = 1
    train_max_steps: int = 4
    # Held-out problems for the before/after accuracy printed at the end of a run.
    num_eval: int = 64
    eval_min_steps: int = 1
    eval_max_steps: int = 4
    # Seed of the generator (eval uses seed + 1 so the two sets never overlap by construction).
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
    # Hard subset: a JSONL of {problem, pass_rate} measured for some model (python -m
    # prefix_rft.data.subsets ...); rows with pass_rate above max_pass_rate are dropped.
    pass_rate_file: Optional[str] = None
    # Keep rows whose measured pass rate is at most this (e.g. 0.0: only prompts the model never solves).
    max_pass_rate: Optional[float] = None
    # Prompts longer than this many tokens are an error (or skipped if on_bad_row=skip).
    max_prompt_length: int = 1024
    # What to do with a malformed row (missing/empty problem, answer or demonstration): error or skip.
    on_bad_row: str = "error"
    # Settings of the synthetic task.
    synthetic: SyntheticTaskConfig = field(default_factory=SyntheticTaskConfig)


@dataclass
class AlgorithmConfig:
    """Which training algorithm runs and the knobs the method adds on top of TRL."""

    # Name of the algorithm (also the run folder name).
    name: str = MISSING
    # Trainer: grpo (TRL GRPOTrainer), prefix_rft (PrefixRFTTrainer, also LUFFY), rl_sft_loss
    # (Dr. GRPO + NLL on demonstrations), relift (RL + SFT steps on a buffer of failed prompts),
    # sft (TRL SFTTrainer on the demonstrations).
    trainer: str = "prefix_rft"
    # Run an SFT stage (settings: sft_trainer.*) before the RL trainer, each in its own subfolder
    # (stage1_sft, stage2_rl) of the run: the SFT -> RFT baseline.
    sft_first: bool = False
    # Reward functions by name (see prefix_rft.rewards.rewards.REWARD_FUNCS).
    reward_funcs: list[str] = field(default_factory=lambda: ["accuracy"])
    # Weights of the reward functions (None = all 1).
    reward_weights: Optional[list[float]] = None
    # Hybrid rollouts per group that start from a demonstration prefix (paper: 1; 0 = plain RFT).
    num_prefixed: int = 1
    # Which prefix tokens keep their advantage: entropy_top, entropy_bottom, random, all, none.
    prefix_update: str = "entropy_top"
    # Fraction of prefix tokens updated by entropy_top/entropy_bottom/random (paper: 0.2).
    keep_fraction: float = 0.2
    # Advantage baseline: group (Dr. GRPO over the whole group, paper) or on_policy (ablation).
    advantage_baseline: str = "group"
    # Shortest prefix in tokens.
    min_prefix_tokens: int = 1
    # Allow a prefix to cover the whole demonstration (LUFFY-style off-policy rollout with ratio 1).
    allow_full_prefix: bool = False
    # Loss of full-demonstration rollouts: clipped (PPO surrogate like every other token) or shaped
    # (LUFFY's regularized importance sampling f(p) = p / (p + gamma), no clipping, no old-policy ratio).
    off_policy_loss: str = "clipped"
    # gamma of the policy shaping f(p) = p / (p + gamma) (LUFFY: 0.1).
    shaping_gamma: float = 0.1
    # Clip the PPO ratio of on-policy tokens (False matches LUFFY's published script, which removes it).
    on_policy_clip: bool = True
    # Weight of the NLL of the demonstrations of the batch's prompts added to the RL loss (rl_sft_loss).
    sft_coef: float = 0.0
    # ReLIFT: prompts whose rollouts all score 0 enter a buffer with their demonstration; when it holds
    # this many prompts, one SFT step runs on them (published: 128).
    sft_buffer_size: int = 128
    # ReLIFT: learning rate of the SFT steps' own AdamW optimizer (published: 1e-6).
    sft_learning_rate: float = 1.0e-6
    # ReLIFT / rl_sft_loss: rows per forward pass of the SFT term (memory bound, not the batch size).
    sft_micro_batch_size: int = 4


@dataclass
class SchedulerConfig:
    """Prefix-ratio scheduler: l ~ U(low_t, high) with low_t decaying over training."""

    # cosine (paper), linear, uniform, constant.
    name: str = "cosine"
    # Upper bound of the prefix ratio (paper: 0.95).
    high: float = 0.95
    # Lower bound at step 0 (cosine/linear; paper: 0.95).
    low_start: float = 0.95
    # Lower bound after decay_steps (cosine/linear; paper: 0.05).
    low_end: float = 0.05
    # Steps over which the lower bound decays (paper: 500).
    decay_steps: int = 500
    # Fixed lower bound (uniform).
    low: float = 0.05
    # Fixed ratio (constant).
    value: float = 0.5


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
    # Max new tokens per sample.
    max_new_tokens: int = 96
    # Problems per generate() call.
    batch_size: int = 32


@dataclass
class TrainConfig:
    """Top-level config of ``prefix-rft-train``."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    peft: PeftConfig = field(default_factory=PeftConfig)
    generation: GenerationBackendConfig = field(default_factory=GenerationBackendConfig)
    # TRL GRPOConfig/SFTConfig arguments (generated from the installed TRL; see trainer_args.py).
    trainer: TrainerArgs = field(default_factory=TrainerArgs)
    # TRL SFTConfig fields for SFT (algorithm=sft and the SFT stage of sft_then_rft); they override
    # trainer.* there (e.g. an SFT learning rate), so both share the budget set in trainer.*.
    sft_trainer: TrainerArgs = field(default_factory=TrainerArgs)
    heldout_eval: HeldoutEvalConfig = field(default_factory=HeldoutEvalConfig)
    # Run folder (checkpoints, logs, resolved config, metrics).
    output_dir: str = MISSING
    # Global seed (also TRL's seed).
    seed: int = 42
    # Resume: null (fresh), "latest" (newest checkpoint in output_dir if any) or a checkpoint path.
    resume_from_checkpoint: Optional[str] = None


def register_configs() -> None:
    """Register the root schema; conf/config.yaml lists it first in its defaults so every group is typed."""
    ConfigStore.instance().store(name="train_schema", node=TrainConfig)
