"""Which config keys a command line sets: the keys a resume compares and the knobs a notice may name."""

from __future__ import annotations


def overridden_keys(overrides: list[str]) -> set[str]:
    """The config keys (or groups) that command-line ``overrides`` set, e.g. ``{"algorithm", "seed"}``."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    keys: set[str] = set()
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.key_or_group
        if override.package:  # group@package=option: the package is the key it fills
            key = override.package.removeprefix("_global_").lstrip(".") or key
        keys.add(key)
    return keys
