"""Fixtures of the DeepSpeed tests: each test runs real ``accelerate launch`` commands with 2 CPU processes.

The launches use the shipped recipes (recipes/accelerate_configs/zero2.yaml, zero3.yaml) with
``--num_processes 2 --mixed_precision no`` on the command line. DeepSpeed's first launch on a machine
JIT-builds a shared-memory op (~1.5 min, once).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ds_harness import launch_command, launch_env, run_launch

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def launch(model_cache):
    """``launch(stage, script, *args, cwd=...)``: run a script of this folder under accelerate launch with
    ZeRO-``stage`` on 2 processes; returns its output (fails the test with the tail when it fails)."""

    def run(stage: int, script: str, *args: str, cwd: Path, timeout: float = 900) -> str:
        command = launch_command(stage, str(HERE / script), *args)
        return run_launch(command, launch_env(model_cache), cwd, timeout)

    return run
