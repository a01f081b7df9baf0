"""The base of every algorithm's config class: its knobs (``algorithm.*``), their help and their checks.

An algorithm's config is a dataclass next to its trainer. Each field is one knob of the Hydra group
``algorithm`` (the group is generated from these classes, see :mod:`prefix_rft.config.algorithm_args`);
its default and help text are written once, in the field. :meth:`AlgorithmConfig.check` is the only
place the knobs are checked: at start-up against the configured ``trainer.*`` values, and again by the
trainer against the ``GRPOConfig`` it was given.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar


def knob(default: Any, help: str) -> Any:  # noqa: A002 - the name TRL's configs use for the same metadata
    """A config field with its help text (shown by ``prefix-rft-train --help`` tooling and the docs)."""
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass
class AlgorithmConfig:
    """An algorithm without knobs of its own (TRL's trainers as they are: RFT, SFT, SFT -> RFT)."""

    # Whether the algorithm draws prefix ratios from the prefix scheduler (the ``scheduler`` group): only
    # then is a scheduler built and handed to its trainer (prefix_rft.trainers.prefix_sampling).
    uses_scheduler: ClassVar[bool] = False

    def check(self, args: Any) -> None:
        """Raise :class:`~prefix_rft.errors.ConfigError` for invalid knobs.

        ``args``: the trainer arguments as TRL sees them (a ``GRPOConfig``, or the ``trainer.*`` values
        of the config with TRL's defaults filled in), read by attribute.
        """

    def needs_demonstrations(self) -> bool:
        """Whether these knob values make the algorithm train on demonstrations."""
        return False

    def trainer_kwargs(self, prefix_scheduler: Any = None) -> dict[str, Any]:
        """Keyword arguments the algorithm's trainer takes besides GRPOTrainer's own (none here).

        ``prefix_scheduler``: the built scheduler, given only when :attr:`uses_scheduler` is true."""
        return {}
