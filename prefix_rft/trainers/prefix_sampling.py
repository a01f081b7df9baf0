"""Prefix sampling, the component of the algorithms that cut demonstration prefixes at a scheduled ratio.

Two parts, each with its own knobs, used only by the algorithms that sample prefixes:

* :class:`ScheduledPrefixConfig` + :class:`ScheduledPrefixes`: a prefix ratio drawn from the prefix
  scheduler (the ``scheduler`` group; :mod:`prefix_rft.prefix.schedulers`) and cut from a demonstration
  (``min_prefix_tokens``). The trainer takes the built scheduler as ``prefix_scheduler`` and checkpoints it
  (:class:`~prefix_rft.prefix.scheduler_state.PrefixSchedulerState`). Prefix-in-prompt uses this part alone.
* :class:`HybridRolloutConfig`: hybrid rollouts in the completion (``num_prefixed`` per group, whole
  demonstrations with ``allow_full_prefix``) and which of their prefix tokens keep their advantage
  (``prefix_update``, ``keep_fraction``: Prefix-RFT's entropy mask, applied in its loss). Used by
  Prefix-RFT, LUFFY and SRFT (:class:`~prefix_rft.trainers.prefix_rft.PrefixRFTTrainer`).

An algorithm whose config has neither part accepts no scheduler and builds none; ``scheduler.*`` given to it
is reported as ignored (:mod:`prefix_rft.config.knob_notices` asks :attr:`AlgorithmConfig.uses_scheduler`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from prefix_rft.errors import ConfigError, one_of
from prefix_rft.losses import PREFIX_UPDATE_MODES
from prefix_rft.prefix.scheduler_state import PrefixSchedulerState
from prefix_rft.prefix.schedulers import PrefixRatioScheduler
from prefix_rft.trainers.algorithm_config import AlgorithmConfig, knob


@dataclass
class ScheduledPrefixConfig(AlgorithmConfig):
    """A demonstration prefix whose ratio comes from the prefix scheduler (``scheduler.*``)."""

    uses_scheduler: ClassVar[bool] = True

    min_prefix_tokens: int = knob(1, "Shortest prefix in tokens.")

    def trainer_kwargs(self, prefix_scheduler: Any = None) -> dict[str, Any]:
        if prefix_scheduler is None:
            raise ValueError(
                f"{type(self).__name__} draws prefix ratios: its trainer needs a prefix_scheduler"
            )
        return {**super().trainer_kwargs(prefix_scheduler), "prefix_scheduler": prefix_scheduler}


@dataclass
class HybridRolloutConfig(ScheduledPrefixConfig):
    """Hybrid rollouts: ``num_prefixed`` rollouts per group continue a demonstration prefix; which prefix
    tokens keep their advantage."""

    num_prefixed: int = knob(
        1, "Hybrid rollouts per group that start from a demonstration prefix (paper: 1; 0 = RFT)."
    )
    prefix_update: str = knob(
        "entropy_top",
        f"Which prefix tokens keep their advantage: one of {', '.join(PREFIX_UPDATE_MODES)}.",
    )
    keep_fraction: float = knob(
        0.2, "Fraction of prefix tokens updated by entropy_top/entropy_bottom/random (paper: 0.2)."
    )
    allow_full_prefix: bool = knob(
        False, "Allow a prefix to cover the whole demonstration (LUFFY-style off-policy rollout, ratio 1)."
    )

    def check(self, args) -> None:
        super().check(args)
        one_of("algorithm.prefix_update", self.prefix_update, PREFIX_UPDATE_MODES)
        if not 0 <= self.num_prefixed <= args.num_generations:
            raise ConfigError(
                f"algorithm.num_prefixed={self.num_prefixed} must be between 0 and "
                f"trainer.num_generations={args.num_generations}"
            )
        if not 0.0 < self.keep_fraction <= 1.0:
            raise ConfigError(f"algorithm.keep_fraction={self.keep_fraction} must be in (0, 1]")

    def needs_demonstrations(self) -> bool:
        return self.num_prefixed > 0


class ScheduledPrefixes:
    """Trainer part of :class:`ScheduledPrefixConfig`: takes the built scheduler (``prefix_scheduler``) and
    keeps it in a stateful callback, so checkpoints carry it and a resumed run keeps its schedule."""

    def __init__(self, *args, prefix_scheduler: PrefixRatioScheduler, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_callback(PrefixSchedulerState.from_scheduler(prefix_scheduler))

    @property
    def prefix_scheduler(self) -> PrefixRatioScheduler:
        """The prefix-ratio scheduler (the restored one after resuming from a checkpoint)."""
        for callback in self.callback_handler.callbacks:
            if isinstance(callback, PrefixSchedulerState):
                return callback.scheduler
        raise RuntimeError("PrefixSchedulerState callback is missing")

    def _rollout_round(self) -> tuple[int, int]:
        """``(round, rounds)``: which generation round of the optimizer step this is, of how many. One step
        can hold several rounds (gradient_accumulation_steps > steps_per_generation), each needing fresh
        ratio draws; the index restarts with every step, so a run resumed at a step boundary draws the same."""
        args = self.args
        rounds = max(args.gradient_accumulation_steps // max(args.steps_per_generation, 1), 1)
        return (self._step // (args.steps_per_generation * self.num_iterations)) % rounds, rounds

    def _log_ratio_bounds(self, metrics) -> None:
        """The scheduler's ratio bounds at this step (training only)."""
        low, high = self.prefix_scheduler.bounds(self.state.global_step)
        metrics["prefix/ratio_low"].append(low)
        metrics["prefix/ratio_high"].append(high)
