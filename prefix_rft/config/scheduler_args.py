"""The ``scheduler`` config group, generated from the registered schedulers (their dataclass fields).

* :func:`make_scheduler_args_class` is the group's schema: ``name`` plus every key of every scheduler in
  :data:`prefix_rft.prefix.schedulers.SCHEDULERS`, typed, with its default and help text. Every key has
  a value whatever the schedule (``--cfg job`` shows them all); each schedule reads its own.
* :func:`scheduler_defaults` is the Hydra node of a scheduler that has no ``conf/scheduler/<name>.yaml``
  preset: its name and its own defaults, so ``scheduler=<name>`` works for it too.

Nothing here imports TRL or torch, so it is built live on every composition (no schema cache needed).
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from prefix_rft.config.trainer_args import hydra_type
from prefix_rft.prefix.schedulers import scheduler_fields, scheduler_key_specs

SCHEDULER_ARGS_DOC = "Prefix-ratio scheduler: l ~ U(low_t, high) with low_t decaying over training."


def _field(default: Any, help_text: str) -> Any:
    if isinstance(default, (list, dict)):  # a dataclass field cannot share one mutable default
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata={"help": help_text})
    return dataclasses.field(default=default, metadata={"help": help_text})


def make_scheduler_args_class() -> type:
    """The schema of the ``scheduler`` group (generated on every call: a scheduler registered at run time
    is part of it)."""
    specs = [(k.name, hydra_type(k.type), _field(k.default, k.help)) for k in scheduler_fields()]
    cls = dataclasses.make_dataclass("SchedulerConfig", specs)
    cls.__doc__ = SCHEDULER_ARGS_DOC
    return cls


def scheduler_defaults(name: str) -> dict[str, Any]:
    """The config node of scheduler ``name``: its name and the defaults of its own keys."""
    return {"name": name, **{k.name: copy.deepcopy(k.default) for k in scheduler_key_specs(name)}}
