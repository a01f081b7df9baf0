"""Structured config of ``prefix-rft-eval`` (conf/eval.yaml), registered in Hydra's ConfigStore.

The root node is typed by :class:`EvalConfig`, so an unknown key or a wrong type fails at start-up,
before any model is loaded; :func:`validate_eval_config` checks the values. The evaluation code reads
an :class:`EvalConfig` object (:func:`to_eval_config`), never a plain dict.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore

from prefix_rft.config.model_options import ModelOptions
from prefix_rft.errors import ConfigError, one_of

__all__ = ["ConfigError", "EvalConfig", "SyntheticEvalConfig", "VllmEvalConfig", "to_eval_config"]

# OmegaConf cannot validate PEP 604 unions, so ``Optional[...]`` is used throughout this module.
# ruff: noqa: UP045


@dataclass
class SyntheticEvalConfig:
    """The built-in synthetic benchmark (``benchmarks=[synthetic]``)."""

    # Number of problems.
    num: int = 32
    # Generator seed; 1 = the held-out set of a training run with data.synthetic.seed=0.
    seed: int = 1
    # Difficulty range (number of arithmetic steps), inclusive.
    min_steps: int = 1
    max_steps: int = 4


@dataclass
class VllmEvalConfig:
    """vLLM engine options (backend=vllm only)."""

    # GPUs to shard the model over.
    tensor_parallel_size: int = 1
    # Fraction of GPU memory vLLM may take.
    gpu_memory_utilization: float = 0.85
    # Context window vLLM allocates for (prompt + completion); None = the model's own.
    max_model_len: Optional[int] = None
    # Largest LoRA rank an adapter may have.
    max_lora_rank: int = 64


@dataclass
class EvalConfig(ModelOptions):
    """Top-level config of ``prefix-rft-eval`` (model loading options: :class:`ModelOptions`)."""

    # Model: hub id, builtin:<preset>, a full checkpoint folder, or a LoRA adapter folder (its base
    # model is read from adapter_config.json).
    model_path: str = "builtin:tiny-warm"
    # LoRA adapter folder applied on top of model_path (None = no adapter).
    adapter_path: Optional[str] = None
    # Label of this run in summaries and compare tables (None = derived from model_path/adapter_path).
    run_name: Optional[str] = None

    # Benchmarks: names (aime24, aime25, amc, math500, minerva, olympiadbench, arc_c, gpqa, mmlu_pro,
    # gsm8k, synthetic), files (.parquet LUFFY format, .jsonl/.json Qwen2.5-Math layout), hub:<id>[:<split>],
    # or NAME@SOURCE. Empty with data_file set = every benchmark in data_file.
    benchmarks: list[str] = field(default_factory=lambda: ["synthetic"])
    # LUFFY evaluation parquet in which benchmark names are looked up first.
    data_file: Optional[str] = None
    # Folder of Qwen2.5-Math layout JSONL files (math500.jsonl, aime24.jsonl, ...) looked up next.
    data_dir: Optional[str] = None
    # Keep only the first N problems of each benchmark (quick runs); None = all.
    max_items: Optional[int] = None
    # The synthetic benchmark.
    synthetic: SyntheticEvalConfig = field(default_factory=SyntheticEvalConfig)

    # Samples per problem k; None = each benchmark's default (32 for AIME24/AIME25/AMC, 1 otherwise, 4 synthetic).
    samples: Optional[int] = None
    # k values of the unbiased pass@k estimates in the summary (only those <= samples are reported).
    pass_k: list[int] = field(default_factory=lambda: [1])
    # Sampling temperature (0 = greedy). LUFFY's evaluation: 0.6.
    temperature: float = 0.6
    # Nucleus sampling threshold. LUFFY's evaluation: 1.0.
    top_p: float = 1.0
    # Max new tokens per sample. LUFFY's evaluation: 8192.
    max_new_tokens: int = 8192
    # Sequences per generate() call, also how often results are written. With backend=vllm use a large
    # value (e.g. 2048): vLLM batches within a call, and a bigger chunk only risks more work on a crash.
    batch_size: int = 32
    # Base seed; each sample's seed derives from it and the sample's key.
    seed: int = 0
    # Generation backend: transformers or vllm.
    backend: str = "transformers"
    # vLLM engine options.
    vllm: VllmEvalConfig = field(default_factory=VllmEvalConfig)

    # Prompt: auto (the file's own prompt where it has one, i.e. the LUFFY parquet; plain for the synthetic
    # task; else qwen_math),
    # qwen_math (problem + "Please reason step by step..."; the paper's), luffy, or plain.
    prompt_template: str = "auto"
    # System prompt prepended to every prompt (replaces a file prompt's own system turn); None = none.
    system_prompt: Optional[str] = None
    # Render prompts with the chat template (True) or feed the raw text (False).
    use_chat_template: bool = True

    # Grader worker processes (math-verify comparisons run in parallel).
    grader_workers: int = 1
    # Seconds one answer comparison may take before it is scored wrong.
    grader_timeout: float = 5.0

    # Run folder: samples.jsonl, summary.{json,csv,md}, eval_config.json. Rerun with the same folder to resume.
    output_dir: str = "outputs/eval/run"
    # Start over: delete the folder's samples.jsonl instead of resuming from it.
    overwrite: bool = False
    # Stop after writing this many new samples (chunked jobs); None = run to the end.
    stop_after: Optional[int] = None
    # Show a tqdm progress bar.
    progress: bool = True

    def model_options(self) -> ModelOptions:
        """The model loading options of this evaluation."""
        return ModelOptions(**{f.name: getattr(self, f.name) for f in dataclasses.fields(ModelOptions)})


def register_eval_configs() -> None:
    """Register the root schema; conf/eval.yaml lists it first in its defaults."""
    ConfigStore.instance().store(name="eval_schema", node=EvalConfig)


def to_eval_config(cfg: EvalConfig | Any) -> EvalConfig:
    """An :class:`EvalConfig` from itself, its DictConfig or a dict; unknown keys and wrong types are
    :class:`ConfigError` naming them (also keys Hydra's ``+key=value`` slipped past the schema)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(cfg, EvalConfig):
        return cfg
    given = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else dict(cfg)
    unknown = sorted(set(given) - {f.name for f in dataclasses.fields(EvalConfig)})
    if unknown:
        raise ConfigError(f"unknown eval config keys {unknown}; expected keys of EvalConfig")
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(EvalConfig), given))
    except OmegaConfBaseException as err:
        raise ConfigError(f"invalid eval config: {err}") from err


