"""What the DeepSpeed tests and the scripts they launch share: the accelerate CPU shim and the launch command.

The scripts in this folder run under ``accelerate launch`` in fresh processes, so they import this module
(their folder is on ``sys.path``) rather than a pytest fixture.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[2]
SHIM_FILE = REPO_ROOT / "tests" / "scale" / "shims" / "accelerate_cpu.py"
RECIPES = REPO_ROOT / "recipes" / "accelerate_configs"


def _load_shim():
    # Loaded by path under one fixed name, so the tests and the launched scripts share one module object
    # (and one saved original method) whatever else put tests/scale on sys.path.
    name = "prefix_rft_scale_shims_accelerate_cpu"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SHIM_FILE)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


accelerate_cpu = _load_shim()


def launch_command(stage: int, *script_and_args: str, num_processes: int = 2) -> list[str]:
    """``accelerate launch`` with the shipped ZeRO recipe, its GPU count and bf16 overridden on the command
    line (float32: the CPU has no fast bf16, and the equivalence tests need float32 sums)."""
    return [
        str(Path(sys.executable).with_name("accelerate")),
        "launch",
        "--config_file",
        str(RECIPES / f"zero{stage}.yaml"),
        "--num_processes",
        str(num_processes),
        "--mixed_precision",
        "no",
        *script_and_args,
    ]


def launch_env(model_cache: Path, **extra: str) -> dict[str, str]:
    """The environment of a launch: this checkout first on the path, one thread per process."""
    env = dict(os.environ, PREFIX_RFT_CACHE=str(model_cache), OMP_NUM_THREADS="1", **extra)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("PREFIX_RFT_RUN_TIME", None)
    return env


def run_launch(command: list[str], env: dict[str, str], cwd: Path, timeout: float = 900) -> str:
    """Run a launch to the end; fail with the tail of its output when it does not exit 0."""
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(command)} exited {result.returncode}:\n{output[-6000:]}"
    return output
