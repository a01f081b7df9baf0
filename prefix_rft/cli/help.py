"""``--help`` of the command-line tools: what each does, its groups and options, the common knobs.

Hydra's own ``--help`` prints the whole composed config (hundreds of unset TRL fields shown as
``???``) and lists every config group of the search path, so ``prefix-rft-train`` and
``prefix-rft-eval`` print these pages instead (Hydra's is still ``--hydra-help``). Nothing heavy is
imported: the group options are the YAML files in ``conf/``.
"""

from __future__ import annotations

import dataclasses
import sys
import textwrap
import typing
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

TRL_DOCS = "https://huggingface.co/docs/trl/grpo_trainer#trl.GRPOConfig"

# One line per group of conf/ that a user selects (presets/ is pulled in by the algorithm files only).
GROUPS = {
    "model": "the policy model (tiny: built in, offline, CPU)",
    "data": "training data; local: any parquet/JSONL/JSON/CSV file, data.path=FILE",
    "algorithm": "Prefix-RFT or a baseline (knobs: algorithm.*)",
    "reward": "reward functions (reward.funcs=[{name:...,weight:...,params:{...}}])",
    "scale": "paper settings, or cpu sizing (model=tiny selects cpu)",
    "scheduler": "prefix-ratio schedule of the hybrid rollouts",
    "peft": "full fine-tuning, LoRA, or QLoRA (4-bit, bitsandbytes, GPU)",
    "generation": "rollout backend (vllm_*: pip install -e '.[vllm]', GPU)",
}

COMMON_KEYS = [
    ("trainer.max_steps=N", "optimizer steps (-1: train trainer.num_train_epochs epochs)"),
    ("trainer.learning_rate=X", "learning rate (sft_trainer.learning_rate for SFT)"),
    ("trainer.per_device_train_batch_size=N", "rollouts per device per micro-batch"),
    ("trainer.gradient_accumulation_steps=N", "micro-batches per optimizer step"),
    ("trainer.num_generations=N", "rollouts per prompt (a group)"),
    ("trainer.max_completion_length=N", "tokens per rollout"),
    ("trainer.save_steps=N", "checkpoint every N steps (the last step is always saved)"),
    ("trainer.report_to=wandb", "where metrics go besides the console and train.log"),
    ("data.path=FILE", "data=local: the file; data.problem_column / answer_column / demonstration_column"),
    ("algorithm.KNOB=VALUE", "a knob of the algorithm (--help algorithm=NAME lists them)"),
    ("seed=N", "global seed"),
    ("hydra.run.dir=DIR", "the run folder (default outputs/<algorithm>/<model>-<data>/<time>)"),
    (
        "resume_from_checkpoint=latest",
        "continue the run folder's newest checkpoint (or give a checkpoint path)",
    ),
]


def _group_options(conf: Path, group: str) -> list[str]:
    return sorted(p.stem for p in (conf / group).glob("*.yaml") if not p.stem.startswith("_"))


def _algorithm_options(conf: Path) -> list[str]:
    """Every registered algorithm (plugins' too; from the schema cache, without importing TRL when it is
    warm) and every preset of ``conf/algorithm``."""
    from prefix_rft.config.schema_cache import SchemaSpec

    return sorted(set(_group_options(conf, "algorithm")) | set(SchemaSpec.cached().algorithms))


