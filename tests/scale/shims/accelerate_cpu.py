"""accelerate under DeepSpeed on a CPU: use the gloo backend (test harness only; a GPU needs none of this).

Written against accelerate 1.16.0 and DeepSpeed 0.19.8 (torch 2.13.0+cpu).

``accelerate launch`` with a DeepSpeed config starts each rank with ``LOCAL_RANK`` and
``ACCELERATE_USE_DEEPSPEED=true`` set. ``PartialState._prepare_backend`` takes the backend from the machine's
accelerator device; with none it returns backend ``None``, and ``PartialState`` then declares a single
process (``num_processes=1``, index 0 on every rank) while DeepSpeed, which picks gloo by itself, runs all
of them. Seen here: every rank of a script calling ``run_training`` took itself for the main process and
wrote the run folder's files. Seen when issue 19 was filed: a trainer without ``use_cpu`` failed
DeepSpeed's batch-size check (``train_batch_size ... 4 != 4 * 1 * 2``).

The shim: when ``_prepare_backend`` finds no backend for a DeepSpeed rank, it answers ``gloo``. Nothing else
changes: ``PartialState`` initialises DeepSpeed's communication with gloo, reads the world size from it, and
keeps the device ``cpu`` (no accelerator). ``prefix-rft-train`` does not need it (its ``share_run_time``
creates ``PartialState(cpu=True)`` first, which forms the gloo group); scripts that build a trainer
directly do, as a user's own script would.
"""

from __future__ import annotations

import os

from accelerate.state import PartialState

_ORIGINAL = PartialState._prepare_backend


def _prepare_backend_with_gloo(self, cpu: bool = False, sagemaker_dp=False, backend: str | None = None):
    found, distributed_type = _ORIGINAL(self, cpu, sagemaker_dp, backend)
    deepspeed_rank = (
        os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"
        and int(os.environ.get("LOCAL_RANK", -1)) != -1
    )
    if found is None and deepspeed_rank and not cpu:
        return "gloo", distributed_type
    return found, distributed_type


def install() -> None:
    """Patch ``PartialState._prepare_backend`` (idempotent); call before the first ``PartialState``."""
    PartialState._prepare_backend = _prepare_backend_with_gloo


def uninstall() -> None:
    """Put the original method back."""
    PartialState._prepare_backend = _ORIGINAL
