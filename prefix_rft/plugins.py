"""Algorithms from outside the package: modules imported before the config schema is built.

A plugin is a Python module that registers algorithms when imported (it calls
:func:`prefix_rft.algorithms.register_algorithm`). Two ways load one:

* the config key ``plugins`` (``prefix-rft-train plugins=[my_pkg.algos] algorithm=mine``), which a run's
  ``config.yaml`` keeps, so a resume imports the same modules again;
* the entry-point group :data:`ENTRY_POINT_GROUP` of an installed distribution
  (``[project.entry-points."prefix_rft.algorithms"] mine = "my_pkg.algos"``): every such entry point is
  imported at start-up, with no key to set.

Both must happen before the ``algorithm`` group is generated from the registry, so the command-line
tools read ``plugins`` from their arguments (:func:`plugins_on_command_line`) before composing.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from prefix_rft.errors import ConfigError

logger = logging.getLogger(__name__)

# The entry-point group whose entries are imported at start-up (each value: a module, or module:object).
ENTRY_POINT_GROUP = "prefix_rft.algorithms"
# The config key that lists plugin modules.
PLUGINS_KEY = "plugins"

# What this process has imported as plugins: module names and "entry point NAME (DIST)" labels.
_LOADED: list[str] = []
_ENTRY_POINTS_DONE = False


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def import_plugins(modules: Iterable[str]) -> list[str]:
    """Import each module of the ``plugins`` key once; returns the names imported by this call.

    A module that cannot be imported (absent, or failing while it runs) is a :class:`ConfigError` naming
    ``plugins`` and the module.
    """
    imported = []
    for name in modules:
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"plugins: expected a list of module names (e.g. [my_pkg.algos]), got {name!r}")
        if name in _LOADED:
            continue
        try:
            importlib.import_module(name)
        except Exception as err:  # noqa: BLE001 - any failure of the user's module is reported as one line
            raise ConfigError(f"plugins: cannot import the module {name!r}: {_first_line(err)}") from err
        _LOADED.append(name)
        imported.append(name)
    return imported


def load_entry_points() -> list[str]:
    """Import every entry point of the group :data:`ENTRY_POINT_GROUP` (once per process); returns their
    labels. One that fails to import is a :class:`ConfigError` naming it and its distribution."""
    global _ENTRY_POINTS_DONE
    if _ENTRY_POINTS_DONE:
        return []
    from importlib.metadata import entry_points

    labels = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep.dist, "name", None) or "an installed distribution"
        label = f"entry point {ep.name} = {ep.value} ({dist})"
        try:
            ep.load()
        except Exception as err:  # noqa: BLE001 - a broken plugin is the user's to fix: one line
            raise ConfigError(
                f"{label} of group {ENTRY_POINT_GROUP} cannot be imported: {_first_line(err)}; "
                f"fix or uninstall {dist}"
            ) from err
        _LOADED.append(label)
        labels.append(label)
    _ENTRY_POINTS_DONE = True
    return labels


def loaded_plugins() -> tuple[str, ...]:
    """What this process imported as plugins so far (modules and entry points)."""
    return tuple(_LOADED)


def load_plugins(modules: Iterable[str] = ()) -> None:
    """The entry points of :data:`ENTRY_POINT_GROUP`, then the modules of the ``plugins`` key."""
    load_entry_points()
    import_plugins(modules)


def _as_modules(value: Any) -> list[str]:
    from hydra.core.override_parser.types import ChoiceSweep

    if isinstance(value, ChoiceSweep):  # a sweep over plugin lists (-m plugins=[a],[b]): import all
        return [m for choice in value.list for m in _as_modules(choice)]
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    raise ConfigError(
        f"plugins: expected a list of module names (e.g. plugins=[my_pkg.algos]), got {value!r}"
    )


def plugins_on_command_line(overrides: Sequence[str]) -> list[str]:
    """The modules that ``plugins=[...]`` (or ``+plugins=``/``++plugins=``) names among ``overrides``.

    Read before Hydra composes: the algorithms they register must be in the generated schema. An
    override that does not parse is left to the command-line check, which reports it.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    modules: list[str] = []
    for text in overrides:
        if not text.lstrip("+~").startswith(PLUGINS_KEY + "="):
            continue
        try:
            (override,) = parser.parse_overrides([text])
        except HydraException:
            continue
        if override.key_or_group != PLUGINS_KEY or override.is_delete():
            continue
        modules += [m for m in _as_modules(override.value()) if m not in modules]
    return modules


def plain_plugins_overrides(overrides: Sequence[str]) -> list[str]:
    """``overrides`` with ``+plugins=``/``++plugins=`` written as ``plugins=``: the key is in the schema
    (default: empty), and Hydra refuses to add a key that exists."""
    out = []
    for text in overrides:
        stripped = text.lstrip("+")
        out.append(stripped if stripped.startswith(PLUGINS_KEY + "=") else text)
    return out
