"""Fidelity manifest: every setting of a recipe that differs from the values its paper states.

    python -m prefix_rft.fidelity qwen2.5-math-7b/luffy            # the differences, each with its source
    python -m prefix_rft.fidelity qwen2.5-math-7b/luffy --all      # every compared setting
    python -m prefix_rft.fidelity qwen2.5-math-7b/sft_then_rft_strong     # vs arXiv 2604.23747
    python -m prefix_rft.fidelity qwen2.5-math-7b/sft_then_rft --reference 2604.23747
    python -m prefix_rft.fidelity qwen2.5-math-7b/rft trainer.temperature=0.7 --strict   # exit 1: unexplained

A recipe is ``recipes/<model>/<name>.yaml`` (or its path), composed as ``--config-dir recipes`` does, with
any Hydra overrides after it. Each algorithm is compared with the paper it comes from (``REFERENCES``):
Prefix-RFT, RFT, SFT -> RFT and RL with SFT loss with METHOD.md (arXiv 2507.01679, which adopts LUFFY's
baselines), LUFFY with arXiv 2504.14945 and its published scripts, ReLIFT with arXiv 2506.07527 and its
scripts; the ``sft_then_rft_strong`` recipes are compared with the SFT-then-RL re-examination (arXiv
2604.23747), and ``--reference 2604.23747`` compares any SFT -> RFT recipe with it. A
difference the project makes on purpose is listed in ``EXPLANATIONS`` for the recipe value it explains;
any other difference is reported as unexplained.
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import math
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from prefix_rft.config.lengths import prompt_length_limit

# ----------------------------------------------------------------------------- sources

METHOD = "METHOD.md (Prefix-RFT, arXiv 2507.01679; hyperparameters following LUFFY)"
METHOD_EVAL = "METHOD.md, evaluation (LUFFY's scripts)"
LUFFY_RL = "LUFFY exp_scripts/train.sh (github.com/ElliottYan/LUFFY)"
LUFFY_VERL = "LUFFY luffy/verl/verl/mix_src/config/mix_ppo_trainer.yaml (defaults the scripts keep)"
LUFFY_RL_SFT = "LUFFY exp_scripts/train_rl_sft_loss.sh + mix_ppo_trainer.yaml (sft_loss_coef 1.0)"
LUFFY_SFT = "LUFFY README, SFT command (OpenRLHF train_sft), the SFT baseline Prefix-RFT adopts"
RELIFT_RL = "ReLIFT examples/math-7b/train.sh (github.com/TheRoadQaQ/ReLIFT)"
HPT_RL = (
    "HPT (arXiv 2509.04419) exp_scripts/train.sh of its code (github.com/TsinghuaC3I/Unify-Post-Training)"
)
SRFT_RL = "SRFT (arXiv 2506.19767) Sec. 5.1 and its released train.sh"
OPENRLHF_SFT = (
    "OpenRLHF openrlhf/cli/train_sft.py defaults, kept by LUFFY's SFT command (--lr_scheduler cosine_with_min_lr, "
    "min_lr 0.1 x lr, --adam_betas 0.9 0.95, --l2 0; unchanged from 2024-12 to 2025-04)"
)
REEXAM_SFT = "arXiv 2604.23747, App. A: SFT stage of SFT-then-RL"
REEXAM_RL = "arXiv 2604.23747, App. A: RL stage of SFT-then-RL"
STEPS_500 = "METHOD.md; arXiv 2604.23747 Sec. 3 (500 RL steps for every compared method)"

# Rows of the training sets whose size the manifest needs (SFT epochs).
DATASET_ROWS = {"Elliott/Openr1-Math-46k-8192": 45_792}  # METHOD.md: 45,792 problems with R1 traces


@dataclass(frozen=True)
class PaperValue:
    """A setting as a paper (or its published scripts) states it; ``also`` lists other stated options."""

    value: Any
    source: str
    also: tuple = ()

    def matches(self, value: Any) -> bool:
        """Equal to the stated value or one of its stated options (floats to 1e-9 relative)."""
        return any(_same(value, v) for v in (self.value, *self.also))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


_RL = {
    "rl.learning_rate": PaperValue(1e-6, METHOD),
    "rl.lr_scheduler": PaperValue("constant", METHOD),
    "rl.prompts_per_step": PaperValue(128, METHOD),
    "rl.rollouts_per_prompt": PaperValue(8, METHOD),
    "rl.temperature": PaperValue(1.0, METHOD),
    "rl.max_prompt_length": PaperValue(1024, METHOD),
    "rl.max_response_length": PaperValue(8192, METHOD),
    "rl.steps": PaperValue(500, STEPS_500),
    "rl.loss_type": PaperValue("dr_grpo", METHOD + ", step 8"),
    "rl.std_scaling": PaperValue("none", METHOD + ", step 6"),
    "rl.kl_coef": PaperValue(0.0, METHOD),
    "rl.entropy_coef": PaperValue(0.0, METHOD + ": entropy bonus 0.001 optional", also=(0.001,)),
    "rl.clip_epsilon": PaperValue((0.2, 0.2), METHOD + ", step 8"),
}
_EVAL = {
    "eval.temperature": PaperValue(0.6, METHOD_EVAL),
    "eval.top_p": PaperValue(1.0, METHOD_EVAL),
    "eval.max_new_tokens": PaperValue(8192, METHOD_EVAL),
    "eval.AIME24": PaperValue("avg@32", METHOD_EVAL),
    "eval.AIME25": PaperValue("avg@32", METHOD_EVAL),
    "eval.AMC": PaperValue("avg@32", METHOD_EVAL),
    "eval.MATH-500": PaperValue("pass@1", METHOD_EVAL),
    "eval.Minerva": PaperValue("pass@1", METHOD_EVAL),
    "eval.OlympiadBench": PaperValue("pass@1", METHOD_EVAL),
}
_PREFIX = {
    "prefix.num_prefixed": PaperValue(1, METHOD + ", step 2"),
    "prefix.update": PaperValue("entropy_top", METHOD + ", step 9"),
    "prefix.keep_fraction": PaperValue(0.2, METHOD + ", step 9"),
    "prefix.advantage_baseline": PaperValue("group", METHOD + ", step 6"),
    "prefix.schedule": PaperValue("cosine", METHOD + ", step 3"),
    "prefix.ratio_high": PaperValue(0.95, METHOD + ", step 3"),
    "prefix.ratio_low_start": PaperValue(0.95, METHOD + ", step 3"),
    "prefix.ratio_low_end": PaperValue(0.05, METHOD + ", step 3"),
    "prefix.decay_steps": PaperValue(500, METHOD + ", step 3"),
}
_SFT_LUFFY = {
    "sft.learning_rate": PaperValue(5e-5, LUFFY_SFT),
    "sft.warmup_ratio": PaperValue(0.1, LUFFY_SFT),
    "sft.batch_size": PaperValue(64, LUFFY_SFT),
    "sft.epochs": PaperValue(3.0, LUFFY_SFT),
    "sft.max_length": PaperValue(16384, LUFFY_SFT),
    "sft.packing": PaperValue(True, LUFFY_SFT),
    "sft.lr_scheduler": PaperValue("cosine", OPENRLHF_SFT),
    "sft.min_lr_ratio": PaperValue(0.1, OPENRLHF_SFT),
    "sft.adam_betas": PaperValue((0.9, 0.95), OPENRLHF_SFT),
    "sft.weight_decay": PaperValue(0.0, OPENRLHF_SFT),
}
_SFT_REEXAM = {
    "sft.learning_rate": PaperValue(5e-5, REEXAM_SFT),
    "sft.lr_scheduler": PaperValue("cosine", REEXAM_SFT),
    "sft.min_lr_ratio": PaperValue(0.1, REEXAM_SFT),
    "sft.warmup_ratio": PaperValue(0.1, REEXAM_SFT),
    "sft.weight_decay": PaperValue(0.01, REEXAM_SFT),
    "sft.adam_betas": PaperValue((0.9, 0.999), REEXAM_SFT + ": AdamW"),
    "sft.batch_size": PaperValue(64, REEXAM_SFT),
    "sft.epochs": PaperValue(3.0, REEXAM_SFT),
}
_RL_REEXAM = {
    **{k: dataclasses.replace(v, source=REEXAM_RL) for k, v in _RL.items() if k != "rl.entropy_coef"},
    "rl.entropy_coef": PaperValue(0.0, REEXAM_RL),
    "rl.loss_type": PaperValue("dapo", REEXAM_RL + ": token-level loss (DAPO), no length/std normalisation"),
    "rl.clip_epsilon": PaperValue((0.2, 0.28), REEXAM_RL),
    "rl.prompts_per_step": PaperValue(64, REEXAM_RL + ": rollout batch 128, mini-batch 64 per update"),
    "rl.updates_per_rollout_batch": PaperValue(2, REEXAM_RL + ": rollout batch 128, mini-batch 64"),
    "rl.steps": PaperValue(500, REEXAM_RL + ": 500 steps (rollout batches), as LUFFY, ReLIFT and Prefix-RFT"),
}
_LUFFY = {
    **{k: dataclasses.replace(v, source=LUFFY_RL) for k, v in _RL.items()},
    "rl.steps": PaperValue(500, STEPS_500),
    # verl's ppo_mini_batch_size=64 of train_batch_size=128: two optimizer updates per rollout batch.
    "rl.prompts_per_step": PaperValue(64, LUFFY_RL + ": train_batch_size 128, ppo_mini_batch_size 64"),
    "rl.entropy_coef": PaperValue(0.001, LUFFY_RL),
    "rl.loss_type": PaperValue("dr_grpo", LUFFY_RL + ": loss_remove_token_mean, grpo_use_std False"),
    "rl.clip_epsilon": PaperValue((0.2, 0.2), LUFFY_VERL + ": clip_ratio 0.2"),
    "rl.max_grad_norm": PaperValue(1.0, LUFFY_VERL + ": grad_clip 1.0"),
    "luffy.off_policy_rollouts": PaperValue(1, LUFFY_RL + ": n_prefix 1, prefix ratio 1.0"),
    "luffy.off_policy_loss": PaperValue("shaped", LUFFY_RL + ': off_policy_reshape "p_div_p_0.1"'),
    "luffy.shaping_gamma": PaperValue(0.1, LUFFY_RL + ': off_policy_reshape "p_div_p_0.1"'),
    # The script removes clipping from on-policy tokens too (loss_remove_clip=True); the method clips them.
    "luffy.on_policy_clip": PaperValue(
        True,
        "conf/algorithm/luffy.yaml (the method clips on-policy tokens); " + LUFFY_RL + " removes it",
        also=(False,),
    ),
}
_RELIFT = {
    **{k: dataclasses.replace(v, source=RELIFT_RL) for k, v in _RL.items()},
    "rl.steps": PaperValue(500, STEPS_500),
    "rl.prompts_per_step": PaperValue(64, RELIFT_RL + ": train_batch_size 128, ppo_mini_batch_size 64"),
    "rl.entropy_coef": PaperValue(0.001, RELIFT_RL),
    "rl.loss_type": PaperValue("dr_grpo", RELIFT_RL + ": loss_remove_token_mean, grpo_use_std False"),
    "rl.max_grad_norm": PaperValue(0.7, RELIFT_RL + ": grad_clip 0.7"),
    "relift.sft_buffer_size": PaperValue(128, RELIFT_RL + ": sft_data_size 128"),
    "relift.sft_learning_rate": PaperValue(1e-6, RELIFT_RL + ": optim.sft.lr 1e-6"),
    "relift.sft_entropy_coef": PaperValue(0.001, RELIFT_RL + ": sft.entropy_coeff 0.001"),
}
_SRFT = {
    **{k: dataclasses.replace(v, source=SRFT_RL) for k, v in _RL.items()},
    "rl.steps": PaperValue(500, SRFT_RL),
    "rl.prompts_per_step": PaperValue(64, SRFT_RL + ": train_batch_size 128, ppo_mini_batch_size 64"),
    "rl.entropy_coef": PaperValue(0.001, SRFT_RL + ": entropy_coeff 0.001"),
}
_HPT = {
    **{k: dataclasses.replace(v, source=HPT_RL) for k, v in _RL.items()},
    "rl.steps": PaperValue(500, HPT_RL),
    "rl.learning_rate": PaperValue(5e-6, HPT_RL + ": actor lr 5e-6"),
    "rl.prompts_per_step": PaperValue(64, HPT_RL + ": train_batch_size 128, ppo_mini_batch_size 64"),
    "rl.entropy_coef": PaperValue(0.001, HPT_RL + ": entropy_coeff 0.001"),
    "rl.clip_epsilon": PaperValue("none", HPT_RL + ": loss_remove_clip True"),
    "rl.max_grad_norm": PaperValue(80.0, HPT_RL + ": grad_clip 80"),
}
_RL_SFT = {
    **_RL,
    "rl_sft.sft_coef": PaperValue(1.0, LUFFY_RL_SFT),
    "rl_sft.on_policy_rollouts": PaperValue(7, LUFFY_RL_SFT + ": rollout.n 8 with one demonstration"),
}


@dataclass(frozen=True)
class Reference:
    """A paper, the label printed for it, and its stated settings."""

    label: str
    values: dict[str, PaperValue]


REFERENCES: dict[str, Reference] = {
    "prefix_rft": Reference("Prefix-RFT (arXiv 2507.01679, METHOD.md)", {**_RL, **_PREFIX, **_EVAL}),
    "rft": Reference("RFT baseline of Prefix-RFT (METHOD.md)", {**_RL, **_EVAL}),
    "sft": Reference("SFT baseline of Prefix-RFT (LUFFY's SFT, METHOD.md)", {**_SFT_LUFFY, **_EVAL}),
    "sft_then_rft": Reference(
        "SFT -> RFT baseline of Prefix-RFT (LUFFY's SFT, then RFT; METHOD.md)", {**_SFT_LUFFY, **_RL, **_EVAL}
    ),
    "rl_sft_loss": Reference("RL with SFT loss baseline (METHOD.md; LUFFY's scripts)", {**_RL_SFT, **_EVAL}),
    "luffy": Reference("LUFFY (arXiv 2504.14945; its published scripts)", {**_LUFFY, **_EVAL}),
    "relift": Reference("ReLIFT (arXiv 2506.07527; its published scripts)", {**_RELIFT, **_EVAL}),
    "srft": Reference("SRFT (arXiv 2506.19767; its paper and released script)", {**_SRFT, **_EVAL}),
    # CHORD's published math runs (Qwen2.5-7B-Instruct, its own batch sizes) are not this comparison's set-up:
    # its recipes are held to the shared settings; its own values are in conf/algorithm/chord.yaml.
    "chord": Reference("CHORD (arXiv 2508.11408) on the shared RL settings (METHOD.md)", {**_RL, **_EVAL}),
    # The prefix-in-prompt family's papers (QuestA, POPE, PrefixRL) train other models with other set-ups:
    # its recipes keep the shared settings; those papers' values are in conf/algorithm/prefix_in_prompt.yaml.
    "hpt": Reference("HPT (arXiv 2509.04419; its published scripts)", {**_HPT, **_EVAL}),
    "prefix_in_prompt": Reference(
        "prefix in the prompt (QuestA / POPE / PrefixRL family) on the shared RL settings (METHOD.md)",
        {**_RL, **_EVAL},
    ),
    "2604.23747": Reference(
        "SFT-then-RL re-examination (arXiv 2604.23747)", {**_SFT_REEXAM, **_RL_REEXAM, **_EVAL}
    ),
}


# Recipes compared with another paper than their algorithm's by default (globs over "<model>/<name>").
RECIPE_REFERENCES = {"*/sft_then_rft_strong": "2604.23747"}


def default_reference(recipe: str, algorithm: str) -> str:
    """The reference a recipe is compared with unless ``--reference`` says otherwise."""
    for pattern, reference in RECIPE_REFERENCES.items():
        if fnmatch.fnmatch(recipe, pattern):
            return reference
    return algorithm


@dataclass(frozen=True)
class Explanation:
    """Why a recipe differs on purpose: for ``algorithms`` (globs), ``setting``, when the recipe has ``value``."""

    algorithms: str
    setting: str
    value: Any
    reason: str
    recipes: str = "*"  # glob over "<model>/<name>"
    reference: str = "*"


EXPLANATIONS: tuple[Explanation, ...] = (
    Explanation(
        "luffy|relift|srft",
        "rl.prompts_per_step",
        128,
        "one optimizer update per 128-prompt rollout batch for every algorithm (METHOD.md: 128 prompts per "
        "step), so all are compared at the same update size; the scripts make two updates of 64",
    ),
    Explanation(
        "luffy|relift|srft",
        "rl.entropy_coef",
        0.0,
        "no entropy bonus for any algorithm (METHOD.md: optional)",
    ),
    Explanation(
        "hpt",
        "rl.learning_rate",
        1e-6,
        "the shared Dr. GRPO settings, so HPT differs from the others in its gate alone (conf/algorithm/hpt.yaml)",
    ),
    Explanation(
        "hpt", "rl.prompts_per_step", 128, "one optimizer update per 128-prompt batch, as every algorithm"
    ),
    Explanation("hpt", "rl.entropy_coef", 0.0, "no entropy bonus for any algorithm (METHOD.md: optional)"),
    Explanation(
        "hpt", "rl.clip_epsilon", (0.2, 0.2), "PPO clipping as every algorithm (conf/algorithm/hpt.yaml)"
    ),
    Explanation(
        "hpt", "rl.max_grad_norm", 1.0, "TRL's default clipping as every algorithm (conf/algorithm/hpt.yaml)"
    ),
    Explanation(
        "relift",
        "rl.max_grad_norm",
        1.0,
        "TRL's default clipping for both steps (conf/algorithm/relift.yaml: documented deviation)",
    ),
    Explanation(
        "relift",
        "relift.sft_entropy_coef",
        0.0,
        "no entropy bonus on the SFT step (conf/algorithm/relift.yaml: documented deviation)",
    ),
    Explanation(
        "rl_sft_loss",
        "rl_sft.sft_coef",
        0.1,
        "our default weight, to sweep (conf/algorithm/rl_sft_loss.yaml); LUFFY's code keeps its 1.0 default",
    ),
    Explanation(
        "rl_sft_loss",
        "rl_sft.on_policy_rollouts",
        8,
        "all 8 rollouts stay on-policy and the demonstration is an extra supervised target",
    ),
    Explanation(
        "sft|sft_then_rft",
        "sft.packing",
        False,
        "TRL's packing=True would count a batch in packed rows of max_length tokens; LUFFY's OpenRLHF "
        "--packing_samples packs the 64 samples of a batch without changing their count, which one "
        "demonstration per GPU and micro-step (no padding to remove) reproduces",
    ),
    Explanation(
        "*", "rl.learning_rate", 1e-5, "LoRA: ~10x the full fine-tuning rate (recipe header)", "*_lora_*"
    ),
    Explanation(
        "*", "rl.prompts_per_step", 8, "one 24 GB GPU: 8 prompts per step (recipe header)", "*/*_lora_24gb"
    ),
    Explanation(
        "*", "rl.prompts_per_step", 16, "one 80 GB GPU: 16 prompts per step (recipe header)", "*/*_lora_80gb"
    ),
)


def explanation_for(algorithm: str, recipe: str, reference: str, setting: str, value: Any) -> str | None:
    """The reason a recipe's value of ``setting`` differs on purpose, or None."""
    for e in EXPLANATIONS:
        if (
            e.setting == setting
            and _same(value, e.value)
            and any(fnmatch.fnmatch(algorithm, a) for a in e.algorithms.split("|"))
            and fnmatch.fnmatch(recipe, e.recipes)
            and fnmatch.fnmatch(reference, e.reference)
        ):
            return e.reason
    return None


