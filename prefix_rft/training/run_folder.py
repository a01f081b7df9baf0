"""The run folder across reruns: which checkpoint to resume, when a rerun would overwrite an earlier run,
and the held-out accuracy measured before training (kept so that a resumed run still reports it).

Resuming is asked for with ``resume_from_checkpoint=latest`` (or a checkpoint path); TRL's spelling
``trainer.resume_from_checkpoint`` means the same. A folder that already holds checkpoints or a
finished run is never trained into from scratch: without a resume request the run is refused with
the command that resumes it.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from prefix_rft.errors import ConfigError, RunFolderError

LATEST = "latest"
# Written into a stage folder when the stage has finished (a rerun loads its model instead).
STAGE_DONE = "stage_complete.json"
METRICS = "metrics.json"
HELDOUT_BEFORE = "heldout_before.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
# The file the Trainer writes last into a checkpoint.
TRAINER_STATE = "trainer_state.json"
logger = logging.getLogger("prefix_rft.train")


def _trl_value(group: DictConfig, key: str) -> str | None:
    if key in group and not OmegaConf.is_missing(group, key):
        value = group[key]
        return None if value is None else str(value)
    return None


def resume_request(cfg: DictConfig) -> str | None:
    """What the run was asked to resume from: ``resume_from_checkpoint``, or TRL's spelling
    ``trainer.resume_from_checkpoint`` / ``sft_trainer.resume_from_checkpoint``; None = start fresh.
    Two different values are a :class:`ConfigError`."""
    given = {
        "resume_from_checkpoint": cfg.resume_from_checkpoint,
        "trainer.resume_from_checkpoint": _trl_value(cfg.trainer, "resume_from_checkpoint"),
        "sft_trainer.resume_from_checkpoint": _trl_value(cfg.sft_trainer, "resume_from_checkpoint"),
    }
    given = {k: str(v) for k, v in given.items() if v not in (None, "")}
    if len(set(given.values())) > 1:
        raise ConfigError(
            "resume_from_checkpoint is set twice with different values ("
            + ", ".join(f"{k}={v}" for k, v in given.items())
            + "); set only resume_from_checkpoint"
        )
    return next(iter(given.values()), None)


def checkpoints(folder: Path) -> list[Path]:
    """``checkpoint-<step>`` folders of ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    found = [
        (int(m.group(1)), p) for p in folder.iterdir() if p.is_dir() and (m := _CHECKPOINT.match(p.name))
    ]
    return [p for _, p in sorted(found)]


def is_complete_checkpoint(folder: Path) -> bool:
    """Whether a checkpoint was written to the end: the Trainer writes ``trainer_state.json`` last (after the
    weights and, under DeepSpeed, every process's shards), so a run killed while saving leaves none."""
    return (folder / TRAINER_STATE).is_file()


def resolve_resume(value: str | None, folder: Path) -> str | None:
    """``latest`` -> the newest complete checkpoint in ``folder`` (None if there is none yet); a path is
    checked.

    The checkpoint must be intact (:mod:`.checkpoint_integrity`): a damaged one is a
    :class:`RunFolderError` naming the file and the newest intact checkpoint to resume from instead.
    """
    if value is None:
        return None
    if value == LATEST:
        found = checkpoints(folder)
        complete = [p for p in found if is_complete_checkpoint(p)]
        for partial in found[found.index(complete[-1]) + 1 if complete else 0 :]:
            # A run killed while saving (a DeepSpeed save of many shards takes a while) left it half-written.
            logger.warning("skipping %s: not written to the end (no %s)", partial, TRAINER_STATE)
        if not complete:
            return None
        chosen = complete[-1]
    else:
        chosen = Path(value)
        if not chosen.is_dir():
            raise ConfigError(
                f"resume_from_checkpoint={value} is not a checkpoint folder; expected 'latest' or a "
                "checkpoint-<step> folder of an earlier run"
            )
        found = checkpoints(chosen.parent)
    check_checkpoint_intact(chosen, [p for p in found if p.resolve() != chosen.resolve()])
    return str(chosen) if value == LATEST else value


