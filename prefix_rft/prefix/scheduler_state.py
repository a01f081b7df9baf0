"""The prefix-ratio scheduler as a stateful Trainer callback, so it is saved in and restored from checkpoints.

The ratio bounds are a function of ``trainer.state.global_step``, which TRL restores on resume; this
callback additionally stores the scheduler's own configuration in ``trainer_state.json`` (through
transformers' ``ExportableState`` mechanism), so a resumed run keeps the schedule it started with
even if the command line changed, and records the last step it served.
"""

from __future__ import annotations

import logging

from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

from prefix_rft.prefix.schedulers import PrefixRatioScheduler, scheduler_from_state

logger = logging.getLogger(__name__)


class PrefixSchedulerState(TrainerCallback, ExportableState):
    """Holds the prefix-ratio scheduler; its config and last step travel with every checkpoint."""

    def __init__(
        self,
        scheduler_state: dict | None = None,
        last_step: int = 0,
        *,
        scheduler: PrefixRatioScheduler | None = None,
    ) -> None:
        """Give either the scheduler itself or ``scheduler_state``, its saved form (how transformers
        re-creates the callback from a checkpoint's arguments)."""
        if (scheduler is None) == (scheduler_state is None):
            raise TypeError("PrefixSchedulerState takes exactly one of scheduler and scheduler_state")
        self.scheduler: PrefixRatioScheduler = (
            scheduler if scheduler is not None else scheduler_from_state(scheduler_state)
        )
        self.last_step = last_step

    @classmethod
    def from_scheduler(cls, scheduler: PrefixRatioScheduler) -> PrefixSchedulerState:
        """The callback holding ``scheduler`` itself (no round trip through its saved form)."""
        return cls(scheduler=scheduler)

    @property
    def scheduler_state(self) -> dict:
        """The scheduler's saved form (:meth:`PrefixRatioScheduler.state_dict`), as checkpoints hold it."""
        return self.scheduler.state_dict()

    def state(self) -> dict:
        return {
            "args": {"scheduler_state": self.scheduler_state},
            "attributes": {"last_step": self.last_step},
        }

    def on_train_begin(self, args, state, control, **kwargs):
        # On resume, `state` is the checkpoint's TrainerState. transformers only re-creates stateful
        # callbacks when restore_callback_states_from_checkpoint is set, so restore this one ourselves.
        saved = (state.stateful_callbacks or {}).get(type(self).__name__)
        if isinstance(saved, list):
            saved = saved[-1] if saved else None
        if state.global_step and isinstance(saved, dict):
            restored = saved.get("args", {}).get("scheduler_state")
            # Compared as schedulers, not as saved dicts: an older checkpoint's form of the same schedule
            # (no allow_rising recorded) is the same schedule.
            from_checkpoint = scheduler_from_state(restored) if restored else self.scheduler
            if from_checkpoint != self.scheduler:
                logger.warning(
                    "resuming with the checkpoint's prefix scheduler %s instead of the configured %s",
                    restored,
                    self.scheduler_state,
                )
                self.scheduler = from_checkpoint
            self.last_step = saved.get("attributes", {}).get("last_step", state.global_step)
            logger.info("prefix scheduler resumed at step %d: %s", state.global_step, self.scheduler_state)

    def on_step_end(self, args, state, control, **kwargs):
        self.last_step = state.global_step
