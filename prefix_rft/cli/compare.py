"""``prefix-rft-compare``: one table and one bar chart from several evaluations.

prefix-rft-compare outputs/eval/rft outputs/eval/prefix-rft --out outputs/compare
prefix-rft-compare outputs/eval/* --out outputs/compare --paper --paper-rows base,LUFFY,Prefix-RFT

Each RUN is an evaluation folder (or its summary.json) written by ``prefix-rft-eval``, or a training run
folder (its ``metrics.json``: the held-out accuracy after training is the score). Writes
``comparison.md``, ``comparison.csv`` (percentages, one row per run, columns in the paper's order
then avg) and ``comparison.png`` (grouped bars; needs matplotlib, ``--no-plot`` skips it).
``--paper`` adds the paper's published Qwen2.5-Math-7B rows (prefix_rft/eval/paper_results.py) as
reference rows. The header names each benchmark's metric as the runs measured it (avg@k / pass@1);
every bar is labelled with its value (a 0% bar too). The ``avg`` column (table, CSV and chart alike) holds
only averages over the same benchmarks as the paper's rows (or as most runs): an average over other
benchmarks is not comparable, so its cell is left empty and a note under the table gives it with the
benchmarks it covers.

Cost: when a run's training ``metrics.json`` can be found (the evaluated model is a run folder), its cost
(prefix_rft/cost/estimate.py) follows the scores: rollouts, tokens generated and trained, FLOPs, training
hours, GPU-hours. ``--x flops`` (or rollouts, tokens_generated, tokens_trained, train_hours, gpu_hours)
also plots avg against that cost (``accuracy_vs_flops.png``).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from prefix_rft.cost.report import (
    COST_AXES,
    cost_values,
    format_cost,
    metrics_for_summary,
    plot_accuracy_vs_cost,
    training_run_summary,
)
from prefix_rft.eval.paper_results import PAPER_MODEL, PAPER_RESULTS
from prefix_rft.eval.report import markdown_table, score_row
from prefix_rft.eval.suites import PAPER_COLUMNS, column_order

OUTPUT_FILES = ("comparison.md", "comparison.csv", "comparison.png")
# The paper's metrics (prefix_rft/eval/paper_results.py).
PAPER_METRICS = {"AIME24": "avg@32", "AIME25": "avg@32", "AMC": "avg@32"}


def load_summary(run: str | Path) -> tuple[str, dict, str]:
    """(label, summary, folder name) of a run folder or summary.json path."""
    path = Path(run)
    if path.is_dir() and not (path / "summary.json").is_file() and (path / "metrics.json").is_file():
        summary = training_run_summary(path)
        return summary["run_name"], summary, path.resolve().name
    if path.is_dir():
        path = path / "summary.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{run}: no summary.json (expected an evaluation folder written by prefix-rft-eval)"
        )
    summary = json.loads(path.read_text())
    if "benchmarks" not in summary or "average" not in summary:
        raise ValueError(f"{path} is not an evaluation summary (no 'benchmarks'/'average' keys)")
    folder = path.resolve().parent.name
    return summary.get("run_name") or folder, summary, folder


def build_table(
    runs: Sequence[tuple[str, dict, str]], paper_rows: Sequence[str] = ()
) -> tuple[list[str], list[tuple[str, dict[str, float | None]]], list[str]]:
    """(columns, [(label, {column: percentage})], notes) for runs (label, summary, folder) plus paper rows."""
    rows: list[tuple[str, dict[str, float | None]]] = []
    notes: list[str] = []
    labels: set[str] = set()
    names: list[str] = []
    for label, summary, folder in runs:
        unique, n = label, 2
        if unique in labels:  # two runs of one model: tell them apart by their folders
            unique = f"{label} [{folder}]"
        while unique in labels:
            unique, n = f"{label} ({n})", n + 1
        labels.add(unique)
        scores = {k: (None if v is None else 100 * v) for k, v in score_row(summary).items()}
        rows.append((unique, scores))
        names += [c for c in summary["benchmarks"]]
    for method in paper_rows:
        if method not in PAPER_RESULTS:
            raise ValueError(f"paper row {method!r} is unknown; expected one of {list(PAPER_RESULTS)}")
        rows.append((f"paper: {method}", dict(PAPER_RESULTS[method])))
    if paper_rows:
        names = list(PAPER_COLUMNS) + names
    columns = column_order(names)
    tail = ["avg"] + (["avg_ood"] if any("avg_ood" in r for _, r in rows) else [])
    return columns + tail, rows, notes


def metric_labels(runs: Sequence[tuple[str, dict, str]]) -> dict[str, str]:
    """{benchmark: the metric the runs measured it with}, e.g. ``avg@4``; ``avg@4/avg@8`` when runs differ."""
    seen: dict[str, list[str]] = {}
    for _, summary, _ in runs:
        for name, bench in summary["benchmarks"].items():
            metric = bench.get("metric") or "pass@1"
            if metric not in seen.setdefault(name, []):
                seen[name].append(metric)
    return {name: "/".join(metrics) for name, metrics in seen.items()}


def averaged_over(runs: Sequence[tuple[str, dict, str]], rows, paper_rows: Sequence[str]) -> dict[str, tuple]:
    """{row label: the benchmarks its avg covers} (rows in the order of :func:`build_table`)."""
    covered = [tuple(summary["average"].get("benchmarks", [])) for _, summary, _ in runs]
    covered += [tuple(PAPER_COLUMNS)] * len(paper_rows)
    return {label: cover for (label, _), cover in zip(rows, covered)}


def comparable_averages(coverage: dict[str, tuple], paper: bool) -> set[str]:
    """Rows whose avg belongs in one chart group: those over the paper's six benchmarks when paper rows
    are shown, else those over the benchmark set most rows share."""
    if not coverage:
        return set()
    if paper:
        target = set(PAPER_COLUMNS)
    else:
        sets = [frozenset(c) for c in coverage.values()]
        target = max(sets, key=sets.count)
    return {label for label, cover in coverage.items() if set(cover) == target}


def blank_incomparable_averages(
    rows, coverage: dict[str, tuple], comparable: set[str]
) -> tuple[list[tuple[str, dict[str, float | None]]], list[str]]:
    """``rows`` with the ``avg``/``avg_ood`` cells of rows outside ``comparable`` emptied, and one note per
    emptied row giving its own average and what it covers: one column must not hold averages over
    different benchmark sets side by side (a synthetic 71.9 next to a held-out 43.8)."""
    target = next((coverage[label] for label, _ in rows if label in comparable), ())
    out, notes = [], []
    for label, scores in rows:
        if label in comparable or all(scores.get(c) is None for c in ("avg", "avg_ood")):
            out.append((label, scores))
            continue
        own = ", ".join(coverage.get(label, ())) or "no benchmark"
        value = scores.get("avg")
        notes.append(
            f"avg of {label} ({_fmt(value) or 'n/a'}) covers {own}, not the avg column's "
            f"{', '.join(target) or 'benchmarks'}: left out of the avg column and the chart's avg group"
        )
        out.append((label, {k: v for k, v in scores.items() if k not in ("avg", "avg_ood")}))
    return out, notes


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def write_tables(
    columns: list[str],
    rows,
    notes: list[str],
    out: Path,
    paper: bool,
    metrics: dict[str, str] | None = None,
    costs: Sequence[dict] = (),
) -> list[Path]:
    """comparison.md and comparison.csv; ``metrics``: {benchmark: metric} for the header; ``costs`` ({axis:
    value} per run, in row order) adds cost columns."""
    out.mkdir(parents=True, exist_ok=True)
    header = ["run", *columns]
    body = [[label, *[_fmt(scores.get(c)) for c in columns]] for label, scores in rows]
    if any(v is not None for c in costs for v in c.values()):
        header += [COST_AXES[a][0] for a in COST_AXES]
        for i, line in enumerate(body):
            cost = costs[i] if i < len(costs) else {}
            line += [format_cost(a, cost.get(a)) for a in COST_AXES]
    with open(out / "comparison.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(body)
    measured = ", ".join(f"{c} {metrics[c]}" for c in columns if metrics and c in metrics)
    md = ["# Evaluation comparison\n", f"Scores in %. Runs: {measured or 'see each summary'}.\n"]
    if paper:
        md.append(
            f"Rows marked `paper:` are the published {PAPER_MODEL} results (AIME24, AIME25, AMC avg@32; "
            "MATH-500, Minerva, OlympiadBench pass@1).\n"
        )
    if len(header) > len(columns) + 1:
        md.append("Cost: the training run's metrics.json (FLOPs estimate: prefix_rft/cost/estimate.py).\n")
    md.append(markdown_table(header, body))
    md += [f"- {n}" for n in notes]
    (out / "comparison.md").write_text("\n".join(md) + "\n")
    return [out / "comparison.md", out / "comparison.csv"]


def chart_bars(
    columns: list[str], rows, comparable: set[str] | None = None
) -> list[tuple[str, list[float | None], list[str]]]:
    """(row label, bar heights, bar labels) per row: every score labelled with its value ("0.0" for a 0%
    bar, which would otherwise look missing); no bar for a missing score, nor in the ``avg``/``avg_ood``
    groups for rows outside ``comparable`` (their average covers other benchmarks: labelled "n/a")."""
    out = []
    for label, scores in rows:
        heights: list[float | None] = []
        texts: list[str] = []
        for c in columns:
            value = scores.get(c)
            if c in ("avg", "avg_ood") and comparable is not None and label not in comparable:
                heights.append(None)
                texts.append("n/a")
                continue
            heights.append(value)
            texts.append("" if value is None else f"{value:.1f}")
        out.append((label, heights, texts))
    return out


def plot(
    columns: list[str], rows, path: Path, metrics: dict[str, str] | None = None, comparable=None
) -> Path:
    """A grouped bar chart: one group per column (its metric under the name), one labelled bar per run."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise RuntimeError(
            f"the bar chart needs matplotlib ({err}); pip install matplotlib (or -e '.[plot]'), or pass --no-plot"
        ) from err
    width = 0.8 / max(1, len(rows))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(columns) + 0.25 * len(rows)), 4.5))
    for i, (label, heights, texts) in enumerate(chart_bars(columns, rows, comparable)):
        xs = [j + (i - (len(rows) - 1) / 2) * width for j in range(len(columns))]
        drawn = [j for j, h in enumerate(heights) if h is not None]  # missing: no bar at all
        bars = ax.bar(
            [xs[j] for j in drawn],
            [heights[j] for j in drawn],
            width,
            label=label,
            hatch="//" if label.startswith("paper:") else None,
        )
        ax.bar_label(bars, labels=[texts[j] for j in drawn], fontsize=6, padding=1, rotation=90)
        for j, text in enumerate(texts):
            if heights[j] is None and text:  # an average left out of its group says so
                ax.text(xs[j], 1, text, fontsize=6, rotation=90, ha="center", va="bottom")
    metrics = dict(metrics or {})
    if comparable is not None and any(label.startswith("paper:") for label, _ in rows):
        for c in PAPER_COLUMNS:
            metrics.setdefault(c, PAPER_METRICS.get(c, "pass@1"))
    ticks = [f"{c}\n{metrics[c]}" if c in metrics else c for c in columns]
    ax.set_xticks(range(len(columns)), ticks)
    ax.set_ylabel("score (%)")
    ax.set_ylim(0, 110)
    ax.legend(fontsize=8, ncol=2)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point (``prefix-rft-compare``)."""
    parser = argparse.ArgumentParser(prog="prefix-rft-compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="evaluation folders (or their summary.json)")
    parser.add_argument("--out", required=True, help="folder for comparison.md/.csv/.png")
    parser.add_argument("--paper", action="store_true", help=f"add the paper's published {PAPER_MODEL} rows")
    parser.add_argument(
        "--paper-rows",
        default=None,
        help=f"comma-separated paper rows (implies --paper); default all: {','.join(PAPER_RESULTS)}",
    )
    parser.add_argument("--no-plot", action="store_true", help="skip the bar chart (no matplotlib needed)")
    parser.add_argument(
        "--x",
        choices=sorted(COST_AXES),
        action="append",
        default=[],
        help="also plot avg against this cost (accuracy_vs_<x>.png); repeatable",
    )
    args = parser.parse_args(argv)
    try:
        runs = [load_summary(r) for r in args.runs]
        paper_rows: list[str] = []
        if args.paper_rows:
            paper_rows = [r.strip() for r in args.paper_rows.split(",") if r.strip()]
        elif args.paper:
            paper_rows = list(PAPER_RESULTS)
        columns, rows, notes = build_table(runs, paper_rows)
        costs = [cost_values(metrics_for_summary(summary)) for _, summary, _ in runs]
    except (FileNotFoundError, ValueError) as err:
        print(f"prefix-rft-compare: error: {err}", file=sys.stderr)
        return 2
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        print(
            f"prefix-rft-compare: error: --out {out} is a file; expected a folder for {', '.join(OUTPUT_FILES)}",
            file=sys.stderr,
        )
        return 2
    metrics = metric_labels(runs)
    coverage = averaged_over(runs, rows, paper_rows)
    comparable = comparable_averages(coverage, bool(paper_rows))
    rows, blanked = blank_incomparable_averages(rows, coverage, comparable)
    notes += blanked
    try:
        written = write_tables(columns, rows, notes, out, bool(paper_rows), metrics, costs)
    except OSError as err:  # a parent that is a file, no permission: one line, not a traceback
        print(
            f"prefix-rft-compare: error: cannot write into --out {out}: {err.strerror or err}",
            file=sys.stderr,
        )
        return 2
    try:
        if not args.no_plot:
            written.append(plot(columns, rows, out / "comparison.png", metrics, comparable))
        for axis in args.x:
            # rows start with the runs, in order; paper rows have no cost
            points = [
                (label, cost[axis], scores["avg"])
                for (label, scores), cost in zip(rows, costs)
                if cost[axis] is not None and scores.get("avg") is not None
            ]
            if len(points) < len(costs):
                print(
                    f"prefix-rft-compare: {len(costs) - len(points)} run(s) without {axis} or without a "
                    "comparable avg left out of the plot"
                )
            written.append(plot_accuracy_vs_cost(points, axis, out / f"accuracy_vs_{axis}.png"))
    except RuntimeError as err:
        print(f"prefix-rft-compare: error: {err}", file=sys.stderr)
        return 1
    print((out / "comparison.md").read_text())
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
