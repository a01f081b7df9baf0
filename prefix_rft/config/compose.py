"""Finding ``conf/`` and composing configs outside ``@hydra.main`` (tests, notebooks, benchmarks)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig

CONF_ENV = "PREFIX_RFT_CONF"


def conf_dir() -> Path:
    """The Hydra config directory: ``$PREFIX_RFT_CONF`` or ``conf/`` at the repository root."""
    env = os.environ.get(CONF_ENV)
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "conf"
    if not (path / "config.yaml").is_file():
        raise FileNotFoundError(
            f"Hydra config directory not found at {path} (expected {path / 'config.yaml'}). Install the "
            f"project from a clone with `pip install -e .`, or point {CONF_ENV} at a copy of conf/."
        )
    return path


def compose_config(overrides: Sequence[str] = (), config_name: str = "config") -> DictConfig:
    """Compose a config exactly as the CLI would, with command-line style ``overrides``.

    ``${hydra:...}`` interpolations are not available here, so callers pass ``output_dir=...``.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from prefix_rft.config.schema import register_configs

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return compose(config_name=config_name, overrides=list(overrides))
