"""The RL gate: plain RFT must measurably improve the testbed model on problems it partly solves.

python -m benchmarks.rl_gate                 # RFT on 3-step problems, seeds 0,1,2, 2 runs at a time
python -m benchmarks.rl_gate --quick         # 1 seed, 4 steps, 16 problems per level (the test suite's)

The testbed model (``builtin:tiny-warm``) solves 1-2 step problems, solves about half of the 3-step ones
(greedy 0.69, sampled at T=1 0.50) and almost none of the 4-step ones. Plain RFT (TRL's GRPOTrainer,
Dr. GRPO) trains on 3-step problems only, with the CPU-scale settings of ``conf/scale/cpu.yaml`` (8 prompts x
8 rollouts per step, lr 3e-5 constant, T=1, 64 completion tokens; why each: benchmarks/README.md). The gate passes when, on every seed, held-out 3-step accuracy
rises by more than 2 standard errors both greedy and sampled at the training temperature (T=1); the
standard error is that of the paired per-problem difference against the starting model. Levels 1, 2 and 4
are reported beside it (forgetting, transfer). Every method comparison on this testbed runs with the
settings this gate passed with, fixed before the comparison was run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import format_table, machine_info, output_dir, pyplot, save_figure, write_json
from benchmarks.testbed import job_spec, mean_ci, paired, run_jobs

NAME = "rl_gate"
GATE_LEVEL = 3
TRAIN_DATA = [
    "data.synthetic.train_min_steps=3",
    "data.synthetic.train_max_steps=3",
    "data.synthetic.num_train=4000",
]


def gate_rows(base: dict, runs: list[dict]) -> tuple[list[dict[str, Any]], bool]:
    """Per seed: every level's greedy and T=1 change against the base model (paired SE); the verdict."""
    rows, passed = [], bool(runs)
    for run in runs:
        row: dict[str, Any] = {"seed": run["spec"]["seed"], "train_s": run["train_s"]}
        for level, metrics in run["eval"].items():
            for kind, prefix in (("greedy", "greedy/"), ("t1", "")):
                delta, se = paired(
                    base["eval"][level][prefix + "per_problem"], metrics[prefix + "per_problem"]
                )
                row[f"L{level}/{kind}"] = {
                    "before": base["eval"][level][prefix + "accuracy"],
                    "after": metrics[prefix + "accuracy"],
                    "delta": delta,
                    "se": se,
                }
            row[f"L{level}/faithful"] = metrics.get("process/faithful")
        gate = [row[f"L{GATE_LEVEL}/{kind}"] for kind in ("greedy", "t1")]
        row["pass"] = all(g["delta"] > 2 * g["se"] for g in gate)
        passed = passed and row["pass"]
        rows.append(row)
    return rows, passed


def table(rows: list[dict], levels: list[str]) -> str:
    def cell(c: dict) -> str:
        return f"{c['before']:.3f} -> {c['after']:.3f} ({c['delta']:+.3f} ± {2 * c['se']:.3f})"

    headers = ["seed", f"L{GATE_LEVEL} greedy", f"L{GATE_LEVEL} T=1", "pass"]
    headers += [f"L{lv} T=1" for lv in levels if lv != str(GATE_LEVEL)]
    body = []
    for r in rows:
        line = [r["seed"], cell(r[f"L{GATE_LEVEL}/greedy"]), cell(r[f"L{GATE_LEVEL}/t1"]), r["pass"]]
        line += [cell(r[f"L{lv}/t1"]) for lv in levels if lv != str(GATE_LEVEL)]
        body.append(line)
    return format_table(headers, body)


