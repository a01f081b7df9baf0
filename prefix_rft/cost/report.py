"""Cost next to accuracy for ``prefix-rft-compare``: find a run's ``metrics.json``, pick its cost columns,
and plot accuracy against one of them.

An evaluation summary names the model it evaluated (``model_path``, and ``adapter_path`` for LoRA); when
that is a training run folder (or its ``merged/`` model) the run's ``metrics.json`` holds the cost. A
checkpoint folder has no cost of its own (the run's totals describe its final model), so its row stays
blank. A training run folder can also be compared directly: its held-out accuracy (``heldout_after``) is
then the score.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

# Cost axis -> (column header, how to read it from the ``cost.total`` block of metrics.json).
COST_AXES: dict[str, tuple[str, Callable[[Mapping[str, Any]], float | None]]] = {
    "rollouts": ("rollouts", lambda t: t["rollouts"]),
    "tokens_generated": ("tokens generated", lambda t: t["tokens_generated"]),
    "tokens_trained": ("tokens trained", lambda t: t["tokens_trained"]["total"]),
    "flops": ("FLOPs", lambda t: t["flops"]["total"]),
    "train_hours": ("train hours", lambda t: t["wall_seconds"]["train"] / 3600),
    "gpu_hours": ("GPU-hours", lambda t: t["gpu_hours"]["total"]),
}
HELDOUT = "heldout"


def metrics_for_summary(summary: Mapping[str, Any]) -> dict[str, Any] | None:
    """The training ``metrics.json`` of the model an evaluation summary evaluated, or None."""
    if "training_metrics" in summary:  # a training run folder read directly
        return summary["training_metrics"]
    for key in ("adapter_path", "model_path"):
        value = summary.get(key)
        if not value:
            continue
        folder = Path(value)
        candidates = [folder, folder.parent] if folder.name == "merged" else [folder]
        for candidate in candidates:
            path = candidate / "metrics.json"
            if path.is_file():
                return json.loads(path.read_text())
    return None


def cost_values(metrics: Mapping[str, Any] | None) -> dict[str, float | None]:
    """{axis: value} from a run's metrics.json (every axis None without a cost block)."""
    total = (metrics or {}).get("cost", {}).get("total")
    if not total:
        return dict.fromkeys(COST_AXES)
    return {axis: read(total) for axis, (_, read) in COST_AXES.items()}


def training_run_summary(folder: Path) -> dict[str, Any]:
    """A training run folder as a comparison row: its held-out accuracy after training is the score."""
    metrics = json.loads((folder / "metrics.json").read_text())
    accuracy = (metrics.get("heldout_after") or {}).get("accuracy")
    if accuracy is None:
        raise ValueError(
            f"{folder}/metrics.json has no held-out accuracy (heldout_after); evaluate the run with "
            "prefix-rft-eval and compare the evaluation folder"
        )
    return {
        "run_name": metrics.get("algorithm") or folder.name,
        "benchmarks": {HELDOUT: {"score": accuracy, "ood": False}},
        "average": {"score": accuracy, "benchmarks": [HELDOUT]},
        "training_metrics": metrics,
    }


def format_cost(axis: str, value: float | None) -> str:
    """A cost value for a table: counts as integers, FLOPs in scientific notation, hours to 3 digits."""
    if value is None:
        return ""
    if axis == "flops":
        return f"{value:.3g}"
    if axis.endswith("hours"):
        return f"{value:.3g}"
    return str(int(value))


def plot_accuracy_vs_cost(
    points: Sequence[tuple[str, float, float]], axis: str, path: Path, score: str = "avg"
) -> Path:
    """A scatter of (label, cost, accuracy %) points, each labelled; log-scaled cost when it spans 100x."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise RuntimeError(
            f"the plot needs matplotlib ({err}); pip install matplotlib (or -e '.[plot]'), or pass --no-plot"
        ) from err
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for label, x, y in points:
        ax.scatter([x], [y], s=36)
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    xs = [x for _, x, _ in points]
    if xs and min(xs) > 0 and max(xs) / min(xs) >= 100:
        ax.set_xscale("log")
    ax.margins(0.15)  # room for the labels of the outermost points
    ax.set_xlabel(COST_AXES[axis][0])
    ax.set_ylabel(f"{score} (%)")
    ax.set_title(f"accuracy against {COST_AXES[axis][0]}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