def check_checkpoint_intact(checkpoint: Path, others: list[Path]) -> None:
    """Refuse a damaged ``checkpoint``, naming the file and the newest intact one of ``others`` (the other
    checkpoints of its run, oldest first)."""
    from prefix_rft.training.checkpoint_integrity import damage, newest_intact

    problem = damage(checkpoint)
    if problem is None:
        return
    intact = newest_intact([p for p in others if _step(p) < _step(checkpoint)])
    if intact is None:
        instead = "no older intact checkpoint is left; start a new run in another folder (hydra.run.dir=DIR)"
    else:
        instead = (
            f"the newest intact checkpoint is {intact}: move {checkpoint.name} aside and resume with "
            f"resume_from_checkpoint=latest, or resume_from_checkpoint={intact}"
        )
    raise RunFolderError(f"checkpoint {checkpoint} is damaged ({problem}); {instead}")


def _step(checkpoint: Path) -> int:
    match = _CHECKPOINT.match(checkpoint.name)
    return int(match.group(1)) if match else 1 << 62


def check_run_folder(out_dir: Path, stage_dirs: Sequence[Path], resume: str | None) -> None:
    """Refuse to train into a folder that holds an earlier run unless resuming it.

    Without a resume request, checkpoints, a finished stage or a finished run (``metrics.json``) in
    the folder are a :class:`RunFolderError` that says how to resume or where else to run. Resuming a
    finished run that kept no checkpoint would retrain it from scratch: refused too.
    """
    held = [p for d in stage_dirs for p in checkpoints(d)]
    held += [d / STAGE_DONE for d in stage_dirs if (d / STAGE_DONE).is_file()]
    finished = (out_dir / METRICS).is_file()
    if finished:
        held.append(out_dir / METRICS)
    if resume is None and held:
        shown = ", ".join(str(p.relative_to(out_dir)) for p in held[:3]) + (" ..." if len(held) > 3 else "")
        raise RunFolderError(
            f"run folder {out_dir} already holds a run ({shown}); resume it with "
            "resume_from_checkpoint=latest (add trainer.max_steps=N to train further), or start a new "
            "run in another folder (hydra.run.dir=DIR)"
        )
    if resume == LATEST and finished and not checkpoints(stage_dirs[-1]):
        raise RunFolderError(
            f"run folder {out_dir} holds a finished run with no checkpoint to resume from; start a new "
            "run in another folder (hydra.run.dir=DIR)"
        )


def checkpoint_step(checkpoint: str | Path) -> int | None:
    """The optimizer step a checkpoint was saved at (its ``trainer_state.json``), None if unreadable."""
    try:
        return int(json.loads((Path(checkpoint) / "trainer_state.json").read_text())["global_step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_not_finished(out_dir: Path, checkpoint: str | None, max_steps: int, key: str) -> None:
    """Refuse to resume a finished run (``metrics.json``) whose checkpoint already reached ``max_steps``:
    TRL would train one step past it. Extending it (a larger ``key``) is the way on."""
    if checkpoint is None or max_steps < 1 or not (out_dir / METRICS).is_file():
        return
    step = checkpoint_step(checkpoint)
    if step is not None and step >= max_steps:
        raise RunFolderError(
            f"the run in {out_dir} already finished at step {step} ({Path(checkpoint).name}) and "
            f"{key}={max_steps}: nothing to resume; extend it with {key}=N (N > {step})"
        )


def load_heldout_before(out_dir: Path, settings: dict[str, Any]) -> dict[str, float] | None:
    """The starting model's held-out accuracy as :func:`save_heldout_before` stored it, if it was measured
    with the same ``settings`` (model, problems, samples, ...); None otherwise."""
    path = out_dir / HELDOUT_BEFORE
    if not path.is_file():
        return None
    stored = json.loads(path.read_text())
    return stored.get("heldout_before") if stored.get("settings") == settings else None


def save_heldout_before(out_dir: Path, values: dict[str, float], settings: dict[str, Any]) -> None:
    """Keep the starting model's held-out accuracy and what it was measured with in the run folder
    (read back when the run resumes: the model the run started from is gone by then)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {"settings": settings, "heldout_before": values}
    (out_dir / HELDOUT_BEFORE).write_text(json.dumps(data, indent=2))


def intact_alternative(folder: Path) -> str:
    """Where to turn instead of the damaged model ``folder``: the newest intact checkpoint of its run
    (its sibling ``checkpoint-<step>`` folders, or its own when it is a run folder)."""
    from prefix_rft.training.checkpoint_integrity import newest_intact

    folder = Path(folder)
    is_checkpoint = folder.name.startswith("checkpoint-")
    found = [
        p for p in checkpoints(folder.parent if is_checkpoint else folder) if p.resolve() != folder.resolve()
    ]
    intact = newest_intact(found)
    if intact is None:
        return "no intact checkpoint of its run was found beside it"
    return f"the newest intact checkpoint of its run is {intact}"
