"""The training progress line and the run's log file: one formatter, one logger, two destinations.

Every TRL log event (each ``trainer.logging_steps`` steps, and the end-of-training summary) becomes one
short line made by :func:`format_progress` - the step, the reward (split into on-policy and hybrid
rollouts where a method mixes them), the prefix ratio, the loss and the step time - logged by the
``prefix_rft.progress`` logger, as are the held-out accuracy lines. That logger reaches the console and
``train.log`` in the run folder (Hydra's file handler under ``prefix-rft-train``, :func:`run_log`
otherwise), so the line's format is changed here and nowhere else. Every metric of every step stays in
``log_history.jsonl`` and goes to ``trainer.report_to``. transformers' own progress output (a tqdm bar
with the raw log dict written under it) is replaced by these lines (:func:`install_progress_log`): a bar
redrawn on the same terminal as logged lines would interleave with them.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from transformers.trainer_callback import PrinterCallback, ProgressCallback, TrainerCallback

from prefix_rft.training.engine_gap import LOGPROB_GAP, format_gap, install_logprob_gap

PROGRESS_LOGGER = "prefix_rft.progress"
LOG_FILE = "train.log"

logger = logging.getLogger(PROGRESS_LOGGER)
# Progress is INFO and must reach the handlers even where the root logger is left at WARNING.
logger.setLevel(logging.INFO)


def format_progress(logs: Mapping[str, object], step: int, max_steps: int, step_seconds: float | None) -> str:
    """One log event as a short line, e.g.
    ``step 40/120 | reward 0.578 (on-policy 0.518, hybrid 1.000) | prefix ratio 0.84 | loss 0.0192 | 2.31 s/step``;
    with vLLM generating, ``| logprob gap 0.0031`` (engine vs trainer log-probs) comes before the time.

    Parts whose metric the event lacks are left out (an SFT step has no reward); the end-of-training event
    becomes ``done: N steps in S s``.
    """
    if "train_runtime" in logs:
        return f"done: {step} steps in {float(logs['train_runtime']):.0f} s"
    parts = [f"step {step}/{max_steps}"]
    if "reward" in logs:
        text = f"reward {float(logs['reward']):.3f}"
        split = [
            f"{name} {float(logs[key]):.3f}"
            for name, key in (("on-policy", "rewards/on_policy_mean"), ("hybrid", "rewards/hybrid_mean"))
            if key in logs
        ]
        parts.append(text + (f" ({', '.join(split)})" if split else ""))
    if "prefix/ratio_mean" in logs and logs.get("prefix/hybrid_fraction", 0):
        parts.append(f"prefix ratio {float(logs['prefix/ratio_mean']):.2f}")
    if "loss" in logs:
        parts.append(f"loss {float(logs['loss']):.4g}")
    if LOGPROB_GAP in logs:
        # Only when an engine (vLLM) generated: its log-probs vs the trainer's (see engine_gap.py).
        parts.append(f"logprob gap {format_gap(float(logs[LOGPROB_GAP]))}")
    seconds = logs.get("step_time", step_seconds)
    if seconds is not None:
        parts.append(f"{float(seconds):.2f} s/step")
    return " | ".join(parts)


class ConsoleFormatter(logging.Formatter):
    """Console lines: the time and the message; warnings and errors also name their level and logger."""

    def __init__(self) -> None:
        super().__init__(datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        where = f"{record.levelname} {record.name}: " if record.levelno >= logging.WARNING else ""
        return f"[{self.formatTime(record, self.datefmt)}] {where}{record.getMessage()}" + (
            "\n" + self.formatException(record.exc_info) if record.exc_info else ""
        )


class ProgressLog(TrainerCallback):
    """Logs :func:`format_progress` of every log event (main process only)."""

    def __init__(self) -> None:
        self._last: tuple[float, int] | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self._last = (time.perf_counter(), state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        now = time.perf_counter()
        seconds = None
        if self._last is not None and state.global_step > self._last[1]:
            seconds = (now - self._last[0]) / (state.global_step - self._last[1])
        self._last = (now, state.global_step)
        if state.is_world_process_zero and logs:
            logger.info(format_progress(logs, state.global_step, state.max_steps, seconds))


def install_progress_log(trainer) -> None:
    """Replace the trainer's progress output (ProgressCallback / PrinterCallback) with :class:`ProgressLog`,
    and make a trainer that generates with vLLM log the engine's log-prob gap (shown in the line)."""
    install_logprob_gap(trainer)
    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(ProgressLog())


@contextmanager
def run_log(out_dir: Path, main_process: bool = True) -> Iterator[None]:
    """Make sure the run's log records reach ``<out_dir>/train.log`` and the progress lines the console.

    Under ``prefix-rft-train`` Hydra's handlers already do both (its log file is ``train.log`` in the
    run folder); called as a library, a file handler (and, with no console handler, a plain one for the
    progress lines) is added for the duration of the run.
    """
    root = logging.getLogger()
    path = (Path(out_dir) / LOG_FILE).resolve()
    added: list[tuple[logging.Logger, logging.Handler]] = []
    has_file = any(
        isinstance(h, logging.FileHandler) and Path(h.baseFilename).resolve() == path for h in root.handlers
    )
    if main_process and not has_file:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
        root.addHandler(handler)
        added.append((root, handler))
    has_console = any(
        isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler) for h in root.handlers
    )
    if main_process and not has_console:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        added.append((logger, handler))
    try:
        yield
    finally:
        for owner, handler in added:
            owner.removeHandler(handler)
            handler.close()
