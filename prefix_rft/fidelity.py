"""Fidelity manifest: every setting of a recipe that differs from the values its paper states.

This module reads a recipe's values and compares them (:func:`manifest`); the papers' values are data in
:mod:`prefix_rft.paper_settings`, and the command ``prefix-rft-manifest`` is :mod:`prefix_rft.cli.manifest`.
A recipe is ``recipes/<model>/<name>.yaml`` (or its path), composed as ``--config-dir recipes`` does, with
any Hydra overrides after it. Each algorithm is compared with the paper it comes from (``REFERENCES``):
Prefix-RFT, RFT, SFT -> RFT and RL with SFT loss with docs/method.md (arXiv 2507.01679, which adopts LUFFY's
baselines), LUFFY with arXiv 2504.14945 and its published scripts, ReLIFT with arXiv 2506.07527 and its
scripts; the ``sft_then_rft_strong`` recipes are compared with the SFT-then-RL re-examination (arXiv
2604.23747), and ``--reference 2604.23747`` compares any SFT -> RFT recipe with it. A
difference the project makes on purpose is listed in ``EXPLANATIONS`` for the recipe value it explains;
any other difference is reported as unexplained.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from prefix_rft.config.lengths import prompt_length_limit
from prefix_rft.paper_settings import DATASET_ROWS, REFERENCES, PaperValue, default_reference, same_value

# ----------------------------------------------------------------------------- explanations


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
        "one optimizer update per 128-prompt rollout batch for every algorithm (docs/method.md: 128 prompts per "
        "step), so all are compared at the same update size; the scripts make two updates of 64",
    ),
    Explanation(
        "luffy|relift|srft",
        "rl.entropy_coef",
        0.0,
        "no entropy bonus for any algorithm (docs/method.md: optional)",
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
    Explanation(
        "hpt", "rl.entropy_coef", 0.0, "no entropy bonus for any algorithm (docs/method.md: optional)"
    ),
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
            and same_value(value, e.value)
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
        # Rollouts per group that are not sampled on-policy: 0 for every algorithm without hybrid rollouts.
        hybrid = getattr(knobs, "num_prefixed", 0)
        out.update(
            {
                "luffy.off_policy_rollouts": hybrid if getattr(knobs, "allow_full_prefix", False) else 0,
                "rl_sft.on_policy_rollouts": G - hybrid,
                "relift.sft_entropy_coef": 0.0,  # the SFT step has no entropy term
            }
        )
        if knobs.uses_scheduler:  # only then is a prefix scheduler built
            sched = cfg.scheduler
            out.update(
                {
                    "prefix.schedule": sched.name,
                    "prefix.ratio_high": sched.high,
                    "prefix.ratio_low_start": sched.low_start,
                    "prefix.ratio_low_end": sched.low_end,
                    "prefix.decay_steps": sched.decay_steps,
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
