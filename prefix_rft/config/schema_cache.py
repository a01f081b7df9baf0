"""The generated parts of the training schema (``trainer.*`` from TRL, ``algorithm.*`` from the registry),
as data that can be cached so that composing a config does not import TRL.

Building them needs TRL's config classes and the trainers (3-5 s of imports); printing a config
(``prefix-rft-train --cfg job``) or reporting a mistyped key should not wait for that. A
:class:`SchemaSpec` holds each generated field as ``(name, type name, help)`` and each algorithm's
defaults; it is written to ``<cache>/schema/train-<key>.json``, where the key hashes the installed
TRL/transformers versions and this package's sources, so any change rebuilds it. A process that imported
plugins (outside algorithms, :mod:`prefix_rft.plugins`) builds the schema live instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

logger = logging.getLogger(__name__)

# The Hydra group that holds the generated per-algorithm defaults.
REGISTRY_GROUP = "algorithm_registry"

_SIMPLE = {"bool": bool, "int": int, "float": float, "str": str}


def type_name(tp: Any) -> str:
    """A Hydra field type (see :func:`prefix_rft.config.trainer_args.hydra_type`) as a string."""
    if tp is Any:
        return "Any"
    if tp in _SIMPLE.values():
        return tp.__name__
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) is typing.Union and len(args) == 1:
        return f"Optional[{type_name(args[0])}]"
    if typing.get_origin(tp) is list and len(args) == 1:
        return f"list[{type_name(args[0])}]"
    raise TypeError(f"no name for field type {tp!r}")


def type_from_name(name: str) -> Any:
    """Inverse of :func:`type_name`."""
    if name == "Any":
        return Any
    if name in _SIMPLE:
        return _SIMPLE[name]
    if name.startswith("Optional[") and name.endswith("]"):
        return Optional[type_from_name(name[9:-1])]  # noqa: UP045 - OmegaConf needs typing.Optional
    if name.startswith("list[") and name.endswith("]"):
        return list[type_from_name(name[5:-1])]
    raise ValueError(f"unknown field type name {name!r}")


def _cache_key() -> str:
    from importlib.metadata import version

    digest = hashlib.sha256()
    for dist in ("trl", "transformers"):
        digest.update(f"{dist}={version(dist)};".encode())
    root = Path(__file__).resolve().parents[1]
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@dataclass
class SchemaSpec:
    """The generated schema as data: fields ``(name, type name, help)`` and each algorithm's defaults."""

    trainer: list[tuple[str, str, str]]
    algorithm: list[tuple[str, str, str]]
    algorithms: dict[str, dict[str, Any]]

    @classmethod
    def live(cls) -> SchemaSpec:
        """Built from the installed TRL and the algorithm registry (imports both)."""
        from prefix_rft.algorithms import ALGORITHMS
        from prefix_rft.config.algorithm_args import algorithm_defaults, algorithm_field_specs
        from prefix_rft.config.trainer_args import trainer_field_specs

        return cls(
            trainer=[(n, type_name(tp), h) for n, tp, h in trainer_field_specs()],
            algorithm=[(n, type_name(tp), h) for n, tp, h in algorithm_field_specs()],
            algorithms={entry.name: algorithm_defaults(entry) for entry in ALGORITHMS.values()},
        )

    @classmethod
    def cached(cls) -> SchemaSpec:
        """From the cache when it matches the installed packages and sources, else :meth:`live` (then cached).

        With plugins imported (:mod:`prefix_rft.plugins`) the schema is always built live and not cached:
        the key covers this package's sources only, and a plugin's algorithms and knobs must never be
        hidden by a schema cached without them (a plugin has imported TRL anyway).
        """
        from prefix_rft.config.paths import cache_root
        from prefix_rft.plugins import loaded_plugins

        if loaded_plugins():
            return cls.live()
        path = cache_root() / "schema" / f"train-{_cache_key()}.json"
        try:
            data = json.loads(path.read_text())
            return cls(
                trainer=[tuple(f) for f in data["trainer"]],
                algorithm=[tuple(f) for f in data["algorithm"]],
                algorithms=data["algorithms"],
            )
        except (OSError, ValueError, KeyError, TypeError):
            pass  # absent or unreadable: build it
        spec = cls.live()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".train-", suffix=".json")
            with os.fdopen(fd, "w") as f:
                json.dump(
                    {"trainer": spec.trainer, "algorithm": spec.algorithm, "algorithms": spec.algorithms}, f
                )
            os.replace(tmp, path)
        except OSError as err:  # a read-only cache only costs the next start its speed
            logger.debug("schema cache not written (%s)", err)
        return spec

    def classes(self) -> tuple[type, type]:
        """The ``TrainerArgs`` and ``AlgorithmArgs`` dataclasses of this spec."""
        from prefix_rft.config.trainer_args import ALGORITHM_ARGS_DOC, TRAINER_ARGS_DOC, args_class

        def specs(fields):
            return [(n, type_from_name(t), h) for n, t, h in fields]

        return (
            args_class("TrainerArgs", specs(self.trainer), TRAINER_ARGS_DOC),
            args_class("AlgorithmArgs", specs(self.algorithm), ALGORITHM_ARGS_DOC),
        )
