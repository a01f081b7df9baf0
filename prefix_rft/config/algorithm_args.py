"""The ``algorithm`` config group, generated from the algorithm registry like ``trainer.*`` is from TRL.

* :func:`make_algorithm_args_class` builds the group's schema: ``name`` plus every knob of every
  registered config class, typed, with its help text, MISSING ("not set") by default. A key no
  algorithm has is a schema error at start-up; a wrong type too.
* :func:`algorithm_defaults` is one generated Hydra node per algorithm: its name and its config
  class's defaults. ``conf/algorithm/<name>.yaml`` pulls it in with
  ``- /algorithm_registry@algorithm: <name>``; an algorithm without a YAML gets it as the option
  ``algorithm=<name>`` itself.
* :func:`algorithm_from_config` turns the composed group into the entry and its typed config. Knobs
  set for other algorithms (a sweep's shared overrides, the CPU scale's ReLIFT buffer) are ignored,
  as TRL ignores the ``trainer.*`` fields a trainer does not read.
"""

from __future__ import annotations

import dataclasses
import logging
import typing
from typing import Any

from omegaconf import DictConfig, OmegaConf

from prefix_rft.algorithms import ALGORITHMS, Algorithm, get_algorithm
from prefix_rft.config.trainer_args import ALGORITHM_ARGS_DOC, args_class, hydra_type
from prefix_rft.trainers.algorithm_config import AlgorithmConfig

logger = logging.getLogger(__name__)


def knob_fields() -> dict[str, tuple[Any, str]]:
    """``{knob: (type, help)}`` over every registered config class; a knob has one type everywhere.

    A knob that algorithms describe differently (``sft_coef`` is a different weight in rl_sft_loss, SRFT
    and HPT) keeps each one's help, prefixed by the algorithms it belongs to."""
    types: dict[str, Any] = {}
    owner: dict[str, str] = {}
    helps: dict[str, dict[str, list[str]]] = {}
    for entry in ALGORITHMS.values():
        hints = typing.get_type_hints(entry.config)
        for f in dataclasses.fields(entry.config):
            tp = hydra_type(hints[f.name])
            if f.name in types and types[f.name] != tp:
                raise TypeError(
                    f"algorithm knob {f.name} is {types[f.name]} in {owner[f.name]} but {tp} in "
                    f"{entry.config.__name__}: one knob name, one type"
                )
            types.setdefault(f.name, tp)
            owner.setdefault(f.name, entry.config.__name__)
            text = (f.metadata or {}).get("help", "")
            helps.setdefault(f.name, {}).setdefault(text, []).append(entry.name)
    return {name: (types[name], _merged_help(helps[name])) for name in types}


def _merged_help(texts: dict[str, list[str]]) -> str:
    """One help text, or each algorithm's: ``luffy: ... | prefix_rft, srft: ...``."""
    if len(texts) == 1:
        return next(iter(texts))
    return " | ".join(f"{', '.join(names)}: {text}" for text, names in texts.items())


def algorithm_field_specs() -> list[tuple[str, Any, str]]:
    """``(name, Hydra type, help)`` of the ``algorithm`` group: ``name`` plus every registered knob."""
    specs = [("name", str, "A registered algorithm.")]
    return specs + [(name, tp, help_text) for name, (tp, help_text) in sorted(knob_fields().items())]


def make_algorithm_args_class() -> type:
    """The schema of the ``algorithm`` group: ``name`` plus the union of the registered knobs."""
    return args_class("AlgorithmArgs", algorithm_field_specs(), ALGORITHM_ARGS_DOC)


def algorithm_defaults(entry: Algorithm) -> dict[str, Any]:
    """The generated node of one algorithm: its name and the defaults of its config class."""
    return {"name": entry.name, **dataclasses.asdict(entry.config())}


def set_algorithm_args(algo_cfg: DictConfig) -> dict[str, Any]:
    """The ``algorithm.*`` values that are set (not MISSING), ``name`` included."""
    return {k: algo_cfg[k] for k in algo_cfg if not OmegaConf.is_missing(algo_cfg, k)}


def algorithm_from_config(cfg: DictConfig) -> tuple[Algorithm, AlgorithmConfig]:
    """The registry entry of ``algorithm.name`` and its config built from the ``algorithm.*`` values."""
    entry = get_algorithm(cfg.algorithm.name)
    values = set_algorithm_args(cfg.algorithm)
    own = {f.name for f in dataclasses.fields(entry.config)}
    return entry, entry.config(**{k: v for k, v in values.items() if k in own})


def resolved_algorithm(cfg: DictConfig) -> dict[str, Any]:
    """What the run used: the name and every knob of the selected algorithm (for config.yaml)."""
    entry, config = algorithm_from_config(cfg)
    return {"name": entry.name, **dataclasses.asdict(config)}