# ----------------------------------------------------------------------------- the recipe's values


def _field_default(cls: type, name: str) -> Any:
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
    raise KeyError(f"{cls.__name__} has no field {name!r}")


def _grpo_args(cfg: DictConfig) -> Callable[[str], Any]:
    from trl import GRPOConfig

    from prefix_rft.config.trainer_args import set_trainer_args

    values = set_trainer_args(cfg.trainer)
    return lambda key: values[key] if key in values else _field_default(GRPOConfig, key)


def _sft_args(cfg: DictConfig) -> Callable[[str], Any]:
    """The SFT stage's arguments the way the SFT config is built: generic ``trainer.*`` (Trainer fields)
    overridden by ``sft_trainer.*``; TRL's SFTConfig defaults for the rest."""
    from transformers import TrainingArguments
    from trl import SFTConfig

    from prefix_rft.config.trainer_args import set_trainer_args

    generic = {f.name for f in dataclasses.fields(TrainingArguments) if f.init}
    values = {k: v for k, v in set_trainer_args(cfg.trainer).items() if k in generic}
    sft = set_trainer_args(cfg.sft_trainer)
    if "num_train_epochs" in sft and "max_steps" not in sft:  # sized by epochs (config/build.py)
        values.pop("max_steps", None)
    values.update(sft)
    if "max_length" not in values:  # as the SFT config is built: room for prompt + demonstration
        values["max_length"] = prompt_length_limit(cfg) + set_trainer_args(cfg.trainer).get(
            "max_completion_length", 1024
        )
    return lambda key: values[key] if key in values else _field_default(SFTConfig, key)


