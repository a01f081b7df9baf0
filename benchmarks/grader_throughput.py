"""Items graded per second by ``prefix_rft.rewards.grader.Grader`` on real benchmark answers, and the
latency of pathological items.

python -m benchmarks.grader_throughput                 # MATH-500, 1 and nproc workers, 3 repeats
python -m benchmarks.grader_throughput --quick         # 100 items, 1 repeat (< 1 minute)
python -m benchmarks.grader_throughput --data /path/to/shared/data --workers 1,2,4

Workloads (each item is one ``(completion, reference answer)`` pair):

* ``matched``: every MATH-500 worked solution against its own answer. Most are settled by the cheap
  string comparison in the parent process; the rest go to math-verify in a worker. The fraction scored
  correct is also a check of the grader on real data (it should be close to 1).
* ``mismatched``: solution ``i`` against answer ``i+1``: nearly every item is wrong and needs
  math-verify, as most rollouts early in RL do. This is the worker pool's throughput.

Throughput excludes the pool's start-up (workers are spawned and import sympy once; that cost is
reported separately). Items go to ``grade_many`` in chunks of ``--chunk`` (one RL step's rollouts).
Without the data folder the synthetic task's solutions/answers are used instead (a note is printed).

Pathological items: answers that make sympy work for a long time. With the default settings
(``timeout=5``) math-verify's own alarm in the worker ends them; the ``outer guard`` rows use a longer
inner alarm so the parent's outer timeout has to kill the worker, and the next (normal) item then pays
for a fresh pool.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python benchmarks/grader_throughput.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import (
    REPO_ROOT,
    format_table,
    machine_info,
    median,
    output_dir,
    pyplot,
    save_figure,
    write_json,
)

NAME = "grader_throughput"
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data"
# Answers whose exact evaluation is astronomically expensive (towers of powers, huge factorials).
PATHOLOGICAL = (
    ("\\boxed{9^{9^{9^{9}}}}", "1"),
    ("\\boxed{9^{9^{9}}}", "1"),
    ("\\boxed{2^{2^{40}}}", "1"),
    ("\\boxed{(10^{10^{10}})!}", "1"),
)
NORMAL_ITEM = ("\\boxed{\\frac{1}{2}}", "0.5")  # needs math-verify (not string-equal), fast


def load_items(data_dir: Path, dataset: str, limit: int | None) -> tuple[list[tuple[str, str]], str]:
    """``(solution, answer)`` pairs from ``<data_dir>/solutions/<dataset>.jsonl``, or the synthetic task."""
    path = data_dir / "solutions" / f"{dataset}.jsonl"
    if path.is_file():
        items = []
        with open(path) as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                row = json.loads(line)
                if "solution" not in row or "answer" not in row:
                    raise ValueError(f"{path} line {line_no}: expected 'solution' and 'answer' fields")
                items.append((str(row["solution"]), str(row["answer"])))
        source = str(path)
    else:
        from prefix_rft.data.synthetic import generate_problems

        print(f"note: {path} not found; grading the synthetic task's solutions instead", file=sys.stderr)
        items = [(r["solution"], r["answer"]) for r in generate_problems(500, seed=0)]
        source = "synthetic (generate_problems(500, seed=0))"
    return (items[:limit] if limit else items), source


def workloads(items: list[tuple[str, str]]) -> dict[str, tuple[list[str], list[str]]]:
    """``matched``: each solution vs its answer; ``mismatched``: solution i vs answer i+1."""
    sols = [s for s, _ in items]
    golds = [g for _, g in items]
    return {"matched": (sols, golds), "mismatched": (sols, golds[1:] + golds[:1])}


def string_settled(completions: list[str], golds: list[str]) -> float:
    """Fraction of items the grader settles without math-verify (boxed answer string-equal to the gold)."""
    from prefix_rft.rewards.grader import extract_answer, normalize_gold

    def canon(s: str) -> str:
        return re.sub(r"\s+", "", s).rstrip(".")

    hits = 0
    for text, gold in zip(completions, golds):
        pred = extract_answer(text)
        hits += pred is not None and canon(pred) == canon(normalize_gold(gold))
    return hits / max(len(golds), 1)


def measure_throughput(
    completions: list[str], golds: list[str], workers: int, repeats: int, chunk: int, timeout: float
) -> dict[str, Any]:
    """Median items/s over ``repeats`` passes with a warm pool of ``workers`` processes."""
    from prefix_rft.rewards.grader import Grader

    grader = Grader(num_workers=workers, timeout=timeout)
    try:
        t0 = time.perf_counter()
        grader.grade(*NORMAL_ITEM)  # spawns the pool (every worker imports sympy) outside the timing
        startup = time.perf_counter() - t0
        times, scores = [], []
        for _ in range(repeats):
            scores = []
            t0 = time.perf_counter()
            for start in range(0, len(golds), chunk):
                scores += grader.grade_many(completions[start : start + chunk], golds[start : start + chunk])
            times.append(time.perf_counter() - t0)
        seconds = median(times)
        return {
            "workers": workers,
            "items": len(golds),
            "seconds_median": seconds,
            "seconds_all": times,
            "items_per_s": len(golds) / seconds,
            "ms_per_item": 1000 * seconds / len(golds),
            "fraction_correct": sum(scores) / max(len(scores), 1),
            "timeouts": grader.num_timeouts,
            "pool_startup_s": startup,
        }
    finally:
        grader.close()


def measure_pathological(
    timeout: float, inner_timeout: int | None, label: str, count: int
) -> list[dict[str, Any]]:
    """Latency of the first ``count`` pathological items (one worker, warm pool) and of the normal item
    graded right after each."""
    from prefix_rft.rewards.grader import Grader

    rows = []
    grader = Grader(num_workers=1, timeout=timeout, inner_timeout=inner_timeout)
    try:
        grader.grade(*NORMAL_ITEM)  # warm pool
        for pred, gold in PATHOLOGICAL[:count]:
            before = grader.num_timeouts
            t0 = time.perf_counter()
            score = grader.grade(pred, gold)
            latency = time.perf_counter() - t0
            killed = grader.num_timeouts > before
            t0 = time.perf_counter()
            next_score = grader.grade(*NORMAL_ITEM)
            rows.append(
                {
                    "setting": label,
                    "timeout_s": timeout,
                    "inner_timeout_s": grader.inner_timeout,
                    "completion": pred,
                    "gold": gold,
                    "latency_s": latency,
                    "score": score,
                    "worker_killed": killed,
                    "next_item_latency_s": time.perf_counter() - t0,
                    "next_item_score": next_score,
                }
            )
    finally:
        grader.close()
    return rows


def plot(result: dict[str, Any], path: Path) -> Path:
    """Items/s per workload and worker count; pathological latencies."""
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    rows = result["throughput"]
    names = sorted({r["workload"] for r in rows})
    workers = sorted({r["workers"] for r in rows})
    width = 0.8 / len(workers)
    for j, w in enumerate(workers):
        vals = [
            next((r["items_per_s"] for r in rows if r["workload"] == n and r["workers"] == w), 0)
            for n in names
        ]
        ax1.bar([i + j * width for i in range(len(names))], vals, width, label=f"{w} worker(s)")
    ax1.set_xticks([i + width * (len(workers) - 1) / 2 for i in range(len(names))], names)
    ax1.set_yscale("log")  # string-settled items are ~1000x faster than math-verify ones
    ax1.set_ylabel("items graded per second (log)")
    ax1.set_title("grader throughput")
    ax1.legend()
    patho = result["pathological"]
    labels = [f"{r['setting']}\n{r['completion'][7:-1]}" for r in patho]
    ax2.barh(range(len(patho)), [r["latency_s"] for r in patho], label="pathological item")
    ax2.barh(
        range(len(patho)),
        [r["next_item_latency_s"] for r in patho],
        left=[r["latency_s"] for r in patho],
        label="next normal item",
    )
    ax2.set_yticks(range(len(patho)), labels, fontsize=7)
    ax2.set_xlabel("seconds")
    ax2.set_title("worst-case latency")
    ax2.legend(fontsize=7)
    return save_figure(fig, path)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="100 items, 1 repeat, one pathological item, no outer-guard rows"
    )
    p.add_argument("--data", default=str(DEFAULT_DATA), help="shared data folder (default ../shared/data)")
    p.add_argument("--dataset", default="math500", help="solutions/<dataset>.jsonl (default math500)")
    p.add_argument("--limit", type=int, default=None, help="first N items (default all; quick 100)")
    p.add_argument("--workers", default=None, help="comma-separated worker counts (default 1,nproc)")
    p.add_argument("--repeats", type=int, default=None, help="passes per setting (default 3; quick 1)")
    p.add_argument("--chunk", type=int, default=128, help="items per grade_many call")
    p.add_argument("--timeout", type=float, default=5.0, help="Grader timeout (seconds per item)")
    p.add_argument(
        "--pathological",
        type=int,
        default=None,
        help=f"how many pathological items (default {len(PATHOLOGICAL)}; quick 1)",
    )
    p.add_argument("--out", default=None, help=f"output folder (default benchmarks/results/{NAME}/)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the tables, write ``grader_throughput.json`` and ``.png``."""
    ns = parse_args(argv)
    out = output_dir(NAME, ns.out, ns.quick)
    limit = ns.limit if ns.limit is not None else (100 if ns.quick else None)
    repeats = ns.repeats if ns.repeats is not None else (1 if ns.quick else 3)
    nproc = os.cpu_count() or 1
    workers = [int(w) for w in ns.workers.split(",")] if ns.workers else sorted({1, max(2, nproc)})
    start = time.perf_counter()
    items, source = load_items(Path(ns.data), ns.dataset, limit)
    throughput = []
    for name, (completions, golds) in workloads(items).items():
        settled = string_settled(completions, golds)
        for w in workers:
            row = measure_throughput(completions, golds, w, repeats, ns.chunk, ns.timeout)
            throughput.append({"workload": name, "string_settled_fraction": settled, **row})
    count = ns.pathological if ns.pathological is not None else (1 if ns.quick else len(PATHOLOGICAL))
    pathological = measure_pathological(ns.timeout, None, "default", count)
    if not ns.quick:
        # Inner alarm longer than the outer guard: the parent must kill the worker and rebuild the pool.
        pathological += measure_pathological(2.0, 60, "outer guard", count)
    result = {
        "source": source,
        "options": {
            "pathological": count,
            "limit": limit,
            "repeats": repeats,
            "workers": workers,
            "chunk": ns.chunk,
            "timeout": ns.timeout,
            "quick": ns.quick,
        },
        "throughput": throughput,
        "pathological": pathological,
        "machine": machine_info(),
    }
    table1 = format_table(
        [
            "workload",
            "workers",
            "items",
            "string-settled",
            "items/s",
            "ms/item",
            "correct",
            "timeouts",
            "pool start s",
        ],
        [
            [
                r["workload"],
                r["workers"],
                r["items"],
                r["string_settled_fraction"],
                r["items_per_s"],
                r["ms_per_item"],
                r["fraction_correct"],
                r["timeouts"],
                r["pool_startup_s"],
            ]
            for r in throughput
        ],
    )
    table2 = format_table(
        ["setting", "completion", "gold", "latency s", "score", "worker killed", "next item s"],
        [
            [
                r["setting"],
                r["completion"],
                r["gold"],
                r["latency_s"],
                r["score"],
                r["worker_killed"],
                r["next_item_latency_s"],
            ]
            for r in pathological
        ],
    )
    result["wall_s"] = time.perf_counter() - start
    result["tables"] = [table1, table2]
    write_json(out / f"{NAME}.json", result)
    plot(result, out / f"{NAME}.png")
    print(f"source: {source}\n\n{table1}\n\n{table2}\n\nwall {result['wall_s']:.0f}s; results in {out}")
    return result


if __name__ == "__main__":
    main()
