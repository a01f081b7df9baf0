"""The one error type of every config check (training, evaluation, algorithms) and its choice helper.

Kept free of heavy imports so that the evaluation command and the trainers can raise it without
loading TRL's config machinery.
"""

from __future__ import annotations

from collections.abc import Iterable


class ConfigError(ValueError):
    """A config value is invalid; the message names the key and what was expected."""


def one_of(key: str, value: object, allowed: Iterable[str]) -> None:
    """Raise :class:`ConfigError` unless ``value`` is one of ``allowed``."""
    allowed = list(allowed)
    if value not in allowed:
        raise ConfigError(f"{key}={value!r} is not valid; expected one of {allowed}")
