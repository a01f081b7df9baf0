"""The training progress line and the run's log file: one formatter, one logger, two destinations.

Every TRL log event (each ``trainer.logging_steps`` steps, and the end-of-training summary) becomes one
line made by :func:`format_progress` and logged by the ``prefix_rft.progress`` logger, as is the
held-out accuracy line (:func:`format_heldout`). That logger reaches the console and ``train.log`` in
the run folder (Hydra's file handler under ``prefix-rft-train``, :func:`run_log` otherwise), so the
line's format is changed here and nowhere else. transformers' own progress output (a tqdm bar with
the raw log dict written under it) is replaced by these lines (:func:`install_progress_log`): a bar
redrawn on the same terminal as logged lines would interleave with them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from transformers.trainer_callback import PrinterCallback, ProgressCallback, TrainerCallback

PROGRESS_LOGGER = "prefix_rft.progress"
LOG_FILE = "train.log"

logger = logging.getLogger(PROGRESS_LOGGER)
# Progress is INFO and must reach the handlers even where the root logger is left at WARNING.
logger.setLevel(logging.INFO)


def _value(v: object) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def format_progress(logs: Mapping[str, object], step: int, max_steps: int) -> str:
    """The line of one log event: ``step N/M`` then every metric as ``key=value`` (floats: 4 digits)."""
    metrics = " ".join(f"{k}={_value(v)}" for k, v in logs.items() if k != "total_flos")
    return f"step {step}/{max_steps} {metrics}".rstrip()


def format_heldout(
    before: Mapping[str, float], after: Mapping[str, float], problems: int, samples: int
) -> str:
    """The held-out accuracy line of a run: before -> after, or only the side that was measured."""
    parts = [
        f"{name} {values['accuracy']:.3f}"
        for name, values in (("before", before), ("after", after))
        if values
    ]
    return f"held-out accuracy ({problems} problems, avg@{samples}): " + " -> ".join(parts)


class ProgressLog(TrainerCallback):
    """Logs :func:`format_progress` of every log event (main process only)."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            logger.info(format_progress(logs, state.global_step, state.max_steps))


def install_progress_log(trainer) -> None:
    """Replace the trainer's progress output (ProgressCallback / PrinterCallback) with :class:`ProgressLog`."""
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
