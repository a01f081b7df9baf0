"""Summaries of an evaluation: per-benchmark scores, the unweighted average, and their files.

``summary.json`` keeps fractions in [0, 1]; ``summary.csv`` and ``summary.md`` show percentages with
one decimal, like the paper's tables, in the paper's column order (AIME24, AIME25, AMC, MATH-500,
Minerva, OlympiadBench, then any other benchmark, then avg). A benchmark's *score* is its mean
accuracy over samples (avg@k for AIME/AMC with k = 32, pass@1 for the others); *avg* is the
unweighted mean of the in-distribution scores, out-of-distribution ones (ARC-c, GPQA-diamond,
MMLU-Pro) are averaged apart as *avg_ood*.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from prefix_rft.eval.metrics import aggregate_benchmark, unweighted_average
from prefix_rft.eval.suites import column_order, get_spec

SUMMARY_FILES = ("summary.json", "summary.csv", "summary.md")


def summarize(
    rows: Iterable[dict],
    plan: Mapping[str, tuple[list[str], int]],
    ks: Iterable[int] = (1,),
    meta: Mapping | None = None,
) -> dict:
    """The summary of sample ``rows`` ({benchmark, id, sample, correct, ...}).

    ``plan``: {benchmark: (item ids, samples per item k)}; only rows of planned items with a sample
    index below k count, so a run that was resumed with a smaller k or fewer items is summarised
    exactly as configured. Duplicate rows (same benchmark, id, sample) count once.
    """
    ks = sorted(set(ks))
    per_bench: dict[str, dict[str, dict[int, bool]]] = {
        b: {i: {} for i in ids} for b, (ids, _) in plan.items()
    }
    for row in rows:
        items = per_bench.get(row["benchmark"])
        if items is None or row["id"] not in items or row["sample"] >= plan[row["benchmark"]][1]:
            continue
        items[row["id"]].setdefault(int(row["sample"]), bool(row["correct"]))
    benchmarks = {}
    for name in column_order(plan):
        ids, k = plan[name]
        samples = {i: list(s.values()) for i, s in per_bench[name].items() if s}
        stats = aggregate_benchmark(samples, ks)
        spec = get_spec(name)
        benchmarks[name] = {
            "metric": f"avg@{k}" if k > 1 else "pass@1",
            "score": stats["accuracy"],
            **stats,
            "expected_items": len(ids),
            "expected_samples": len(ids) * k,
            "complete": stats["n_samples"] == len(ids) * k,
            "ood": spec.ood,
        }
    ind = {b: v["score"] for b, v in benchmarks.items() if not v["ood"]}
    ood = {b: v["score"] for b, v in benchmarks.items() if v["ood"]}
    summary = {
        **dict(meta or {}),
        "columns": list(benchmarks),
        "benchmarks": benchmarks,
        "average": {"score": unweighted_average(ind), "benchmarks": list(ind)},
    }
    if ood:
        summary["average_ood"] = {"score": unweighted_average(ood), "benchmarks": list(ood)}
    return summary


def pct(value: float | None) -> str:
    """A fraction as a percentage with one decimal ("" for missing)."""
    return "" if value is None else f"{100 * value:.1f}"


def score_row(summary: Mapping) -> dict[str, float | None]:
    """{column: score fraction} of a summary in column order, with "avg" (and "avg_ood") last."""
    row = {name: b["score"] for name, b in summary["benchmarks"].items()}
    row["avg"] = summary["average"]["score"]
    if "average_ood" in summary:
        row["avg_ood"] = summary["average_ood"]["score"]
    return row


def _detail_rows(summary: Mapping) -> tuple[list[str], list[list[str]]]:
    ks = sorted(
        {int(key[5:]) for b in summary["benchmarks"].values() for key in b if key.startswith("pass@")}
    )
    header = [
        "benchmark",
        "metric",
        "score",
        *[f"pass@{k}" for k in ks],
        "n_items",
        "n_samples",
        "samples_per_item",
    ]
    rows = []
    for name, b in summary["benchmarks"].items():
        rows.append(
            [name, b["metric"], pct(b["score"]), *[pct(b.get(f"pass@{k}")) for k in ks]]
            + [str(b["n_items"]), str(b["n_samples"]), str(b["samples_per_item"])]
        )
    rows.append(["avg", "unweighted mean", pct(summary["average"]["score"])] + [""] * (len(header) - 3))
    if "average_ood" in summary:
        rows.append(
            ["avg_ood", "unweighted mean", pct(summary["average_ood"]["score"])] + [""] * (len(header) - 3)
        )
    return header, rows


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_summary(summary: Mapping, out_dir: str | Path) -> list[Path]:
    """Write summary.json, summary.csv (one row per benchmark, percentages) and summary.md."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / name for name in SUMMARY_FILES]
    paths[0].write_text(json.dumps(summary, indent=2) + "\n")
    header, rows = _detail_rows(summary)
    with open(paths[1], "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    scores = score_row(summary)
    name = summary.get("run_name") or "run"
    md = [f"# Evaluation: {name}\n"]
    settings = summary.get("settings") or {}
    if summary.get("model_path"):
        md.append(
            f"model: `{summary['model_path']}`"
            + (f" + adapter `{summary['adapter_path']}`" if summary.get("adapter_path") else "")
        )
    if settings:
        md.append("settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    md.append("")
    md.append(markdown_table(["run", *scores], [[name, *[pct(v) for v in scores.values()]]]))
    md.append(markdown_table(header, rows))
    incomplete = [b for b, v in summary["benchmarks"].items() if not v["complete"]]
    if incomplete:
        md.append(f"Incomplete (fewer samples than planned; resume the run): {', '.join(incomplete)}\n")
    paths[2].write_text("\n".join(md))
    return paths
