"""Where the Hydra config directory ``conf/`` is."""

from __future__ import annotations

import os
from pathlib import Path

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


def cache_root() -> Path:
    """The project's cache folder: ``$PREFIX_RFT_CACHE`` or ``~/.cache/prefix_rft`` (models, schema)."""
    env = os.environ.get("PREFIX_RFT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "prefix_rft"
