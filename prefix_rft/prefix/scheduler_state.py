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

    def __init__(self, scheduler_state: dict, last_step: int = 0) -> None:
        self.scheduler_state = dict(scheduler_state)
        self.last_step = last_step
        self.scheduler: PrefixRatioScheduler = scheduler_from_state(self.scheduler_state)

    @classmethod
    def from_scheduler(cls, scheduler: PrefixRatioScheduler) -> PrefixSchedulerState:
        return cls(scheduler.state_dict())

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
            if restored and restored != self.scheduler_state:
                logger.warning(
                    "resuming with the checkpoint's prefix scheduler %s instead of the configured %s",
                    restored,
                    self.scheduler_state,
                )
                self.scheduler_state = dict(restored)
                self.scheduler = scheduler_from_state(self.scheduler_state)
            self.last_step = saved.get("attributes", {}).get("last_step", state.global_step)
            logger.info("prefix scheduler resumed at step %d: %s", state.global_step, self.scheduler_state)

    def on_step_end(self, args, state, control, **kwargs):
        self.last_step = state.global_step
