"""What ``accelerate launch`` told this process through its environment, read the way accelerate reads it.

``accelerate launch`` with a DeepSpeed or FSDP config sets ``ACCELERATE_USE_DEEPSPEED`` /
``ACCELERATE_USE_FSDP`` for each process; accelerate itself then uses the tool only when the value is
``true`` (any case). Every start-up check that asks "is this run sharded?" reads it here, so none of them
decides differently from accelerate.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

LAUNCH_TOOLS = ("DEEPSPEED", "FSDP")


def launched_with(tool: str, env: Mapping[str, str] | None = None) -> bool:
    """Whether ``accelerate launch`` runs this process with ``tool`` (``"DEEPSPEED"`` or ``"FSDP"``)."""
    if tool not in LAUNCH_TOOLS:
        raise ValueError(f"tool={tool!r}: expected one of {LAUNCH_TOOLS}")
    env = os.environ if env is None else env
    return env.get(f"ACCELERATE_USE_{tool}", "false").lower() == "true"
