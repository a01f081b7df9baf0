"""One definition of the prefix scheduler's keys: each scheduler is a frozen dataclass whose fields are its
``scheduler.*`` keys, and the config group, the help page, the ignored-key notice, building from a config
and the checkpointed callback all read that definition.

A schedule registered here (``step``: no preset file, no edit of the schema) shows up in each of them.
"""

from __future__ import annotations

import dataclasses
import logging

import pytest
from hydra.core.config_store import ConfigStore
from transformers import TrainerControl, TrainerState, TrainingArguments

from prefix_rft.cli.help import help_page, scheduler_help
from prefix_rft.config.compose import compose_config, conf_dir
from prefix_rft.config.knob_notices import ignored_knobs, scheduler_knobs_read
from prefix_rft.config.scheduler_args import make_scheduler_args_class
from prefix_rft.config.validate import validate_train_config
from prefix_rft.prefix.scheduler_state import PrefixSchedulerState
from prefix_rft.prefix.schedulers import (
    SCHEDULERS,
    CosineScheduler,
    PrefixRatioScheduler,
    build_scheduler,
    key,
    scheduler_fields,
    scheduler_from_config,
    scheduler_from_state,
    scheduler_keys,
)


@dataclasses.dataclass(frozen=True)
class StepScheduler(PrefixRatioScheduler):
    """Whole-ish prefixes (l = high) until drop_at, then l ~ U(low_after, high)."""

    name = "step"

    high: float = key(0.9, "Upper bound of the prefix ratio (step).")
    low_after: float = key(0.1, "Lower bound from step drop_at on (step).")
    drop_at: int = key(10, "Step at which the lower bound drops from high to low_after (step).")

    def __post_init__(self) -> None:
        if self.low_after > self.high:
            raise ValueError(
                f"scheduler.low_after={self.low_after} must not exceed scheduler.high={self.high}"
            )

    def bounds(self, step: int) -> tuple[float, float]:
        return (self.high if step < self.drop_at else self.low_after), self.high


@pytest.fixture
def step_schedule(monkeypatch):
    """``step`` registered for one test; its Hydra node (stored on composition) is removed afterwards."""
    monkeypatch.setitem(SCHEDULERS, "step", StepScheduler)
    yield "step"
    ConfigStore.instance().repo.get("scheduler", {}).pop("step.yaml", None)


# The scheduler group before the schema was generated from the dataclasses: the same keys, in the same
# order, with the same defaults (a default run's config must not change).
BUILT_IN_GROUP = [
    ("name", str, "cosine"),
    ("high", float, 0.95),
    ("low_start", float, 0.95),
    ("low_end", float, 0.05),
    ("decay_steps", int, 500),
    ("allow_rising", bool, False),
    ("low", float, 0.05),
    ("value", float, 0.5),
]


def test_the_built_in_group_is_generated_with_its_earlier_keys_types_and_defaults():
    assert [(k.name, k.type, k.default) for k in scheduler_fields()] == BUILT_IN_GROUP
    schema = make_scheduler_args_class()
    assert [(f.name, f.type, f.default) for f in dataclasses.fields(schema)] == BUILT_IN_GROUP
    help_of = {f.name: f.metadata["help"] for f in dataclasses.fields(schema)}
    assert help_of["decay_steps"] == "Steps over which the lower bound decays (cosine/linear; paper: 500)."
    assert scheduler_keys("cosine") == ("high", "low_start", "low_end", "decay_steps", "allow_rising")
    assert scheduler_keys("uniform") == ("low", "high")
    assert scheduler_keys("constant") == ("value",)
    with pytest.raises(ValueError, match=r"scheduler.name='nope' is not valid; expected one of \['constant'"):
        scheduler_keys("nope")


def test_a_scheduler_is_a_frozen_dataclass_saved_in_its_earlier_form():
    cosine = build_scheduler("cosine", decay_steps=7)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cosine.high = 0.5
    assert cosine == CosineScheduler(decay_steps=7)
    # Falling schedules do not record allow_rising (even when it is set), rising ones record True.
    falling = build_scheduler("linear", low_start=0.9, low_end=0.1, allow_rising=True)
    assert falling.state_dict() == {
        "name": "linear",
        "high": 0.95,
        "low_start": 0.9,
        "low_end": 0.1,
        "decay_steps": 500,
    }
    rising = build_scheduler("cosine", low_start=0.1, low_end=0.5, allow_rising=True)
    assert rising.rising and rising.state_dict()["allow_rising"] is True
    assert list(build_scheduler("uniform", low=0.2, high=0.4).state_dict()) == ["name", "low", "high"]
    assert build_scheduler("constant", value=0.6).state_dict() == {"name": "constant", "value": 0.6}
    # A checkpoint written before allow_rising existed still loads its rising schedule.
    old = {"name": "cosine", "high": 0.95, "low_start": 0.1, "low_end": 0.5, "decay_steps": 500}
    assert scheduler_from_state(old) == rising
    with pytest.raises(ValueError, match=r"scheduler.low_start=0.1 < scheduler.low_end=0.5 makes"):
        build_scheduler("cosine", low_start=0.1, low_end=0.5)
    with pytest.raises(ValueError, match=r"^scheduler.value=1.5 must be in \[0, 1\]$"):
        build_scheduler("constant", value=1.5)
    with pytest.raises(ValueError, match=r"^scheduler.low=0.6 must not exceed scheduler.high=0.4$"):
        build_scheduler("uniform", low=0.6, high=0.4)