# Manifest settings that are knobs of an algorithm's config class (prefix_rft/algorithms.py), by knob name;
# a recipe reports those its algorithm has.
KNOB_SETTINGS = {
    "prefix.num_prefixed": "num_prefixed",
    "prefix.update": "prefix_update",
    "prefix.keep_fraction": "keep_fraction",
    "prefix.advantage_baseline": "advantage_baseline",
    "luffy.off_policy_loss": "off_policy_loss",
    "luffy.shaping_gamma": "shaping_gamma",
    "luffy.on_policy_clip": "on_policy_clip",
    "rl_sft.sft_coef": "sft_coef",
    "relift.sft_buffer_size": "sft_buffer_size",
    "relift.sft_learning_rate": "sft_learning_rate",
}


def recipe_values(cfg: DictConfig, num_processes: int = 1) -> dict[str, Any]:
    """Every setting the manifest compares, as the composed config will run it on ``num_processes``."""
    from prefix_rft.config.algorithm_args import algorithm_from_config

    out: dict[str, Any] = {}
    entry, knobs = algorithm_from_config(cfg)
    if "rl" in entry.stages:
        rl = _grpo_args(cfg)
        G = rl("num_generations")
        accumulation = rl("gradient_accumulation_steps")
        rows_per_step = rl("per_device_train_batch_size") * num_processes * accumulation
        eps = rl("epsilon")
        # Optimizer updates per rollout batch: a generation round serves steps_per_generation micro-steps,
        # num_iterations times (several rounds within one update, as the LoRA recipes make, are one rollout
        # batch). A paper's "step" is a rollout batch (verl's convention).
        micro_steps = (rl("steps_per_generation") or accumulation) * rl("num_iterations")
        updates = max(micro_steps, accumulation) / accumulation
        updates = int(updates) if float(updates).is_integer() else updates
        steps = rl("max_steps") / updates
        steps = int(steps) if float(steps).is_integer() else steps
        out.update(
            {
                "rl.learning_rate": rl("learning_rate"),
                "rl.lr_scheduler": str(rl("lr_scheduler_type")),
                "rl.prompts_per_step": rows_per_step / G if rows_per_step % G else rows_per_step // G,
                "rl.rollouts_per_prompt": G,
                "rl.temperature": rl("temperature"),
                "rl.max_prompt_length": prompt_length_limit(cfg),
                "rl.max_response_length": rl("max_completion_length"),
                "rl.steps": steps,
                "rl.updates_per_rollout_batch": updates,
                "rl.loss_type": rl("loss_type"),
                "rl.std_scaling": str(rl("scale_rewards")),
                "rl.kl_coef": rl("beta"),
                "rl.entropy_coef": rl("entropy_coef"),
                "rl.clip_epsilon": (eps, rl("epsilon_high") if rl("epsilon_high") is not None else eps),
                "rl.max_grad_norm": rl("max_grad_norm"),
            }
        )
        out.update({key: getattr(knobs, knob) for key, knob in KNOB_SETTINGS.items() if hasattr(knobs, knob)})
        if hasattr(knobs, "num_prefixed"):  # the prefix-sampling trainers: the scheduler is in use
            sched = cfg.scheduler
            out.update(
                {
                    "prefix.schedule": sched.name,
                    "prefix.ratio_high": sched.high,
                    "prefix.ratio_low_start": sched.low_start,
                    "prefix.ratio_low_end": sched.low_end,
                    "prefix.decay_steps": sched.decay_steps,
                    "luffy.off_policy_rollouts": knobs.num_prefixed if knobs.allow_full_prefix else 0,
                    "rl_sft.on_policy_rollouts": G - knobs.num_prefixed,
                    "relift.sft_entropy_coef": 0.0,  # the SFT step has no entropy term
                }
            )
    if "sft" in entry.stages:
        sft = _sft_args(cfg)
        batch = sft("per_device_train_batch_size") * num_processes * sft("gradient_accumulation_steps")
        rows = DATASET_ROWS.get(cfg.data.path)
        steps = sft("max_steps")
        if steps and steps > 0 and rows:
            epochs = steps * batch / (rows * cfg.data.fraction)
        else:
            epochs = float(sft("num_train_epochs"))
        warmup = sft("warmup_steps")
        scheduler = str(getattr(sft("lr_scheduler_type"), "value", sft("lr_scheduler_type")))
        if scheduler in ("cosine", "cosine_with_min_lr"):
            # Cosine to a floor: transformers' cosine_with_min_lr with min_lr_rate (or min_lr); plain cosine: 0.
            kwargs = sft("lr_scheduler_kwargs") or {}
            ratio = kwargs.get("min_lr_rate")
            if ratio is None and kwargs.get("min_lr") is not None:
                ratio = kwargs["min_lr"] / sft("learning_rate")
            out["sft.min_lr_ratio"] = float(ratio or 0.0) if scheduler == "cosine_with_min_lr" else 0.0
            scheduler = "cosine"
        out.update(
            {
                "sft.learning_rate": sft("learning_rate"),
                "sft.lr_scheduler": scheduler,
                "sft.adam_betas": (sft("adam_beta1"), sft("adam_beta2")),
                "sft.warmup_ratio": warmup if warmup < 1 else f"{warmup} steps",
                "sft.weight_decay": sft("weight_decay"),
                "sft.batch_size": batch,
                "sft.epochs": epochs,
                "sft.max_length": sft("max_length"),
                "sft.packing": bool(sft("packing")),
            }
        )
    out.update(eval_values())
    return out