def _defaults(conf: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for entry in OmegaConf.to_container(OmegaConf.load(conf / "config.yaml")).get("defaults", []):
        if isinstance(entry, dict):
            for key, value in entry.items():
                out[key.split("@")[0].removeprefix("override ").strip("/")] = str(value)
    return out


def train_help(conf: Path) -> str:
    """The ``prefix-rft-train --help`` page for the config directory ``conf``."""
    defaults = _defaults(conf)
    defaults["scale"] = "cpu" if defaults.get("model") == "tiny" else defaults.get("scale", "")
    lines = [
        "prefix-rft-train: post-train a language model with Prefix-RFT (arXiv 2507.01679) or one of its",
        "baselines, on Hugging Face TRL. The default job trains Prefix-RFT on the built-in tiny model and",
        "synthetic task on CPU; each run writes one folder (config.yaml, train.log, checkpoints, metrics.json).",
        "",
        "Usage:",
        "  prefix-rft-train [GROUP=OPTION ...] [KEY=VALUE ...]",
        "  prefix-rft-train -m algorithm=rft,prefix_rft seed=1,2,3   a sweep: one run folder each",
        "  prefix-rft-train [overrides] --cfg job                    print the composed config and exit",
        "  prefix-rft-train --help-trainer FIELD                     TRL's help text of trainer.FIELD",
        "  prefix-rft-train --help algorithm=NAME                    that algorithm's knobs: type, default, help",
        "  prefix-rft-train --help scheduler=NAME                    that schedule's keys: type, value, help",
        "",
        "Groups (GROUP=OPTION, * = default):",
    ]
    for group, about in GROUPS.items():
        names = _algorithm_options(conf) if group == "algorithm" else _group_options(conf, group)
        options = [o + ("*" if o == defaults.get(group) else "") for o in names]
        lines.append(f"  {group:<11} {', '.join(options)}")
        lines.append(f"  {'':<11}   {about}")
    lines += ["", "Common keys (KEY=VALUE):"]
    lines += [f"  {key:<38} {about}" for key, about in COMMON_KEYS]
    lines += [
        "",
        "trainer.* takes any field of TRL's GRPOConfig / SFTConfig (unset fields keep TRL's defaults),",
        f"documented at {TRL_DOCS} ; sft_trainer.* overrides",
        "them for the SFT stage. All other keys: prefix_rft/config/schema.py, or --cfg job.",
        "",
        "Rerun or extend a finished run from its folder (its config.yaml):",
        "  prefix-rft-train --config-dir RUN --config-name config resume_from_checkpoint=latest trainer.max_steps=N",
        "  prefix-rft-train --config-dir RUN --config-name config hydra.run.dir=NEW   # same settings, new folder",
        "",
        "A mistake prints one line naming the key or file; PREFIX_RFT_DEBUG=1 shows the traceback.",
        "Hydra's own options: --hydra-help.",
    ]
    return "\n".join(lines)


def eval_help(doc: str) -> str:
    """The ``prefix-rft-eval --help`` page: the command's docstring (its keys) and where they are defined."""
    return "\n".join(
        [
            doc.strip(),
            "",
            "Every key with its default and meaning: prefix_rft/eval/config.py (EvalConfig); the default job's",
            "values: conf/eval.yaml; prefix-rft-eval [KEY=VALUE ...] --cfg job prints the composed config.",
            "A mistake prints one line naming the key or file; PREFIX_RFT_DEBUG=1 shows the traceback.",
            "Hydra's own options: --hydra-help.",
        ]
    )


def wants_help(argv: list[str]) -> bool:
    """Whether the command line asks for the help page (``--help`` / ``-h``)."""
    return any(a in ("--help", "-h") for a in argv)


def _type_name(tp: Any) -> str:
    return tp.__name__ if isinstance(tp, type) else str(tp).replace("typing.", "")


def _wrap(text: str, indent: str) -> list[str]:
    return textwrap.wrap(
        text, width=110, initial_indent=indent, subsequent_indent=indent or "  ", break_on_hyphens=False
    )


def _field_lines(name: str, tp: Any, value: Any, help_text: str) -> list[str]:
    """One knob: ``name: type = value`` and its help, indented and wrapped."""
    lines = [f"  {name}: {_type_name(tp)} = {value!r}"]
    return lines + _wrap(help_text, "      ")


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return "(required)"


def _preset_choices(conf: Path, name: str) -> list[str]:
    """What ``conf/algorithm/<name>.yaml`` selects besides the algorithm's own knobs (presets, scheduler)."""
    path = conf / "algorithm" / f"{name}.yaml"
    if not path.is_file():
        return []
    out = []
    for entry in OmegaConf.to_container(OmegaConf.load(path)).get("defaults", []):
        if isinstance(entry, dict):
            for key, value in entry.items():
                group = key.removeprefix("override ").strip("/")
                if not group.startswith("algorithm_registry"):
                    out.append(f"{group}={value}")
        elif isinstance(entry, str):
            out.append(entry.strip("/"))
    return out


def algorithm_help(name: str, conf: Path | None = None) -> str:
    """The knobs of registered algorithm ``name``: each with type, default and help, grouped by the config
    class that declares it (most specific first); with ``conf``, what its YAML preset also selects.
    Imports the registry, hence TRL."""
    from prefix_rft.algorithms import ALGORITHMS, get_algorithm

    entry = get_algorithm(name)
    config = entry.config
    trainer = entry.trainer.__name__ if entry.trainer is not None else "none (SFT only)"
    lines = [
        f"algorithm={name}: {(config.__doc__ or '').strip().splitlines()[0]}",
        f"  stages: {' -> '.join(entry.stages)}; RL trainer: {trainer}; "
        f"config: {config.__name__} ({config.__module__})",
    ]
    choices = _preset_choices(conf, name) if conf is not None else []
    if choices:
        lines.append(f"  conf/algorithm/{name}.yaml also selects: {', '.join(choices)}")
    lines.append("")
    hints = typing.get_type_hints(config)
    fields = dataclasses.fields(config)
    if not fields:
        lines += _wrap(f"No knobs of its own. Registered algorithms: {', '.join(sorted(ALGORITHMS))}.", "")
        return "\n".join(lines)
    # The class that declares each knob last: a subclass that changes a default re-declares it.
    owner = {
        f.name: next(c for c in config.__mro__ if f.name in vars(c).get("__annotations__", {}))
        for f in fields
    }
    lines.append("Knobs (algorithm.KNOB=VALUE), with their defaults:")
    for cls in [c for c in config.__mro__ if c in owner.values()]:
        lines.append(f" {cls.__name__}:" if cls is config else f" from {cls.__name__}:")
        for f in fields:
            if owner[f.name] is cls:
                lines += _field_lines(f.name, hints[f.name], _default(f), (f.metadata or {}).get("help", ""))
    return "\n".join(lines)


def scheduler_help(conf: Path, option: str) -> str:
    """The keys of ``scheduler=option`` (a file of ``conf/scheduler``, or a registered scheduler without
    one) that its schedule reads: type, the value this option gives it, help."""
    from prefix_rft.errors import ConfigError
    from prefix_rft.prefix.schedulers import SCHEDULERS, scheduler_fields, scheduler_key_specs

    options = sorted(set(_group_options(conf, "scheduler")) | set(SCHEDULERS))
    if option not in options:
        raise ConfigError(f"scheduler={option!r} is not an option; expected one of {options}")
    path = conf / "scheduler" / f"{option}.yaml"
    if path.is_file():
        # A key the file does not set keeps the group's default (the composed config's value).
        preset = {k.name: k.default for k in scheduler_fields()}
        preset.update(OmegaConf.to_container(OmegaConf.load(path)))
        where = path.relative_to(conf.parent) if conf.parent in path.parents else path
        about = [line.lstrip("# ").rstrip() for line in path.read_text().splitlines() if line.startswith("#")]
    else:  # a registered schedule without a preset file: its own defaults
        preset = {"name": option, **{k.name: k.default for k in scheduler_key_specs(option)}}
        where, about = "registered, no preset file", []
    kind = preset["name"]
    if kind not in SCHEDULERS:
        raise ConfigError(
            f"{where}: name={kind!r} is not a registered schedule; expected one of {sorted(SCHEDULERS)}"
        )
    cls = SCHEDULERS[kind]
    lines = [f"scheduler={option} ({where}):"]
    lines += [f"  {line}" for line in about]
    lines += ["", *_wrap(f"Schedule {kind!r} ({cls.__name__}): {(cls.__doc__ or '').strip()}", ""), ""]
    lines.append("Keys it reads (scheduler.KEY=VALUE), with this option's values:")
    specs = scheduler_key_specs(kind)
    for spec in specs:
        lines += _field_lines(spec.name, spec.type, preset[spec.name], spec.help)
    unused = sorted({k.name for k in scheduler_fields()} - {spec.name for spec in specs} - {"name"})
    if unused:
        lines += [
            "",
            *_wrap(f"Not read by this schedule: {', '.join(f'scheduler.{k}' for k in unused)}.", ""),
        ]
    return "\n".join(lines)


def _named_help(argv: list[str], group: str) -> str | None:
    """The NAME of ``--help-GROUP NAME``, or of ``GROUP=NAME`` next to ``--help``; None if not asked."""
    flag = f"--help-{group}"
    if flag in argv:
        i = argv.index(flag)
        if i + 1 >= len(argv) or argv[i + 1].startswith("-"):
            raise SystemExit(f"usage: prefix-rft-train {flag} NAME  (or --help {group}=NAME)")
        return argv[i + 1]
    if wants_help(argv):
        for arg in argv:
            if arg.startswith(f"{group}="):
                return arg.split("=", 1)[1]
    return None


def help_page(argv: list[str], conf: Path) -> str | None:
    """The page ``prefix-rft-train`` prints for ``argv``: an algorithm's knobs, a scheduler's keys, or the
    general page; None when no help is asked for. An unknown name exits with status 2 and one line."""
    from prefix_rft.errors import ConfigError

    try:
        pages = []
        algorithm = _named_help(argv, "algorithm")
        if algorithm is not None:
            pages.append(algorithm_help(algorithm, conf))
        scheduler = _named_help(argv, "scheduler")
        if scheduler is not None:
            pages.append(scheduler_help(conf, scheduler))
    except ConfigError as err:
        print(f"prefix-rft-train: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    except SystemExit as err:
        print(err.code, file=sys.stderr)
        raise SystemExit(2) from None
    if pages:
        return "\n\n".join(pages)
    return train_help(conf) if wants_help(argv) else None