def validate_eval_config(cfg: EvalConfig) -> None:
    """Check values the types cannot: choices and ranges; raises ConfigError naming the key."""
    from prefix_rft.data.prompts import PROMPT_TEMPLATES
    from prefix_rft.eval.generate import GENERATORS

    one_of("backend", cfg.backend, GENERATORS)
    one_of("prompt_template", cfg.prompt_template, ("auto", *PROMPT_TEMPLATES))
    if cfg.samples is not None and cfg.samples < 1:
        raise ConfigError(f"samples={cfg.samples} must be >= 1 (or null for each benchmark's default)")
    if any(k < 1 for k in cfg.pass_k):
        raise ConfigError(f"pass_k={list(cfg.pass_k)} must hold positive integers")
    if cfg.temperature < 0:
        raise ConfigError(f"temperature={cfg.temperature} must be >= 0")
    if not 0 < cfg.top_p <= 1:
        raise ConfigError(f"top_p={cfg.top_p} must be in (0, 1]")
    for key in ("max_new_tokens", "batch_size", "grader_workers"):
        if getattr(cfg, key) < 1:
            raise ConfigError(f"{key}={getattr(cfg, key)} must be >= 1")
    if cfg.max_items is not None and cfg.max_items < 1:
        raise ConfigError(f"max_items={cfg.max_items} must be >= 1 (or null for all problems)")
    if cfg.stop_after is not None and cfg.stop_after < 0:
        raise ConfigError(f"stop_after={cfg.stop_after} must be >= 0 (or null)")
    if not cfg.benchmarks and not cfg.data_file:
        raise ConfigError("benchmarks is empty and data_file is not set; name at least one benchmark")