def plot(runs: list[dict], path: Path) -> Path:
    """Training reward per step, mean over seeds with min-max band, 10-step moving average."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    curves = [[p["reward"] for p in r["reward_curve"] if "reward" in p] for r in runs]
    n = min(len(c) for c in curves) if curves else 0
    if n:
        smooth = [
            [sum(c[max(0, i - 9) : i + 1]) / len(c[max(0, i - 9) : i + 1]) for i in range(n)] for c in curves
        ]
        steps = list(range(1, n + 1))
        mean = [sum(s[i] for s in smooth) / len(smooth) for i in range(n)]
        ax.fill_between(
            steps,
            [min(s[i] for s in smooth) for i in range(n)],
            [max(s[i] for s in smooth) for i in range(n)],
            alpha=0.3,
        )
        ax.plot(steps, mean, label=f"RFT, mean of {len(curves)} seeds")
    ax.set_xlabel("step")
    ax.set_ylabel("training reward (3-step problems, T=1)")
    ax.set_title("RL gate: plain RFT on the partly solved level")
    ax.legend()
    return save_figure(fig, path)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run (or resume) the gate, print its table, write ``rl_gate.json`` and ``rl_gate.png``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="1 seed, 4 steps, 16 problems per level")
    p.add_argument("--seeds", default=None, help="comma-separated (default 0,1,2; quick 0)")
    p.add_argument("--steps", type=int, default=None, help="RL steps (default 300; quick 4)")
    p.add_argument("--problems", type=int, default=None, help="held-out problems per level (default 200)")
    p.add_argument("--gate-problems", type=int, default=None, help="held-out 3-step problems (default 400)")
    p.add_argument("--samples", type=int, default=4, help="samples per problem at T=1 (avg@k)")
    p.add_argument("--parallel", type=int, default=2, help="runs at a time, one torch thread each")
    p.add_argument("--out", default=None, help=f"output folder (default benchmarks/results/{NAME}/)")
    ns = p.parse_args(argv)
    seeds = [int(s) for s in ns.seeds.split(",")] if ns.seeds else ([0] if ns.quick else [0, 1, 2])
    steps = ns.steps or (4 if ns.quick else 300)
    problems = ns.problems or (16 if ns.quick else 200)
    levels = {1: problems, 2: problems, 3: ns.gate_problems or (problems if ns.quick else 400), 4: problems}
    out = output_dir(NAME, ns.out, ns.quick)
    overrides = ["algorithm=rft", f"trainer.max_steps={steps}"]
    if ns.quick:
        overrides.append("trainer.per_device_train_batch_size=16")
    jobs = [job_spec("base", 0, None, TRAIN_DATA, levels, ns.samples)]
    jobs += [job_spec("rft", seed, overrides, TRAIN_DATA, levels, ns.samples) for seed in seeds]
    started = time.time()
    results = run_jobs(jobs, out, ns.parallel)
    if len(results) != len(jobs):
        raise SystemExit(f"{len(jobs) - len(results)} of {len(jobs)} jobs failed; logs under {out / 'runs'}")
    base, runs = results[0], results[1:]
    rows, passed = gate_rows(base, runs)
    level_names = sorted(base["eval"])
    text = table(rows, level_names)
    deltas = {k: mean_ci([r[f"L{GATE_LEVEL}/{k}"]["delta"] for r in rows]) for k in ("greedy", "t1")}
    result = {
        "options": {"seeds": seeds, "steps": steps, "levels": levels, "samples": ns.samples},
        "overrides": overrides,
        "train_data": TRAIN_DATA,
        "passed": passed,
        "rows": rows,
        "mean_delta_ci95": deltas,
        "base_eval": {
            lv: {k: v for k, v in m.items() if "per_problem" not in k} for lv, m in base["eval"].items()
        },
        "table": text,
        "machine": machine_info(),
        "wall_s": time.time() - started,
    }
    write_json(out / f"{NAME}.json", result)
    plot(runs, out / f"{NAME}.png")
    print(f"\nRFT on {GATE_LEVEL}-step problems, {steps} steps; held-out before -> after (change ± 2 SE)\n")
    print(text)
    print(
        f"\nmean change over seeds (95% CI): greedy {deltas['greedy'][0]:+.3f} ± {deltas['greedy'][1]:.3f}, "
        f"T=1 {deltas['t1'][0]:+.3f} ± {deltas['t1'][1]:.3f}"
    )
    print(f"gate {'PASSED' if passed else 'FAILED'}; wall {result['wall_s']:.0f}s; results in {out}")
    return result


if __name__ == "__main__":
    main()
