"""The package's metadata builds without setuptools deprecation warnings and carries its licence."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_metadata_builds_without_deprecation_warnings(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO_ROOT / name, src / name)
    shutil.copytree(
        REPO_ROOT / "prefix_rft", src / "prefix_rft", ignore=shutil.ignore_patterns("__pycache__")
    )
    meta = tmp_path / "meta"
    meta.mkdir()
    # What pip runs to read the metadata, with every warning shown.
    code = f"from setuptools import build_meta as b; print(b.prepare_metadata_for_build_wheel({str(meta)!r}))"
    proc = subprocess.run(
        [sys.executable, "-W", "default", "-c", code], cwd=src, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Deprecat" not in proc.stdout + proc.stderr, proc.stderr[-3000:]
    info = meta / proc.stdout.strip().splitlines()[-1]
    metadata = (info / "METADATA").read_text()
    assert "License-Expression: Apache-2.0" in metadata and "License-File: LICENSE" in metadata
    assert (info / "licenses" / "LICENSE").read_text().lstrip().startswith("Apache License")


def test_readme_says_to_activate_the_venv_before_the_first_command():
    """After `make install` the console scripts live in .venv/bin, not on PATH: the README says so first."""
    lines = (REPO_ROOT / "README.md").read_text().splitlines()
    first_command = next(i for i, line in enumerate(lines) if line.startswith("prefix-rft-"))
    activation = next(i for i, line in enumerate(lines) if ". .venv/bin/activate" in line)
    assert activation < first_command
    assert any("command not found" in line for line in lines[:first_command])
