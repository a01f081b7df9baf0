"""OpenMP's wait policy is set before torch loads, so torch's waiting threads sleep on shared cores
(prefix_rft/cpu_threads.py); a value the user set is kept. Checked in fresh interpreters: OpenMP reads
its environment once per process."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = (
    "import os, prefix_rft; print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in __import__('sys').modules)"
)


def run(code: str, **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    proc = subprocess.run(
        [sys.executable, "-c", code], env={**base, **env}, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip()


def test_importing_prefix_rft_sets_a_passive_wait_policy_before_torch():
    assert run(PROBE) == "PASSIVE False"  # set, and torch not loaded by the package import


def test_a_wait_policy_the_user_set_is_kept():
    assert run(PROBE, OMP_WAIT_POLICY="ACTIVE") == "ACTIVE False"


def test_nothing_changes_once_torch_is_loaded():
    # (a stand-in module: the check is whether torch is in sys.modules, and a real import is slow)
    code = "import os, sys; sys.modules['torch'] = sys; import prefix_rft; print(os.environ.get('OMP_WAIT_POLICY'))"
    assert run(code) == "None"


def test_console_scripts_import_the_package_first():
    # Every console script's module lives in prefix_rft, so the package __init__ runs before torch loads.
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    block = text.split("[project.scripts]", 1)[1].split("\n[", 1)[0]
    targets = re.findall(r'=\s*"([^"]+)"', block)
    assert targets and all(t.startswith("prefix_rft.") for t in targets)