def eval_values() -> dict[str, Any]:
    """The evaluation protocol of ``prefix-rft-eval`` at its paper-setting defaults (the schema's)."""
    from prefix_rft.eval.config import EvalConfig
    from prefix_rft.eval.suites import PAPER_COLUMNS, REGISTRY

    ev = EvalConfig()
    out: dict[str, Any] = {
        "eval.temperature": ev.temperature,
        "eval.top_p": ev.top_p,
        "eval.max_new_tokens": ev.max_new_tokens,
    }
    for name in PAPER_COLUMNS:
        spec = REGISTRY[name]
        out[f"eval.{name}"] = (
            spec.metric if ev.samples is None else ("pass@1" if ev.samples == 1 else f"avg@{ev.samples}")
        )
    return out


# ----------------------------------------------------------------------------- composing a recipe


def recipes_dir() -> Path:
    """``recipes/`` next to ``conf/``."""
    from prefix_rft.config.compose import conf_dir

    return conf_dir().parent / "recipes"


def recipe_name(recipe: str) -> str:
    """``<model>/<name>`` from a name or a path to the YAML file."""
    path = Path(recipe)
    if path.suffix in (".yaml", ".yml"):
        return f"{path.parent.name}/{path.stem}"
    return recipe


def recipe_num_processes(name: str, root: Path | None = None) -> int:
    """GPUs of the recipe's documented command: its accelerate config's num_processes, else 1."""
    import yaml

    root = root or recipes_dir()
    header = []
    for line in (root / f"{name}.yaml").read_text().splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    match = re.search(r"--config_file (\S+)", " ".join(header))
    if not match:
        return 1
    config = root.parent / match.group(1)
    return int(yaml.safe_load(config.read_text()).get("num_processes", 1))


