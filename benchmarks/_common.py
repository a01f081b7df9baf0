"""Helpers shared by the benchmark scripts: output folders, machine details, tables, JSON, plots."""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_ROOT = REPO_ROOT / "benchmarks" / "results"
# Where a --quick run writes when no --out is given: outside the committed results (git ignores outputs/),
# so a smoke run never replaces the measured numbers.
QUICK_ROOT = REPO_ROOT / "outputs" / "benchmarks-quick"


def output_dir(name: str, out: str | None, quick: bool = False) -> Path:
    """``out`` if given, else ``benchmarks/results/<name>/`` (``outputs/benchmarks-quick/<name>/`` for a
    ``--quick`` run); created."""
    path = Path(out) if out else (QUICK_ROOT if quick else RESULTS_ROOT) / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on: cores, CPU model, load, torch/TRL versions, GPU if any."""
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    try:
        info["load_average_1_5_15"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        pass
    for pkg in ("trl", "transformers", "math_verify"):
        try:
            from importlib.metadata import version

            info[pkg] = version(pkg.replace("_", "-"))
        except Exception:  # a missing package is recorded as absent, not an error
            info[pkg] = None
    return info


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    return match.group(1).strip() if match else "unknown"


def write_json(path: Path, data: Any) -> Path:
    """Write ``data`` as indented JSON (NaN allowed, as Python's json writes it)."""
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-markdown table (so the printed output can be pasted into a README)."""

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def median(values: Sequence[float]) -> float:
    """Median, NaN for an empty sequence."""
    return statistics.median(values) if values else float("nan")


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value, NaN for none)."""
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def pyplot():
    """matplotlib's pyplot on the non-interactive Agg backend (no display on CPU boxes / CI)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> Path:
    """Lay out, write (100 dpi) and close a figure; returns ``path``."""
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    pyplot().close(fig)
    return path
