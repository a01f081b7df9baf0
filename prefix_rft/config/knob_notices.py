"""Notices about knobs the run does not read: set on the command line, ignored by the chosen components.

Two groups have knobs that only some of their options read: ``algorithm.*`` (each algorithm reads its
own config class's fields) and ``scheduler.*`` (each scheduler reads its constructor's parameters, and
an algorithm without hybrid rollouts reads no scheduler at all). A knob the user sets for another option
is ignored, as TRL ignores the ``trainer.*`` fields a trainer does not read; one line says so.

Only keys the user named (``algorithm.X=...``, ``scheduler.X=...`` on the command line) are reported:
values that config files set for every option (``scale=cpu`` sizes ReLIFT's buffer whatever the
algorithm) are not the user's doing and would only be noise.
"""

from __future__ import annotations

import dataclasses
import logging

from omegaconf import DictConfig, OmegaConf

logger = logging.getLogger("prefix_rft.config.validate")


def named_keys(overrides: list[str] | None) -> set[str] | None:
    """The dotted keys the command line sets (``trainer.max_steps=3`` -> ``trainer.max_steps``); group
    selections (``scheduler=uniform``) are not keys. None when the overrides are unknown."""
    if overrides is None:
        return None
    from prefix_rft.config.overrides import overridden_keys

    return {key for key in overridden_keys(overrides) if "." in key}


def scheduler_knobs_read(cfg: DictConfig) -> set[str]:
    """The ``scheduler.*`` keys the run reads: the chosen scheduler's parameters (and ``name``), or none
    when the algorithm has no hybrid rollouts."""
    from prefix_rft.config.algorithm_args import get_algorithm
    from prefix_rft.prefix.schedulers import SCHEDULERS, scheduler_keys

    entry = get_algorithm(cfg.algorithm.name)
    if entry.trainer is None or not entry.config.uses_scheduler:  # a class attribute: no config to build
        return set()
    if cfg.scheduler.name not in SCHEDULERS:
        return {"name"}  # an unknown name is refused by the scheduler's own check
    return {"name", *scheduler_keys(cfg.scheduler.name)}


def ignored_knobs(cfg: DictConfig, overrides: list[str] | None) -> list[str]:
    """``algorithm.*`` / ``scheduler.*`` keys set (by the user, when ``overrides`` are known) that the
    chosen algorithm and scheduler do not read, sorted."""
    from prefix_rft.config.algorithm_args import get_algorithm, set_algorithm_args

    entry = get_algorithm(cfg.algorithm.name)
    own = {f.name for f in dataclasses.fields(entry.config)} | {"name"}
    ignored = [f"algorithm.{k}" for k in set_algorithm_args(cfg.algorithm) if k not in own]
    read = scheduler_knobs_read(cfg)
    ignored += [f"scheduler.{k}" for k in cfg.scheduler if k not in read]
    named = named_keys(overrides)
    if named is None:
        # Unknown overrides: the algorithm knobs set anywhere (scheduler.* always has values).
        return sorted(k for k in ignored if k.startswith("algorithm."))
    return sorted(k for k in ignored if k in named)


def report_ignored_knobs(cfg: DictConfig, overrides: list[str] | None) -> None:
    """Log one line naming the knobs of :func:`ignored_knobs` and which choice does not read them."""
    ignored = ignored_knobs(cfg, overrides)
    if not ignored:
        return
    parts = []
    knobs = [k for k in ignored if k.startswith("algorithm.")]
    if knobs:
        parts.append(f"algorithm={cfg.algorithm.name} does not read {_values(cfg, knobs)}")
    knobs = [k for k in ignored if k.startswith("scheduler.")]
    if knobs:
        read = scheduler_knobs_read(cfg) - {"name"}
        reader = (
            f"scheduler={cfg.scheduler.name} (it reads {', '.join(sorted(read))})"
            if read
            else f"algorithm={cfg.algorithm.name} (it has no hybrid rollouts, so no prefix scheduler)"
        )
        parts.append(f"{reader} does not read {_values(cfg, knobs)}")
    logger.info("ignored settings: %s", "; ".join(parts))


def _values(cfg: DictConfig, keys: list[str]) -> str:
    return ", ".join(f"{k}={OmegaConf.select(cfg, k)}" for k in keys)