def test_a_registered_scheduler_s_keys_reach_the_schema_the_help_and_the_config(step_schedule, caplog):
    # The generated group: its new keys after the built-in ones; `high` stays one key of one type.
    fields = {f.name: f for f in dataclasses.fields(make_scheduler_args_class())}
    assert list(fields)[: len(BUILT_IN_GROUP)] == [name for name, _, _ in BUILT_IN_GROUP]
    assert list(fields)[len(BUILT_IN_GROUP) :] == ["low_after", "drop_at"]
    assert (fields["drop_at"].type, fields["drop_at"].default) == (int, 10)
    assert fields["low_after"].metadata["help"] == "Lower bound from step drop_at on (step)."
    assert fields["high"].default == 0.95  # the group's default: the first schedule's (cosine)
    assert scheduler_keys("step") == ("high", "low_after", "drop_at")

    # Its help page, with its own defaults and help (no preset file in conf/scheduler).
    page = scheduler_help(conf_dir(), "step").splitlines()
    assert page[0] == "scheduler=step (registered, no preset file):"
    assert "Schedule 'step' (StepScheduler): Whole-ish prefixes (l = high) until drop_at, then" in page[2]
    i = page.index("  high: float = 0.9")
    assert page[i + 1] == "      Upper bound of the prefix ratio (step)."
    assert "  drop_at: int = 10" in page and "  low_after: float = 0.1" in page
    assert " ".join(line.strip() for line in page[-2:]) == (
        "Not read by this schedule: scheduler.allow_rising, scheduler.decay_steps, scheduler.low, "
        "scheduler.low_end, scheduler.low_start, scheduler.value."
    )
    assert help_page(["--help", "scheduler=step"], conf_dir()) == "\n".join(page)
    # ... and the built-in pages now list the new keys as not read.
    assert "scheduler.drop_at" in scheduler_help(conf_dir(), "uniform")

    # `scheduler=step` composes (its own defaults), validates, and builds the scheduler.
    overrides = ["scheduler=step", "scheduler.drop_at=3", "scheduler.low=0.2"]
    cfg = compose_config([*overrides, "output_dir=unused"])
    assert (cfg.scheduler.name, cfg.scheduler.high, cfg.scheduler.drop_at) == ("step", 0.9, 3)
    assert scheduler_from_config(cfg.scheduler) == StepScheduler(high=0.9, low_after=0.1, drop_at=3)
    assert scheduler_knobs_read(cfg) == {"name", "high", "low_after", "drop_at"}
    assert ignored_knobs(cfg, overrides) == ["scheduler.low"]
    with caplog.at_level(logging.INFO, logger="prefix_rft.config.validate"):
        validate_train_config(cfg, overrides)
    assert "scheduler=step (it reads drop_at, high, low_after) does not read scheduler.low=0.2" in caplog.text


def test_one_key_one_type_and_every_key_needs_a_default(monkeypatch):
    @dataclasses.dataclass(frozen=True)
    class IntHigh(PrefixRatioScheduler):
        high: int = key(1, "An upper bound of another type.")

        def bounds(self, step: int) -> tuple[float, float]:
            return 0.0, float(self.high)

    monkeypatch.setitem(SCHEDULERS, "int_high", IntHigh)
    with pytest.raises(
        TypeError, match=r"scheduler key high is .*float.* in 'cosine' but .*int.* in 'int_high'"
    ):
        scheduler_fields()

    @dataclasses.dataclass(frozen=True)
    class NoDefault(PrefixRatioScheduler):
        width: float

        def bounds(self, step: int) -> tuple[float, float]:
            return 0.0, self.width

    monkeypatch.setitem(SCHEDULERS, "int_high", NoDefault)
    with pytest.raises(TypeError, match=r"scheduler 'int_high' \(NoDefault\): key width needs a default"):
        scheduler_fields()


def test_the_callback_holds_the_scheduler_it_was_given_and_restores_the_checkpoint_s():
    sched = build_scheduler("linear", decay_steps=4)
    callback = PrefixSchedulerState.from_scheduler(sched)
    assert callback.scheduler is sched  # no round trip through the saved form
    assert callback.state() == {
        "args": {"scheduler_state": sched.state_dict()},
        "attributes": {"last_step": 0},
    }
    # transformers re-creates a stateful callback from its saved args
    assert PrefixSchedulerState(**callback.state()["args"]).scheduler == sched
    with pytest.raises(TypeError, match="exactly one of scheduler and scheduler_state"):
        PrefixSchedulerState()

    args, control = TrainingArguments(output_dir="unused", report_to=[]), TrainerControl()

    def resume(callback, saved_state: dict) -> None:
        state = TrainerState(global_step=2)
        state.stateful_callbacks = {
            "PrefixSchedulerState": {"args": {"scheduler_state": saved_state}, "attributes": {"last_step": 2}}
        }
        callback.on_train_begin(args, state, control)

    # A checkpoint of a rising schedule from before allow_rising was recorded: the same schedule, kept.
    rising = build_scheduler("cosine", low_start=0.1, low_end=0.5, allow_rising=True)
    kept = PrefixSchedulerState.from_scheduler(rising)
    resume(kept, {"name": "cosine", "high": 0.95, "low_start": 0.1, "low_end": 0.5, "decay_steps": 500})
    assert kept.scheduler is rising and kept.last_step == 2
    # Another schedule in the checkpoint wins over the configured one.
    replaced = PrefixSchedulerState.from_scheduler(build_scheduler("constant", value=0.5))
    resume(replaced, sched.state_dict())
    assert replaced.scheduler == sched and replaced.scheduler_state == sched.state_dict()
