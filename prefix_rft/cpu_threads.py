"""OpenMP defaults that keep a CPU run at its share of shared cores.

torch's CPU kernels run on an OpenMP thread pool (one thread per core). By default GNU OpenMP lets a
thread that waits at the end of a parallel region spin for a while before it sleeps. On cores shared
with other processes, a spinning thread burns the time slice its partner needs to finish the region,
and a small model ends parallel regions at a high rate: measured on the 2-core sandbox with other jobs
running, the default job's steps took 79-87 s, and 6-12 s with waiting threads that sleep (the table in
benchmarks/README.md, "Threads on shared cores"). ``OMP_WAIT_POLICY=PASSIVE`` makes them sleep.

OpenMP reads its environment once, when torch loads it, so :func:`apply_defaults` runs when ``prefix_rft``
is imported (before any submodule imports torch); a value the user set is kept, and nothing changes if
torch was imported first.
"""

from __future__ import annotations

import os
import sys

DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE"}


def apply_defaults() -> dict[str, str]:
    """Set each of :data:`DEFAULTS` the environment lacks (only while torch is not loaded yet); returns
    what was set."""
    if "torch" in sys.modules:
        return {}
    applied = {}
    for key, value in DEFAULTS.items():
        if key not in os.environ:
            os.environ[key] = value
            applied[key] = value
    return applied
