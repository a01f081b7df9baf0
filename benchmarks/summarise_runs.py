"""Summarise the finished runs of a comparison folder, whatever seeds each variant has.

``small_scale_comparison`` runs (or resumes) a full plan; when only part of a plan could run (3 seeds for
some variants, 1 for others), this writes the same summary from the ``result.json`` files that exist:

    python -m benchmarks.summarise_runs benchmarks/results/small_scale_comparison_tiny_fork

Prints the accuracy/cost, forgetting and learning-curve tables (mean ± 95% t over the seeds each variant has; one seed:
the value alone), writes ``summary_partial.json`` and ``learning_curves.png`` into the folder.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import machine_info, write_json
from benchmarks.small_scale_comparison import (
    curve_summary,
    curve_table,
    forgetting_table,
    plot_curves,
    summarise,
    table,
)


def load_runs(folder: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The base run and every finished variant run (``runs/<variant>/seed<k>/result.json``), seed order."""
    base, runs = None, []
    for path in sorted((folder / "runs").glob("*/seed*/result.json")):
        result = json.loads(path.read_text())
        if result["spec"]["name"] == "base":
            base = result
        else:
            runs.append(result)
    if base is None:
        raise SystemExit(f"{folder}: no runs/base/seed0/result.json (run the comparison first)")
    runs.sort(key=lambda r: (r["spec"]["seed"], r["spec"]["name"]))
    return base, runs


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Print and write the summary of the finished runs in a comparison folder."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("folder", type=Path, help="a comparison's results folder (holds runs/)")
    ns = p.parse_args(argv)
    base, runs = load_runs(ns.folder)
    rows = summarise(base, runs)
    curves = curve_summary(runs)
    text = table(rows) + "\n\n" + forgetting_table(rows) + ("\n\n" + curve_table(curves) if curves else "")
    result = {
        "seeds": {r["variant"]: r["seeds"] for r in rows},
        "summary": rows,
        "curves": curves,
        "table": text,
        "machine": machine_info(),
    }
    write_json(ns.folder / "summary_partial.json", result)
    if curves:
        plot_curves(curves, ns.folder / "learning_curves.png")
    print(text)
    c = rows[0]["chance"]
    print(
        f"\nchance: best constant answer {c['chance/best_constant']:.3f}, last number {c['chance/last_number']:.3f}"
    )
    return result


if __name__ == "__main__":
    main()
