"""Claiming a run folder: a fresh default folder per run, and a lock that a live run holds.

* ``${unique_run_dir:PARENT}`` (conf/config.yaml's ``hydra.run.dir``) names a new folder
  ``PARENT/<date>_<time>`` and creates it at once (``os.mkdir`` fails if another process made it first,
  so two runs started in the same second get ``..._<time>`` and ``..._<time>_2``).
* :func:`hold_run_folder` takes an exclusive lock on ``<run>/.run.lock`` for the whole run; a second
  run into the same folder is refused while the first is alive. The operating system drops the lock
  when its process ends, even by ``kill -9``, so a crashed run never leaves a stale lock behind.
* :func:`created_by_this_command` tells whether a folder was made by this command (a refusal then
  removes it instead of leaving an empty run folder behind).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from omegaconf import OmegaConf

from prefix_rft.errors import RunFolderError

RESOLVER = "unique_run_dir"
# Set by prefix-rft-train under accelerate launch / torchrun: every process uses process 0's folder name.
RUN_TIME_ENV = "PREFIX_RFT_RUN_TIME"
LOCK_FILE = ".run.lock"

# parent -> the folder this process made for it (a config may be resolved several times per run).
_made: dict[str, str] = {}
# Folders that did not exist before this command (made by the resolver or named and new).
_new_folders: set[Path] = set()


def unique_run_dir(parent: str) -> str:
    """A new, empty run folder under ``parent``, named after the current time (created here)."""
    stamp = os.environ.get(RUN_TIME_ENV)
    if stamp:
        # Several processes of one launch share the folder that process 0's stamp names.
        return os.path.join(parent, stamp)
    if parent in _made:
        return _made[parent]
    base = os.path.join(parent, datetime.now().strftime("%Y-%m-%d_%H-%M-%S"))
    os.makedirs(parent, exist_ok=True)
    attempt = 1
    while True:
        path = base if attempt == 1 else f"{base}_{attempt}"
        try:
            os.mkdir(path)
        except FileExistsError:
            attempt += 1
            continue
        _made[parent] = path
        _new_folders.add(Path(path).resolve())
        return path


def register_run_dir_resolver(new_command: bool = False) -> None:
    """Make ``${unique_run_dir:...}`` available to the configs. ``new_command``: a command starts in this
    process (the CLIs; tests run several in one process), so earlier commands' folders are forgotten."""
    if new_command:
        _made.clear()
        _new_folders.clear()
    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, unique_run_dir)


def note_folder_state(folder: str | os.PathLike[str] | None) -> None:
    """Record, before Hydra creates it, whether a folder named on the command line is new."""
    if folder is None or "${" in str(folder):
        return  # an interpolated name cannot be known here: treated as an existing folder
    path = Path(folder).expanduser().resolve()
    if not path.exists():
        _new_folders.add(path)


def created_by_this_command(folder: str | os.PathLike[str]) -> bool:
    """Whether ``folder`` did not exist before this command started."""
    return Path(folder).expanduser().resolve() in _new_folders


@contextmanager
def hold_run_folder(out_dir: Path, main_process: bool = True) -> Iterator[None]:
    """Hold an exclusive lock on ``out_dir`` for the duration of the block (process 0 of a launch only).

    Raises :class:`RunFolderError` when a live process already holds it.
    """
    try:
        import fcntl
    except ImportError:  # no advisory locks on this platform: the run folder is not guarded
        yield
        return
    if not main_process:
        yield
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / LOCK_FILE
    # Opened for appending: the holder's pid must survive a refused second run opening the file.
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise RunFolderError(
                f"run folder {out_dir} is in use by a run that is still going (pid {holder}); wait for it "
                "to finish, or start this run in another folder (hydra.run.dir=DIR)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
