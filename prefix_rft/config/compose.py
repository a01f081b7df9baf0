"""Finding ``conf/`` and composing configs outside ``@hydra.main`` (tests, notebooks, benchmarks)."""

from __future__ import annotations

from collections.abc import Sequence

from omegaconf import DictConfig

from prefix_rft.config.paths import CONF_ENV, conf_dir

__all__ = ["CONF_ENV", "compose_config", "conf_dir"]


def compose_config(overrides: Sequence[str] = (), config_name: str = "config") -> DictConfig:
    """Compose a config exactly as the CLI would, with command-line style ``overrides``.

    ``${hydra:...}`` interpolations are not available here, so callers pass ``output_dir=...``. Modules
    named by ``plugins=[...]`` are imported first, as the CLI does.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from prefix_rft.config.schema import register_configs
    from prefix_rft.plugins import load_plugins, plain_plugins_overrides, plugins_on_command_line
    from prefix_rft.training.folder_claim import register_run_dir_resolver

    # Outside algorithms (plugins=[...], installed entry points) register before the schema is built.
    overrides = plain_plugins_overrides(overrides)
    load_plugins(plugins_on_command_line(overrides))
    register_configs()
    register_run_dir_resolver()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return compose(config_name=config_name, overrides=list(overrides))
