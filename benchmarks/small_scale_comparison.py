"""The paper's comparison at CPU scale: every algorithm and the ablations, on problems beyond the model's reach.

python -m benchmarks.small_scale_comparison            # 11 algorithms + 6 ablations, seeds 0,1,2, 2 runs at a time
python -m benchmarks.small_scale_comparison --variants all   # + SFT to convergence and the 500-step runs (~+2.5 h)
python -m benchmarks.small_scale_comparison --quick    # 1 seed, rft + prefix_rft, 4 steps (the test suite's)
python -m benchmarks.small_scale_comparison --variants rft,prefix_rft --seeds 0,1,2,3,4
python -m benchmarks.small_scale_comparison --variants pope   # measures POPE's prefixes first (~25 min)
python -m benchmarks.small_scale_comparison --model builtin:tiny-fork   # the planned run on the second testbed

The regime is the paper's: the testbed model (``builtin:tiny-warm``) never writes the 4-step chain
(faithful working 0 on 4-step problems; its ~6% right answers there are near-miss guesses), so on-policy
RL on 4-step problems sees almost no reward, while every problem comes with a worked 4-step demonstration.
All runs train on the same 4000 four-step problems with the settings the RL gate passed with
(``conf/scale/cpu.yaml``, checked by ``benchmarks/rl_gate.py``: 8 prompts x 8 rollouts per step, lr 3e-5
constant, T=1, Dr. GRPO, 64 completion tokens), for the same number of optimizer steps and prompts per step
(SFT: 8 demonstrations per step; SFT->RFT:
half the steps each); Prefix-RFT's cosine scheduler decays over the whole run. These settings were fixed
before any comparison run was made and are not tuned per method.

Reported per variant (mean over seeds with a 95% t-interval): held-out accuracy on the trained level (4 steps)
greedy and at T=1 (avg@4), on the easier levels 1-3 (forgetting), the share of faithful working and of right
answers with wrong working (shortcuts), the chance baselines, training-reward curves with seed bands (PNG), and
the cost of each method from its ``metrics.json``: rollouts sampled, tokens trained on by kind (on-policy,
demonstration prefix, whole demonstration, SFT), FLOPs estimate and wall time.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import (
    REPO_ROOT,
    format_table,
    machine_info,
    output_dir,
    pyplot,
    save_figure,
    write_json,
)
from benchmarks.testbed import BASE_OVERRIDES, MODEL, job_spec, mean_ci, run_jobs, single_stage_kind
from prefix_rft.algorithms import ALGORITHMS as REGISTRY

NAME = "small_scale_comparison"
TRAINED_LEVEL = 4
TRAIN_DATA = [
    "data.synthetic.train_min_steps=4",
    "data.synthetic.train_max_steps=4",
    "data.synthetic.num_train=4000",
]
# conf/scale/cpu.yaml: 64 rollouts per step = 8 prompts x 8 (SFT gets as many demonstrations per step).
PROMPTS_PER_STEP = 8
# Extra overrides of every algorithm with a stage of this kind: SFT sees as many demonstrations per step.
STAGE_OVERRIDES: dict[str, list[str]] = {
    "sft": [f"sft_trainer.per_device_train_batch_size={PROMPTS_PER_STEP}"]
}
# Knobs counted in optimizer steps (CHORD's mu schedule; official example: warm-up 200, cosine decay 400) keep
# their shape over the run, as Prefix-RFT's scheduler spans the run: warm-up a third, decay the rest.
STEP_KNOBS: dict[str, Callable[[int], int]] = {
    "mu_warmup_steps": lambda steps: steps // 3,
    "mu_decay_steps": lambda steps: steps - steps // 3,
}
# One plain variant per registered algorithm, in registry order.
ALGORITHMS: dict[str, list[str]] = {
    name: [f"algorithm={name}", *(o for kind in entry.stages for o in STAGE_OVERRIDES.get(kind, []))]
    for name, entry in REGISTRY.items()
}
# Each is Prefix-RFT with one knob changed (the paper's ablations).
ABLATIONS: dict[str, list[str]] = {
    "update_all": ["algorithm=prefix_rft", "algorithm.prefix_update=all"],
    "update_none": ["algorithm=prefix_rft", "algorithm.prefix_update=none"],
    "update_random": ["algorithm=prefix_rft", "algorithm.prefix_update=random"],
    "sched_uniform": ["algorithm=prefix_rft", "scheduler=uniform"],
    "sched_constant": ["algorithm=prefix_rft", "scheduler=constant"],
    "num_prefixed_2": ["algorithm=prefix_rft", "algorithm.num_prefixed=2"],
}
# SFT run to convergence, as the re-examination (arXiv 2604.23747) runs it: 3 epochs over the 4,000
# demonstrations (1,500 steps of 8), then, for the staged one, the same 120 RL steps as every RL method.
# Added after the equal-budget runs showed SFT far from converged at 120 steps (its loss still ~0.9 per token
# after 17 of them): a baseline is only as good as its training, so both are reported.
SFT_TO_CONVERGENCE: dict[str, list[str]] = {
    "sft_3ep": [*ALGORITHMS["sft"], "sft_trainer.max_steps=1500"],
    "sft_3ep_then_rft": [*ALGORITHMS["sft_then_rft"], "sft_trainer.max_steps=1500"],
}
# The core comparison at the paper's scheduler horizon (500 steps), decided before any 500-step result: is
# 120 steps simply too short for the demonstrations to reach the on-policy rollouts? Each names the plain
# algorithm or ablation it lengthens; update_none_500 is the third of the variants that separate at 120
# steps on tiny-fork (issue 20's longer horizon).
LONGER: dict[str, tuple[str, int]] = {
    "rft_500": ("rft", 500),
    "luffy_500": ("luffy", 500),
    "prefix_rft_500": ("prefix_rft", 500),
    "update_none_500": ("update_none", 500),
}
# POPE's selection made concrete (arXiv 2601.18779, read through secondary summaries): only groups whose
# unguided rollouts all fail are guided, each problem with the shortest demonstration prefix after which the
# base model solved it once in 8 samples, prefixes tried shortest first up to a quarter of the solution.
# The grid is ours (the published one was not readable here). Measured once with the base model on the
# training problems (``prefix-rft-pass-rates --prefix-ratios``, same template, temperature and budget).
POPE_RATIOS = (0.0625, 0.125, 0.1875, 0.25)
POPE_FILE = "pope_prefix_ratios.jsonl"
POPE_COUNTS = "pope_prefix_counts.json"
PREPARED: dict[str, list[str]] = {
    "pope": ["algorithm=prefix_in_prompt", "algorithm.guide=failed"],
}
# The run planned on builtin:tiny-fork (issue 20), fixed with its predictions (benchmarks/README.md) before any
# run: the same 120 steps and 3 seeds, with held-out 4-step curves every CURVE_EVERY steps.
FORK_PLAN = (
    "sft",
    "sft_3ep",
    "sft_3ep_then_rft",
    "rft",
    "luffy",
    "chord",
    "pope",
    "prefix_rft",
    "update_none",
    "update_all",
    "update_random",
    "sched_uniform",
)
CURVE_EVERY = 20
CURVE_POINTS_SFT = 6  # SFT stages longer than the RL budget are sampled at this many points
CURVE_PROBLEMS, CURVE_SAMPLES = 100, 4
VARIANTS = {
    **ALGORITHMS,
    **PREPARED,
    **ABLATIONS,
    **SFT_TO_CONVERGENCE,
    **{k: {**ALGORITHMS, **ABLATIONS}[v] for k, (v, _) in LONGER.items()},
}


def variant_overrides(name: str, steps: int, out: Path | None = None) -> list[str]:
    """Hydra overrides of one variant at a budget of ``steps`` optimizer steps (LONGER variants: their own);
    ``out``: the results folder that holds the prepared files (POPE's ratios)."""
    steps = LONGER[name][1] if name in LONGER else steps
    ov = [*VARIANTS[name], f"trainer.max_steps={steps}", f"scheduler.decay_steps={steps}"]
    if name == "pope":
        # Relative to the repository root (where the runs start) when inside it, so the recorded spec, and
        # with it the resume check, does not depend on where the repository is checked out.
        path = ((out or output_dir(NAME, None)) / POPE_FILE).resolve()
        ov.append(f"algorithm.prefix_ratio_file={_repo_relative(path)}")
    entry = REGISTRY[VARIANTS[name][0].removeprefix("algorithm=")]
    if name in ALGORITHMS and entry.stages == (
        "sft",
        "rl",
    ):  # the plain SFT -> RL variant: half the steps each
        ov += [f"sft_trainer.max_steps={steps // 2}", f"trainer.max_steps={steps - steps // 2}"]
    knobs = {f.name for f in fields(entry.config)}
    ov += [f"algorithm.{knob}={value(steps)}" for knob, value in STEP_KNOBS.items() if knob in knobs]
    return ov


def _repo_relative(path: Path) -> Path:
    try:
        return path.relative_to(REPO_ROOT)
    except ValueError:
        return path


def results_name(model: str) -> str:
    """The results folder of a comparison on ``model``: the historical one for the default testbed model."""
    return NAME if model == MODEL else f"{NAME}_{model.split(':')[-1].replace('-', '_')}"


def curve_spec(overrides: list[str], every: int, problems: int, samples: int) -> dict[str, int]:
    """Held-out curve settings of one variant: every ``every`` RL steps; an SFT stage longer than that budget
    (SFT to convergence) at :data:`CURVE_POINTS_SFT` points."""
    sft_steps = [int(o.split("=", 1)[1]) for o in overrides if o.startswith("sft_trainer.max_steps=")]
    sft_every = max(every, sft_steps[-1] // CURVE_POINTS_SFT) if sft_steps else every
    return {
        "every": every,
        "sft_every": sft_every,
        "level": TRAINED_LEVEL,
        "problems": problems,
        "samples": samples,
    }


def prepare_pope_ratios(out: Path, needed: bool = True, model: str = MODEL) -> dict[str, int]:
    """Measure (once) each training problem's shortest solving prefix ratio with the base model; the counts.

    The measured file (~700 KB) is not committed, its counts are (``POPE_COUNTS``): with every POPE run
    already done (``needed`` False) the counts are read back instead of measuring again (~30 min)."""
    import json
    import os
    import subprocess

    path, counts_path = out / POPE_FILE, out / POPE_COUNTS
    if not needed and not path.exists() and counts_path.exists():
        return json.loads(counts_path.read_text())
    if not path.exists():
        partial = path.with_suffix(".partial")
        cmd = [
            sys.executable, "-m", "prefix_rft.cli.pass_rates", "--model", model, "--out", str(partial),
            "--samples", "8", "--temperature", "1.0", "--max-new-tokens", "64",
            "--prefix-ratios", ",".join(str(r) for r in POPE_RATIOS), *BASE_OVERRIDES, *TRAIN_DATA,
        ]  # fmt: skip
        subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        partial.rename(path)
    from prefix_rft.eval.pass_rates import prefix_ratio_counts

    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    counts = prefix_ratio_counts(rows, POPE_RATIOS)
    write_json(counts_path, counts)
    return counts


# ---------------------------------------------------------------------------- summary
def _cost(run: dict) -> dict[str, float]:
    total = (run["metrics"].get("cost") or {}).get("total") or {}
    trained = total.get("tokens_trained") or {}
    return {
        "rollouts": total.get("rollouts", float("nan")),
        "demo_tokens": trained.get("prefix", 0)
        + trained.get("full_demonstration", 0)
        + trained.get("sft", 0),
        "tflops": (total.get("flops") or {}).get("total", float("nan")) / 1e12,
        "train_s": (total.get("wall_seconds") or {}).get("train", run["train_s"]),
    }


def summarise(base: dict, runs: list[dict]) -> list[dict[str, Any]]:
    """Per variant: mean and 95% CI over seeds of accuracies, process metrics and cost."""
    lv = str(TRAINED_LEVEL)
    easier = [k for k in base["eval"] if k != lv]
    rows = [_summary_row("base", [base], lv, easier)]
    for name in dict.fromkeys(r["spec"]["name"] for r in runs):
        rows.append(_summary_row(name, [r for r in runs if r["spec"]["name"] == name], lv, easier))
    return rows


def _summary_row(name: str, runs: list[dict], lv: str, easier: list[str]) -> dict[str, Any]:
    def stat(f) -> tuple[float, float]:
        return mean_ci([f(r) for r in runs])

    row: dict[str, Any] = {"variant": name, "seeds": [r["spec"]["seed"] for r in runs]}
    row["trained_t1"] = stat(lambda r: r["eval"][lv]["accuracy"])
    row["trained_greedy"] = stat(lambda r: r["eval"][lv]["greedy/accuracy"])
    row["trained_faithful"] = stat(lambda r: r["eval"][lv]["process/faithful"])
    row["trained_shortcut"] = stat(lambda r: r["eval"][lv]["process/right_answer_wrong_working"])
    row["easier_t1"] = stat(lambda r: sum(r["eval"][k]["accuracy"] for k in easier) / len(easier))
    for k in easier:
        row[f"L{k}_t1"] = stat(lambda r, k=k: r["eval"][k]["accuracy"])
    if name != "base":
        costs = [_cost(r) for r in runs]
        row["cost"] = {key: sum(c[key] for c in costs) / len(costs) for key in costs[0]}
    row["chance"] = {k: runs[0]["eval"][lv][k] for k in ("chance/best_constant", "chance/last_number")}
    return row


def ci(v: tuple[float, float]) -> str:
    """``mean ± half-width``; the mean alone when there is no interval (one seed)."""
    return f"{v[0]:.3f}" if v[1] != v[1] else f"{v[0]:.3f} ± {v[1]:.3f}"


def table(rows: list[dict]) -> str:
    body = []
    for r in rows:
        c = r.get("cost")
        body.append(
            [
                r["variant"],
                len(r["seeds"]),
                ci(r["trained_t1"]),
                ci(r["trained_greedy"]),
                ci(r["trained_faithful"]),
                ci(r["easier_t1"]),
                "-" if c is None else f"{c['rollouts']:.0f}",
                "-" if c is None else f"{c['demo_tokens']:.0f}",
                "-" if c is None else f"{c['tflops']:.2f}",
                "-" if c is None else f"{c['train_s']:.0f}",
            ]
        )
    headers = [
        "variant",
        "seeds",
        f"L{TRAINED_LEVEL} T=1",
        f"L{TRAINED_LEVEL} greedy",
        f"L{TRAINED_LEVEL} faithful",
        "L1-3 T=1",
        "rollouts",
        "demo tokens",
        "TFLOPs",
        "train s",
    ]
    return format_table(headers, body)


def forgetting_table(rows: list[dict]) -> str:
    """Per variant: T=1 accuracy on each easier level and the share of trained-level right answers whose
    working is wrong (guesses and shortcuts), mean ± 95% CI over seeds."""

    levels = sorted(k for k in rows[0] if k.startswith("L") and k.endswith("_t1"))
    headers = ["variant", *(f"{k[:-3]} T=1" for k in levels), f"L{TRAINED_LEVEL} right answer, wrong working"]
    body = [[r["variant"], *(ci(r[k]) for k in levels), ci(r["trained_shortcut"])] for r in rows]
    return format_table(headers, body)


def plot(runs: list[dict], rows: list[dict], path: Path) -> Path:
    """Left: on-policy training reward (10-step mean; band = min-max over seeds). Right: held-out accuracy."""
    plt = pyplot()
    fig, (ax_r, ax_a) = plt.subplots(1, 2, figsize=(13, 4.5))
    for name in dict.fromkeys(r["spec"]["name"] for r in runs):
        if name not in ALGORITHMS and name not in SFT_TO_CONVERGENCE and name not in LONGER:
            continue
        if REGISTRY[VARIANTS[name][0].removeprefix("algorithm=")].hybrids_per_group == "all":
            continue  # every rollout continues a prefix (prefix_in_prompt, guide=all): no on-policy reward
        curves = []
        for r in runs:
            if r["spec"]["name"] == name:
                pts = [p.get("rewards/on_policy_mean", p.get("reward")) for p in r["reward_curve"]]
                curves.append([v for v in pts if v is not None])
        n = min((len(c) for c in curves), default=0)
        if not n:
            continue
        smooth = [
            [sum(c[max(0, i - 9) : i + 1]) / len(c[max(0, i - 9) : i + 1]) for i in range(n)] for c in curves
        ]
        steps = list(range(1, n + 1))
        mean = [sum(s[i] for s in smooth) / len(smooth) for i in range(n)]
        ax_r.plot(steps, mean, label=name)
        ax_r.fill_between(
            steps,
            [min(s[i] for s in smooth) for i in range(n)],
            [max(s[i] for s in smooth) for i in range(n)],
            alpha=0.2,
        )
    ax_r.set_xlabel("step (RL stage)")
    ax_r.set_ylabel(f"on-policy training reward ({TRAINED_LEVEL}-step problems)")
    ax_r.legend(fontsize=7)
    names = [r["variant"] for r in rows]
    x = range(len(names))
    for offset, key, label in (
        (-0.2, "trained_t1", f"{TRAINED_LEVEL} steps, T=1"),
        (0.2, "easier_t1", "1-3 steps, T=1"),
    ):
        means = [r[key][0] for r in rows]
        errs = [0 if r[key][1] != r[key][1] else r[key][1] for r in rows]
        ax_a.bar([i + offset for i in x], means, width=0.4, yerr=errs, capsize=2, label=label)
    chance = rows[0]["chance"]["chance/best_constant"]
    ax_a.axhline(chance, color="gray", linestyle=":", label=f"best constant answer ({chance:.3f})")
    ax_a.set_xticks(list(x), names, rotation=60, ha="right", fontsize=7)
    ax_a.set_ylabel("held-out accuracy (mean, 95% CI over seeds)")
    ax_a.legend(fontsize=7)
    return save_figure(fig, path)


def curve_summary(runs: list[dict]) -> dict[str, list[dict[str, float]]]:
    """Per variant, per checkpoint (in training order): mean over seeds of rollouts, TFLOPs and the held-out
    trained-level T=1 and faithful accuracy; ``faithful_ci`` is the 95% t half-width over seeds."""
    out: dict[str, list[dict[str, float]]] = {}
    for name in dict.fromkeys(r["spec"]["name"] for r in runs):
        runs_of = [r for r in runs if r["spec"]["name"] == name and r.get("heldout_curve")]
        curves = [r["heldout_curve"] for r in runs_of]
        n = min((len(c) for c in curves), default=0)
        # Results written before one-stage SFT runs were labelled by their algorithm called every
        # one-stage checkpoint "rl"; the spec says which stage it was.
        one_stage = bool(curves) and all(p["stage"] == "rl" for p in curves[0])
        relabel = single_stage_kind(runs_of[0]["spec"].get("overrides")) if one_stage else None
        points = []
        for i in range(n):
            at = [c[i] for c in curves]
            point = {k: sum(p[k] for p in at) / len(at) for k in ("rollouts", "tflops", "step", "accuracy")}
            point["faithful_accuracy"], point["faithful_ci"] = mean_ci([p["faithful_accuracy"] for p in at])
            point["stage"] = relabel or at[0]["stage"]
            points.append(point)
        if points:
            out[name] = points
    return out


def curve_table(curves: dict[str, list[dict[str, float]]]) -> str:
    """The learning curves as markdown: one table per grid of checkpoints (RL runs share one; SFT to
    convergence has its own), a column per checkpoint (``stage step (rollouts)``), faithful accuracy
    ``mean ± 95% t`` over seeds in the cells."""
    grids: dict[tuple, list[str]] = {}
    for name, points in curves.items():
        grids.setdefault(tuple((p["stage"], p["step"], p["rollouts"]) for p in points), []).append(name)
    tables = []
    for grid, names in grids.items():
        headers = ["variant", *(f"{stage} {step:.0f} ({rollouts:,.0f})" for stage, step, rollouts in grid)]
        body = [[n, *(ci((p["faithful_accuracy"], p["faithful_ci"])) for p in curves[n])] for n in names]
        tables.append(format_table(headers, body))
    return "\n\n".join(tables)


def plot_curves(curves: dict[str, list[dict[str, float]]], path: Path) -> Path:
    """Held-out trained-level faithful accuracy (T=1, mean over seeds) against rollouts and against FLOPs."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    for i, (name, points) in enumerate(curves.items()):
        style = ("o-", "s--", "^:")[i // 10 % 3]  # the colour cycle repeats after 10 lines
        for ax, key in zip(axes, ("rollouts", "tflops")):
            ax.plot(
                [p[key] for p in points], [p["faithful_accuracy"] for p in points], style, ms=3, label=name
            )
    axes[0].set_xlabel("rollouts sampled (cumulative; SFT samples none)")
    axes[1].set_xlabel("training FLOPs estimate (TFLOPs, cumulative)")
    for ax in axes:
        ax.set_ylabel(f"{TRAINED_LEVEL}-step faithful accuracy, T=1 (held-out)")
        ax.legend(fontsize=7)
    return save_figure(fig, path)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run (or resume) the comparison, print its table, write ``small_scale_comparison.json`` and ``.png``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="1 seed, rft + prefix_rft, 4 steps, 16 problems/level"
    )
    p.add_argument(
        "--variants",
        default=None,
        help=f"comma-separated from {','.join(VARIANTS)}, or all (default: the 11 algorithms and 6 ablations)",
    )
    p.add_argument("--seeds", default=None, help="comma-separated (default 0,1,2; quick 0)")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps per run (default 120; quick 4)")
    p.add_argument("--problems", type=int, default=None, help="held-out problems of levels 1-3 (default 100)")
    p.add_argument(
        "--trained-problems",
        type=int,
        default=None,
        help=f"held-out {TRAINED_LEVEL}-step problems (default 200)",
    )
    p.add_argument("--samples", type=int, default=4, help="samples per problem at T=1 (avg@k)")
    p.add_argument("--parallel", type=int, default=2, help="runs at a time, one torch thread each")
    p.add_argument(
        "--model",
        default=MODEL,
        help=f"testbed model (default {MODEL}; builtin:tiny-fork runs the planned variants {','.join(FORK_PLAN)})",
    )
    p.add_argument(
        "--curve-every",
        type=int,
        default=None,
        help=f"held-out {TRAINED_LEVEL}-step evaluation every N steps for learning curves "
        f"(default {CURVE_EVERY} on a model other than {MODEL}, else 0 = none)",
    )
    p.add_argument(
        "--out",
        default=None,
        help=f"output folder (default benchmarks/results/{NAME}/, or {NAME}_<model>/ for another model)",
    )
    ns = p.parse_args(argv)
    model = ns.model
    curve_every = ns.curve_every if ns.curve_every is not None else (0 if model == MODEL else CURVE_EVERY)
    if ns.variants == "all":
        names = list(VARIANTS)
    elif ns.variants:
        names = ns.variants.split(",")
    else:
        names = (
            ["rft", "prefix_rft"]
            if ns.quick
            else [*ALGORITHMS, *ABLATIONS]
            if model == MODEL
            else list(FORK_PLAN)
        )
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"--variants: unknown {unknown}; expected names from {list(VARIANTS)}")
    seeds = [int(s) for s in ns.seeds.split(",")] if ns.seeds else ([0] if ns.quick else [0, 1, 2])
    steps = ns.steps or (4 if ns.quick else 120)
    problems = ns.problems or (16 if ns.quick else 100)
    levels = {
        1: problems,
        2: problems,
        3: problems,
        TRAINED_LEVEL: ns.trained_problems or (problems if ns.quick else 200),
    }
    out = output_dir(results_name(model), ns.out, ns.quick)
    prepared = {}
    if "pope" in names:
        todo = any(not (out / "runs" / "pope" / f"seed{seed}" / "result.json").exists() for seed in seeds)
        prepared["pope"] = prepare_pope_ratios(out, needed=todo, model=model)
    jobs = [job_spec("base", 0, None, TRAIN_DATA, levels, ns.samples, model=model)]
    curve_problems = min(CURVE_PROBLEMS, levels[TRAINED_LEVEL])
    for seed in seeds:
        for name in names:
            ov = variant_overrides(name, steps, out)
            if ns.quick:
                ov += ["trainer.per_device_train_batch_size=16", "sft_trainer.per_device_train_batch_size=2"]
            curve = curve_spec(ov, curve_every, curve_problems, CURVE_SAMPLES) if curve_every > 0 else None
            jobs.append(job_spec(name, seed, ov, TRAIN_DATA, levels, ns.samples, model=model, curve=curve))
    started = time.time()
    results = run_jobs(jobs, out, ns.parallel)
    base = next(r for r in results if r["spec"]["name"] == "base")
    runs = [r for r in results if r["spec"]["name"] != "base"]
    failed = len(jobs) - len(results)
    rows = summarise(base, runs)
    text = table(rows) + "\n\n" + forgetting_table(rows)
    result = {
        "options": {
            "model": model,
            "curve_every": curve_every,
            "variants": names,
            "seeds": seeds,
            "steps": steps,
            "problems": problems,
            "samples": ns.samples,
        },
        "train_data": TRAIN_DATA,
        "overrides": {n: variant_overrides(n, steps, out) for n in names},
        "prepared": prepared,
        "summary": rows,
        "failed_jobs": failed,
        "table": text,
        "machine": machine_info(),
        "wall_s": time.time() - started,
    }
    write_json(out / f"{NAME}.json", result)
    plot(runs, rows, out / f"{NAME}.png")
    if any(r.get("heldout_curve") for r in runs):
        result["curves"] = curve_summary(runs)
        write_json(out / f"{NAME}.json", result)
        plot_curves(result["curves"], out / "learning_curves.png")
        text += "\n\n" + curve_table(result["curves"])
    longer = sorted({f"{LONGER[n][1]} for {n}" for n in names if n in LONGER})
    budget = f"{steps} steps per run" + (f" ({', '.join(longer)})" if longer else "")
    print(f"\n{model}, {budget}; held-out mean ± 95% CI over seeds {seeds}; cost = mean per run\n")
    print(text)
    c = rows[0]["chance"]
    print(
        f"\nchance on {TRAINED_LEVEL}-step problems: best constant answer {c['chance/best_constant']:.3f}, "
        f"last number {c['chance/last_number']:.3f}"
    )
    print(f"{failed} failed jobs; wall {result['wall_s']:.0f}s; results in {out}")
    if failed:
        raise SystemExit(f"{failed} jobs failed; logs under {out / 'runs'}")
    return result


if __name__ == "__main__":
    main()
