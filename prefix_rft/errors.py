"""The errors a user fixes (config, data, model path, missing packages, run folder) and how the CLIs report them.

Every such error derives from :class:`PrefixRFTError`; its message is one line that names the key or
file and what was expected. The command-line tools print that line and exit with status 2
(:func:`report_user_errors`); anything else is a bug and keeps its traceback. ``PREFIX_RFT_DEBUG=1``
(or Hydra's ``HYDRA_FULL_ERROR=1``) shows the traceback of user errors too.

Kept free of heavy imports so that the evaluation command and the trainers can raise these errors
without loading TRL's config machinery.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

DEBUG_ENV = "PREFIX_RFT_DEBUG"


class PrefixRFTError(Exception):
    """Base of the errors caused by the user's input; the message is the one line the CLIs print."""

    # How the CLIs label the error: "prefix-rft-train: <kind>: <message>".
    kind = "error"
    # The exit status the CLIs end with (None: the caller's, 2).
    exit_code: int | None = None


class ConfigError(PrefixRFTError, ValueError):
    """A config value is invalid; the message names the key and what was expected."""

    kind = "config error"


class DataError(PrefixRFTError, ValueError):
    """The data does not match the data config; the message names the file, line, row or column."""

    kind = "data error"


class ModelLoadError(PrefixRFTError, OSError):
    """A model or tokenizer cannot be loaded from the configured path or hub id."""

    kind = "model error"


class MissingExtraError(PrefixRFTError, ImportError):
    """An optional package the configuration needs is not installed; the message gives the pip command."""

    kind = "missing package"


class RunFolderError(PrefixRFTError):
    """The run folder holds an earlier run that this command would overwrite (or cannot resume)."""

    kind = "refused"


class TrainingError(PrefixRFTError, RuntimeError):
    """Training ran but did not do what was asked (e.g. zero optimizer steps)."""

    kind = "training error"


class Interrupted(PrefixRFTError):
    """The user stopped a run or an evaluation (Ctrl-C); the message says where, and how to resume."""

    kind = "interrupted"
    # The shell's status for a process ended by SIGINT.
    exit_code = 130


class GradingError(PrefixRFTError, RuntimeError):
    """Answers could not be graded (the grading worker processes cannot run)."""

    kind = "grading error"


def one_of(key: str, value: object, allowed: Iterable[str]) -> None:
    """Raise :class:`ConfigError` unless ``value`` is one of ``allowed``."""
    allowed = list(allowed)
    if value not in allowed:
        raise ConfigError(f"{key}={value!r} is not valid; expected one of {allowed}")


def debug_requested() -> bool:
    """Whether the user asked for tracebacks of user errors (PREFIX_RFT_DEBUG=1 or HYDRA_FULL_ERROR=1)."""
    return any(os.environ.get(name, "") not in ("", "0") for name in (DEBUG_ENV, "HYDRA_FULL_ERROR"))


@contextmanager
def report_user_errors(prog: str, exit_code: int = 2) -> Iterator[None]:
    """Turn a :class:`PrefixRFTError` into one line on stderr and ``SystemExit(exit_code)``.

    With a debug flag set the error propagates (and its traceback is shown).
    """
    try:
        yield
    except PrefixRFTError as err:
        if debug_requested():
            raise
        message = " ".join(str(err).split("\n"))  # one line, whatever the message holds
        print(f"{prog}: {err.kind}: {message}", file=sys.stderr)
        raise SystemExit(err.exit_code if err.exit_code is not None else exit_code) from None