def compose_recipe(name: str, overrides: Sequence[str] = (), root: Path | None = None) -> DictConfig:
    """Compose ``<model>/<name>`` as ``--config-dir recipes --config-name <model>/<name>`` does."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from prefix_rft.config.compose import conf_dir
    from prefix_rft.config.schema import register_configs

    root = root or recipes_dir()
    if not (root / f"{name}.yaml").is_file():
        raise FileNotFoundError(f"recipe {name!r} not found: expected {root / (name + '.yaml')}")
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(root), version_base="1.3"):
        return compose(
            config_name=name,
            overrides=[f"hydra.searchpath=[file://{conf_dir()}]", "output_dir=.", *overrides],
        )


# ----------------------------------------------------------------------------- the manifest


@dataclass(frozen=True)
class Row:
    """One compared setting: the recipe's value, the paper's, and why they differ (when on purpose)."""

    setting: str
    recipe: Any
    paper: PaperValue
    explanation: str | None

    @property
    def differs(self) -> bool:
        return not self.paper.matches(self.recipe)

    @property
    def unexplained(self) -> bool:
        return self.differs and self.explanation is None


def manifest(
    name: str, overrides: Sequence[str] = (), reference: str | None = None, num_processes: int | None = None
) -> tuple[str, list[Row]]:
    """The compared settings of a recipe: (reference label, rows); ``reference`` defaults to the algorithm's."""
    name = recipe_name(name)
    cfg = compose_recipe(name, overrides)
    algorithm = cfg.algorithm.name
    ref_id = reference or default_reference(name, algorithm)
    if ref_id not in REFERENCES:
        raise KeyError(f"reference {ref_id!r} is not known; expected one of {sorted(REFERENCES)}")
    ref = REFERENCES[ref_id]
    procs = num_processes if num_processes is not None else recipe_num_processes(name)
    values = recipe_values(cfg, procs)
    rows = []
    for setting, paper in ref.values.items():
        if setting not in values:
            continue  # a setting this algorithm does not have (e.g. SFT-only keys on an RL recipe)
        value = values[setting]
        differs = not paper.matches(value)
        why = explanation_for(algorithm, name, ref_id, setting, value) if differs else None
        rows.append(Row(setting, value, paper, why))
    return f"{ref.label}, {procs} process(es)", rows


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, tuple):
        return "/".join(_fmt(v) for v in value)
    return str(value)


