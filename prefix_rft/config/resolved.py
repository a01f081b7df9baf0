"""The run's settings as plain data: what ``config.yaml`` records and what a resume compares with it."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf


def resolved_config(cfg: DictConfig) -> dict[str, Any]:
    """The config as plain data with every interpolation resolved, unset trainer fields dropped and the
    algorithm's knobs as the run used them. A resume request is not part of a run's settings: dropped."""
    from prefix_rft.config.algorithm_args import resolved_algorithm
    from prefix_rft.config.trainer_args import set_trainer_args

    data = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    data["algorithm"] = resolved_algorithm(cfg)
    for group in ("trainer", "sft_trainer"):
        data[group] = {k: v for k, v in set_trainer_args(cfg[group]).items() if k != "resume_from_checkpoint"}
    data["resume_from_checkpoint"] = None
    return data
