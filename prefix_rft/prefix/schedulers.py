"""Prefix-ratio schedulers: the ratio l of a hybrid rollout is drawn from U(low_t, high) at step t.

The paper decays low_t on a cosine from 0.95 to 0.05 over 500 steps with high fixed at 0.95, so hybrid
rollouts start as near-complete demonstrations and end with the model writing most of the solution.
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod

import torch


def _check_ratio(key: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"scheduler.{key}={value} must be in [0, 1]")


class PrefixRatioScheduler(ABC):
    """Bounds ``(low_t, high)`` of the prefix ratio as a function of the global step."""

    name: str = ""

    @abstractmethod
    def bounds(self, step: int) -> tuple[float, float]:
        """``(low_t, high)`` at ``step``."""

    @abstractmethod
    def state_dict(self) -> dict:
        """The scheduler's configuration, with its ``name`` (enough to rebuild it)."""

    def sample(self, step: int, n: int, generator: torch.Generator | None = None) -> list[float]:
        """``n`` ratios drawn from U(low_t, high)."""
        low, high = self.bounds(step)
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        return (low + (high - low) * u).tolist()

    def mean(self, step: int) -> float:
        """Expected ratio at ``step``."""
        low, high = self.bounds(step)
        return (low + high) / 2


class _DecayScheduler(PrefixRatioScheduler):
    def __init__(
        self,
        high: float = 0.95,
        low_start: float = 0.95,
        low_end: float = 0.05,
        decay_steps: int = 500,
        allow_rising: bool = False,
    ):
        for key, value in (("high", high), ("low_start", low_start), ("low_end", low_end)):
            _check_ratio(key, value)
        if max(low_start, low_end) > high:
            raise ValueError(
                f"scheduler.low_start/low_end ({low_start}, {low_end}) must not exceed scheduler.high={high}"
            )
        if decay_steps <= 0:
            raise ValueError(f"scheduler.decay_steps={decay_steps} must be > 0")
        if low_end > low_start and not allow_rising:
            # Almost always swapped values: the method shortens prefixes over training.
            raise ValueError(
                f"scheduler.low_start={low_start} < scheduler.low_end={low_end} makes the lower bound of the "
                "prefix ratio rise over training (the paper's falls); swap them, or set "
                "scheduler.allow_rising=true if a rising schedule is meant"
            )
        self.high, self.low_start, self.low_end, self.decay_steps = high, low_start, low_end, decay_steps
        # A rising schedule is allowed only when asked for; the start-up checks log it.
        self.rising = low_end > low_start

    @abstractmethod
    def _progress(self, fraction: float) -> float:
        """Share of the decay done after ``fraction`` of decay_steps (0 -> 0, 1 -> 1)."""

    def bounds(self, step: int) -> tuple[float, float]:
        fraction = min(max(step, 0) / self.decay_steps, 1.0)
        low = self.low_start + (self.low_end - self.low_start) * self._progress(fraction)
        return low, self.high

    def state_dict(self) -> dict:
        state = {
            "name": self.name,
            "high": self.high,
            "low_start": self.low_start,
            "low_end": self.low_end,
            "decay_steps": self.decay_steps,
        }
        if self.rising:  # only then: checkpoints of falling schedules keep their earlier form
            state["allow_rising"] = True
        return state


class CosineScheduler(_DecayScheduler):
    """low_t follows a half cosine from low_start to low_end over decay_steps (paper default)."""

    name = "cosine"

    def _progress(self, fraction: float) -> float:
        return 0.5 * (1.0 - math.cos(math.pi * fraction))


class LinearScheduler(_DecayScheduler):
    """low_t falls linearly from low_start to low_end over decay_steps."""

    name = "linear"

    def _progress(self, fraction: float) -> float:
        return fraction


class UniformScheduler(PrefixRatioScheduler):
    """Fixed bounds: l ~ U(low, high) at every step."""

    name = "uniform"

    def __init__(self, low: float = 0.05, high: float = 0.95):
        _check_ratio("low", low)
        _check_ratio("high", high)
        if low > high:
            raise ValueError(f"scheduler.low={low} must not exceed scheduler.high={high}")
        self.low, self.high = low, high

    def bounds(self, step: int) -> tuple[float, float]:
        return self.low, self.high

    def state_dict(self) -> dict:
        return {"name": self.name, "low": self.low, "high": self.high}


class ConstantScheduler(UniformScheduler):
    """A fixed ratio: l = value."""

    name = "constant"

    def __init__(self, value: float = 0.5):
        _check_ratio("value", value)
        super().__init__(value, value)

    def state_dict(self) -> dict:
        return {"name": self.name, "value": self.low}


SCHEDULERS: dict[str, type[PrefixRatioScheduler]] = {
    cls.name: cls for cls in (CosineScheduler, LinearScheduler, UniformScheduler, ConstantScheduler)
}


def build_scheduler(name: str, **kwargs) -> PrefixRatioScheduler:
    """Instantiate a scheduler by name; bad names or bounds raise ValueError naming the key."""
    if name not in SCHEDULERS:
        raise ValueError(f"scheduler.name={name!r} is not valid; expected one of {sorted(SCHEDULERS)}")
    return SCHEDULERS[name](**kwargs)


def scheduler_from_config(sched_cfg) -> PrefixRatioScheduler:
    """The scheduler named by ``scheduler.name``, built from the ``scheduler.*`` keys its class takes."""
    name = sched_cfg.name
    if name not in SCHEDULERS:
        raise ValueError(f"scheduler.name={name!r} is not valid; expected one of {sorted(SCHEDULERS)}")
    params = inspect.signature(SCHEDULERS[name].__init__).parameters
    return build_scheduler(name, **{key: sched_cfg[key] for key in params if key != "self"})


def scheduler_from_state(state: dict) -> PrefixRatioScheduler:
    """Rebuild a scheduler from its :meth:`PrefixRatioScheduler.state_dict`."""
    state = dict(state)
    name = state.pop("name")
    if "low_end" in state and state["low_end"] > state.get("low_start", state["low_end"]):
        # A checkpoint's schedule was accepted when the run started (older ones do not record the flag).
        state["allow_rising"] = True
    return build_scheduler(name, **state)


def step_generator(seed: int, step: int, process_index: int = 0) -> torch.Generator:
    """A generator seeded by (seed, step, process) so a resumed run draws the same ratios."""
    gen = torch.Generator()
    gen.manual_seed((seed * 1_000_003 + step) * 1_009 + process_index)
    return gen
