"""Prefix-ratio schedulers: the ratio l of a hybrid rollout is drawn from U(low_t, high) at step t.

The paper decays low_t on a cosine from 0.95 to 0.05 over 500 steps with high fixed at 0.95, so hybrid
rollouts start as near-complete demonstrations and end with the model writing most of the solution.

Each scheduler is a frozen dataclass whose fields are its ``scheduler.*`` keys (default and help text in
the field), checked in ``__post_init__``. That one definition feeds everything else: the generated
``scheduler`` config group (:mod:`prefix_rft.config.scheduler_args`), ``--help scheduler=NAME``, the
notice about keys a run ignores, building from the config and the checkpointed state. A new scheduler is
a dataclass registered in :data:`SCHEDULERS`.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import torch

# The schedule a config gets when it names none (the paper's).
DEFAULT_SCHEDULER = "cosine"


def key(default: Any, help: str) -> Any:  # noqa: A002 - the metadata name the config classes use too
    """A scheduler field: one ``scheduler.*`` key with its default and help text (``--help scheduler=``)."""
    return dataclasses.field(default=default, metadata={"help": help})


def _check_ratio(field_name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"scheduler.{field_name}={value} must be in [0, 1]")


@dataclasses.dataclass(frozen=True)
class PrefixRatioScheduler(ABC):
    """Bounds ``(low_t, high)`` of the prefix ratio as a function of the global step.

    Subclasses are frozen dataclasses: their fields are their ``scheduler.*`` keys.
    """

    name: ClassVar[str] = ""

    @abstractmethod
    def bounds(self, step: int) -> tuple[float, float]:
        """``(low_t, high)`` at ``step``."""

    def state_dict(self) -> dict:
        """The scheduler's ``name`` and its keys' values (enough to rebuild it; saved in checkpoints)."""
        return {"name": self.name, **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)}}

    def sample(self, step: int, n: int, generator: torch.Generator | None = None) -> list[float]:
        """``n`` ratios drawn from U(low_t, high)."""
        import torch  # here, not at the top: composing a config imports this module and not torch

        low, high = self.bounds(step)
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        return (low + (high - low) * u).tolist()

    def mean(self, step: int) -> float:
        """Expected ratio at ``step``."""
        low, high = self.bounds(step)
        return (low + high) / 2


@dataclasses.dataclass(frozen=True)
class _DecayScheduler(PrefixRatioScheduler):
    high: float = key(0.95, "Upper bound of the prefix ratio (paper: 0.95).")
    low_start: float = key(0.95, "Lower bound at step 0 (cosine/linear; paper: 0.95).")
    low_end: float = key(0.05, "Lower bound after decay_steps (cosine/linear; paper: 0.05).")
    decay_steps: int = key(500, "Steps over which the lower bound decays (cosine/linear; paper: 500).")
    allow_rising: bool = key(
        False,
        "cosine/linear: allow low_end > low_start (a lower bound that rises over training); without it such "
        "a schedule is refused as a likely swap of the two values.",
    )

    def __post_init__(self) -> None:
        for name in ("high", "low_start", "low_end"):
            _check_ratio(name, getattr(self, name))
        low_start, low_end, high = self.low_start, self.low_end, self.high
        if max(low_start, low_end) > high:
            raise ValueError(
                f"scheduler.low_start/low_end ({low_start}, {low_end}) must not exceed scheduler.high={high}"
            )
        if self.decay_steps <= 0:
            raise ValueError(f"scheduler.decay_steps={self.decay_steps} must be > 0")
        if self.rising and not self.allow_rising:
            # Almost always swapped values: the method shortens prefixes over training.
            raise ValueError(
                f"scheduler.low_start={low_start} < scheduler.low_end={low_end} makes the lower bound of the "
                "prefix ratio rise over training (the paper's falls); swap them, or set "
                "scheduler.allow_rising=true if a rising schedule is meant"
            )

    @property
    def rising(self) -> bool:
        """Whether the lower bound rises over training (allowed only when asked for; start-up logs it)."""
        return self.low_end > self.low_start

    @abstractmethod
    def _progress(self, fraction: float) -> float:
        """Share of the decay done after ``fraction`` of decay_steps (0 -> 0, 1 -> 1)."""

    def bounds(self, step: int) -> tuple[float, float]:
        fraction = min(max(step, 0) / self.decay_steps, 1.0)
        low = self.low_start + (self.low_end - self.low_start) * self._progress(fraction)
        return low, self.high

    def state_dict(self) -> dict:
        state = super().state_dict()
        # Recorded only for a rising schedule: checkpoints of falling ones keep their earlier form.
        del state["allow_rising"]
        if self.rising:
            state["allow_rising"] = True
        return state


@dataclasses.dataclass(frozen=True)
class CosineScheduler(_DecayScheduler):
    """low_t follows a half cosine from low_start to low_end over decay_steps (paper default)."""

    name = "cosine"

    def _progress(self, fraction: float) -> float:
        return 0.5 * (1.0 - math.cos(math.pi * fraction))


@dataclasses.dataclass(frozen=True)
class LinearScheduler(_DecayScheduler):
    """low_t falls linearly from low_start to low_end over decay_steps."""

    name = "linear"

    def _progress(self, fraction: float) -> float:
        return fraction


@dataclasses.dataclass(frozen=True)
class UniformScheduler(PrefixRatioScheduler):
    """Fixed bounds: l ~ U(low, high) at every step."""

    name = "uniform"

    low: float = key(0.05, "Fixed lower bound (uniform).")
    high: float = key(0.95, "Fixed upper bound (uniform; paper: 0.95).")

    def __post_init__(self) -> None:
        _check_ratio("low", self.low)
        _check_ratio("high", self.high)
        if self.low > self.high:
            raise ValueError(f"scheduler.low={self.low} must not exceed scheduler.high={self.high}")

    def bounds(self, step: int) -> tuple[float, float]:
        return self.low, self.high


@dataclasses.dataclass(frozen=True)
class ConstantScheduler(PrefixRatioScheduler):
    """A fixed ratio: l = value."""

    name = "constant"

    value: float = key(0.5, "Fixed ratio (constant).")

    def __post_init__(self) -> None:
        _check_ratio("value", self.value)

    def bounds(self, step: int) -> tuple[float, float]:
        return self.value, self.value


SCHEDULERS: dict[str, type[PrefixRatioScheduler]] = {
    cls.name: cls for cls in (CosineScheduler, LinearScheduler, UniformScheduler, ConstantScheduler)
}


def get_scheduler_class(name: str) -> type[PrefixRatioScheduler]:
    """The registered scheduler class ``name``; an unknown name raises ValueError naming the key."""
    if name not in SCHEDULERS:
        raise ValueError(f"scheduler.name={name!r} is not valid; expected one of {sorted(SCHEDULERS)}")
    cls = SCHEDULERS[name]
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"scheduler {name!r} ({cls.__name__}) must be a dataclass: its fields are its keys")
    return cls


def scheduler_keys(name: str) -> tuple[str, ...]:
    """The ``scheduler.*`` keys that scheduler ``name`` reads (its fields, in order; ``name`` not included)."""
    return tuple(f.name for f in dataclasses.fields(get_scheduler_class(name)))


@dataclasses.dataclass(frozen=True)
class SchedulerKey:
    """One ``scheduler.*`` key of the config group: its type, default and help text."""

    name: str
    type: Any
    default: Any
    help: str


def scheduler_key_specs(name: str) -> list[SchedulerKey]:
    """The keys of scheduler ``name`` as it declares them (its own defaults and help)."""
    cls = get_scheduler_class(name)
    hints = typing.get_type_hints(cls)
    specs = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            # The config group gives every key a value whatever the schedule, so each needs a default.
            raise TypeError(f"scheduler {name!r} ({cls.__name__}): key {f.name} needs a default")
        specs.append(SchedulerKey(f.name, hints[f.name], default, (f.metadata or {}).get("help", "")))
    return specs


def scheduler_fields() -> list[SchedulerKey]:
    """Every key of the ``scheduler`` group: ``name``, then the union of the registered schedulers' keys in
    order of first appearance. A key shared by several schedulers has one type everywhere (TypeError
    otherwise); its default and help are those of the first scheduler that declares it."""
    out = {
        "name": SchedulerKey(
            "name", str, DEFAULT_SCHEDULER, f"The schedule: one of {', '.join(SCHEDULERS)} (paper: cosine)."
        )
    }
    owner: dict[str, str] = {}
    for name in SCHEDULERS:
        for spec in scheduler_key_specs(name):
            if spec.name == "name":
                raise TypeError(f"scheduler {name!r}: 'name' is reserved for the schedule's name")
            if spec.name in out and out[spec.name].type != spec.type:
                raise TypeError(
                    f"scheduler key {spec.name} is {out[spec.name].type} in {owner[spec.name]!r} but "
                    f"{spec.type} in {name!r}: one key name, one type"
                )
            out.setdefault(spec.name, spec)
            owner.setdefault(spec.name, name)
    return list(out.values())


def build_scheduler(name: str, **kwargs) -> PrefixRatioScheduler:
    """Instantiate a scheduler by name; bad names or bounds raise ValueError naming the key."""
    return get_scheduler_class(name)(**kwargs)


def scheduler_from_config(sched_cfg) -> PrefixRatioScheduler:
    """The scheduler named by ``scheduler.name``, built from the ``scheduler.*`` keys it reads (a key the
    config lacks keeps the scheduler's default)."""
    name = sched_cfg.name
    return build_scheduler(name, **{k: sched_cfg[k] for k in scheduler_keys(name) if k in sched_cfg})


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
    import torch

    gen = torch.Generator()
    gen.manual_seed((seed * 1_000_003 + step) * 1_009 + process_index)
    return gen
