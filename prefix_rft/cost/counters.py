"""The running cost totals of one trainer, kept in a stateful callback so that checkpoints carry them.

Every count is a total over all processes: whoever adds to it adds a number already summed over the
processes (the same number on each), so that process 0, which writes checkpoints and ``metrics.json``,
holds the run's totals. The totals are stored in ``trainer_state.json`` through transformers'
``ExportableState`` and restored when training resumes from a checkpoint, so a resumed run reports the
cost of the training its model received: the steps up to the checkpoint plus the steps after it.
Work done after the last checkpoint of an interrupted run is not part of it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

logger = logging.getLogger(__name__)


@dataclass
class CostCounters:
    """Totals of one training stage. Token counts exclude padding."""

    # Completions sampled from the policy; a hybrid (prefix + sampled continuation) counts as one, a whole
    # demonstration placed in a group (LUFFY's off-policy row) does not: nothing is sampled for it.
    rollouts: int = 0
    # Of those, the hybrids that continue a demonstration prefix (Prefix-RFT).
    hybrid_rollouts: int = 0
    # Whole-demonstration rows of the groups (LUFFY), not sampled.
    demonstration_rows: int = 0
    # Tokens sampled from the policy (a hybrid's prefix tokens were not sampled).
    tokens_generated: int = 0
    # Tokens the generation engine reads before it samples (prompt, plus the prefix of a hybrid).
    generation_context_tokens: int = 0
    # Tokens in a training loss, by kind: sampled completion tokens, demonstration tokens inside hybrid
    # rollouts, whole-demonstration rows, and supervised (SFT) targets. A token counts each time it is in
    # a loss (twice with trainer.num_iterations=2).
    trained_on_policy_tokens: int = 0
    trained_prefix_tokens: int = 0
    trained_full_demonstration_tokens: int = 0
    trained_sft_tokens: int = 0
    # Tokens through a training forward + backward pass: the trained tokens and the prompts they follow.
    forward_backward_tokens: int = 0
    # Tokens through an extra forward pass without backward (old-policy or reference log-probs).
    forward_only_tokens: int = 0
    # Seconds spent inside trainer.train(), summed over the runs that led to this state (resumes).
    train_seconds: float = 0.0

    def add(self, **counts: float) -> None:
        """Add to named counters (an unknown name is a programming error)."""
        for name, value in counts.items():
            if name == "train_seconds" or not hasattr(self, name):
                raise KeyError(f"no cost counter {name!r}")
            setattr(self, name, getattr(self, name) + int(value))

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CostCounters:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class CostState(TrainerCallback, ExportableState):
    """Holds a trainer's :class:`CostCounters`; they travel with every checkpoint and come back on resume.

    Also times the training: ``counters.train_seconds`` is the total over resumes, ``session_seconds``
    the part spent in this process's current ``train()`` call.
    """

    def __init__(self, counters: dict[str, Any] | None = None) -> None:
        self.counters = CostCounters.from_dict(counters or {})
        self.session_seconds = 0.0
        self._base_seconds = self.counters.train_seconds
        self._started: float | None = None

    def state(self) -> dict:
        return {"args": {}, "attributes": {"counters": self.counters.as_dict()}}

    def _tick(self) -> None:
        if self._started is not None:
            self.session_seconds = time.perf_counter() - self._started
            self.counters.train_seconds = self._base_seconds + self.session_seconds

    def on_train_begin(self, args, state, control, **kwargs):
        # On resume, `state` is the checkpoint's TrainerState (transformers re-creates stateful callbacks only
        # with restore_callback_states_from_checkpoint, so this one restores itself).
        saved = (state.stateful_callbacks or {}).get(type(self).__name__)
        if isinstance(saved, list):
            saved = saved[-1] if saved else None
        if state.global_step and isinstance(saved, dict):
            restored = saved.get("attributes", {}).get("counters")
            if isinstance(restored, dict):
                self.counters = CostCounters.from_dict(restored)
                logger.info("cost counters resumed at step %d: %s", state.global_step, restored)
        self._base_seconds = self.counters.train_seconds
        self._started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self._tick()  # before the checkpoint of this step is written

    def on_train_end(self, args, state, control, **kwargs):
        self._tick()
        self._started = None


def cost_state(trainer) -> CostState | None:
    """The trainer's :class:`CostState` callback, or None when it has none."""
    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, CostState):
            return callback
    return None


def record_cost(trainer, **counts: float) -> None:
    """Add totals (already summed over processes) to the trainer's counters; no-op without a CostState."""
    state = cost_state(trainer)
    if state is not None:
        state.counters.add(**counts)