def format_manifest(name: str, label: str, rows: list[Row], show_all: bool = False) -> str:
    """The manifest as text: one line per (differing, or with ``show_all`` every) setting, then a summary."""
    shown = [r for r in rows if show_all or r.differs]
    width = max([len(r.setting) for r in shown] + [7])
    lines = [f"Fidelity manifest: {recipe_name(name)} vs {label}"]
    if shown:
        lines.append(f"  {'setting':<{width}}  {'recipe':>10}  {'paper':>10}  status")
    for r in shown:
        if not r.differs:
            status = f"same ({r.paper.source})"
        elif r.explanation:
            status = f"differs, explained: {r.explanation} [paper: {r.paper.source}]"
        else:
            status = f"DIFFERS, unexplained [paper: {r.paper.source}]"
        lines.append(f"  {r.setting:<{width}}  {_fmt(r.recipe):>10}  {_fmt(r.paper.value):>10}  {status}")
    n_diff = sum(r.differs for r in rows)
    n_unexp = sum(r.unexplained for r in rows)
    lines.append(
        f"{n_diff} of {len(rows)} settings differ from the paper ({n_diff - n_unexp} explained, "
        f"{n_unexp} unexplained)."
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``prefix-rft-manifest`` / ``python -m prefix_rft.fidelity``."""
    parser = argparse.ArgumentParser(
        prog="prefix-rft-manifest", description="Settings of a recipe that differ from its paper."
    )
    parser.add_argument("recipe", help="<model>/<name> under recipes/, or the path of a recipe YAML")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. trainer.temperature=0.7")
    parser.add_argument(
        "--all", action="store_true", help="show every compared setting, not only differences"
    )
    parser.add_argument("--reference", choices=sorted(REFERENCES), help="compare with this paper instead")
    parser.add_argument("--num-processes", type=int, help="GPUs (default: the recipe's documented command)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a difference is unexplained")
    args = parser.parse_args(argv)
    try:
        label, rows = manifest(args.recipe, args.overrides, args.reference, args.num_processes)
    except (FileNotFoundError, KeyError) as err:
        print(f"error: {err.args[0] if err.args else err}", file=sys.stderr)
        return 2
    except Exception as err:  # Hydra/OmegaConf: a bad override or recipe; one line, no traceback
        from hydra.errors import HydraException
        from omegaconf.errors import OmegaConfBaseException

        if not isinstance(err, (HydraException, OmegaConfBaseException)):
            raise
        print(f"error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2
    print(format_manifest(args.recipe, label, rows, args.all))
    return 1 if args.strict and any(r.unexplained for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
