"""CPU-scale version of the paper's comparison: every algorithm, the same step budget, hard synthetic problems.

python -m benchmarks.small_scale_comparison                    # 6 algorithms + 5 ablations, 3 seeds (~20 min)
python -m benchmarks.small_scale_comparison --quick            # 1 seed, rft vs prefix_rft, 8 steps (< 1 min)
python -m benchmarks.small_scale_comparison --seeds 0,1,2,3,4 --steps 40 --algorithms rft,prefix_rft \
    --ablations none --override trainer.learning_rate=5e-5

Every run starts from the built-in warm-started tiny model (``builtin:tiny-warm``: SFT on 1-2 step problems,
so it solves those but rarely 3-4 step ones) and trains on hard problems only
(``data.synthetic.train_min_steps=3 train_max_steps=4``) through ``prefix_rft.pipeline.run_training`` on a
config from ``compose_config`` - exactly what ``prefix-rft-train`` runs - with the tiny model's CPU settings
(``conf/model/tiny.yaml``: 2 prompts x 8 rollouts per step, 64 completion tokens, lr 2e-5, SFT lr 1e-4).
Deviations from those settings, all applied to every algorithm alike:

* ``trainer.max_steps`` is the budget (``--steps``). ``sft_then_rft`` splits it: ``steps // 2`` SFT steps,
  then the rest RL, so it gets the same number of optimizer steps as the others.
* the cosine prefix scheduler decays over the whole budget (``scheduler.decay_steps=steps``), as in the
  paper where it spans the full run;
* checkpoints (model only) every ``steps // curve_points`` steps for the accuracy-vs-step curves;
* the run's own before/after held-out evaluation is off: this script evaluates instead.

Evaluation: avg@8 at temperature 0.6, 64 new tokens (``prefix_rft.eval.heldout.heldout_accuracy``) on a hard
held-out set (3-4 steps) and an easy one (1-2 steps) of 32 problems each, both from ``heldout_records``
(generator seed + 1, disjoint from training), for every checkpoint, the final model and the starting model
(step 0; evaluated once per seed, since the sampling seed is the run's seed).

Default budget (50 steps, 3 seeds, 33 runs, 2 checkpoints each): about 16-20 minutes on 2 idle cores with
torch's default threads (a run of 50 RL steps ~20 s, 0.3-0.4 s/step for 2 prompts x 8 rollouts of ~25 tokens,
and ~8 s to evaluate one model); about 25 minutes with ``--threads 1``, which is the setting to use on a
machine shared with other jobs.

Ablations (on prefix_rft, same seeds and budget): prefix-token update ``all`` / ``none`` (vs the default
``entropy_top``), ``scheduler=uniform`` (vs cosine), and 1% of the training prompts (``data.fraction=0.01``,
20 of 2000) for prefix_rft and rft.

Re-invoking skips finished work: a run folder with ``metrics.json`` (written by ``run_training`` at the end)
and the same overrides (``bench_run.json``) is not trained again; an unfinished one, or one trained with other
settings, is wiped and trained anew. Evaluations are cached in ``bench_eval.json`` next to the run (recomputed when the
evaluation settings change).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python benchmarks/small_scale_comparison.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import (
    format_table,
    machine_info,
    mean_std,
    output_dir,
    pyplot,
    save_figure,
    write_json,
)

NAME = "small_scale_comparison"
ALGORITHMS = ("sft", "rft", "sft_then_rft", "luffy", "relift", "prefix_rft", "rl_sft_loss")
DEFAULT_ALGORITHMS = ("sft", "rft", "sft_then_rft", "luffy", "relift", "prefix_rft")
# name -> (algorithm, overrides): each is Prefix-RFT (or RFT) with one knob changed.
ABLATIONS: dict[str, tuple[str, list[str]]] = {
    "update_all": ("prefix_rft", ["algorithm.prefix_update=all"]),
    "update_none": ("prefix_rft", ["algorithm.prefix_update=none"]),
    "sched_uniform": ("prefix_rft", ["scheduler=uniform"]),
    "data1pct_prefix_rft": ("prefix_rft", ["data.fraction=0.01"]),
    "data1pct_rft": ("rft", ["data.fraction=0.01"]),
}
EVAL_SETS = {"hard": (3, 4), "easy": (1, 2)}


# ---------------------------------------------------------------------------- runs
def run_overrides(
    algorithm: str, extra: list[str], seed: int, opts: dict[str, Any], run_dir: Path
) -> list[str]:
    """Hydra overrides of one run (the order matters only for the user's ``--override`` coming last)."""
    steps = opts["steps"]
    save_steps = max(1, steps // opts["curve_points"])
    ov = [
        f"algorithm={algorithm}",
        f"model.name_or_path={opts['model']}",
        "data.synthetic.train_min_steps=3",
        "data.synthetic.train_max_steps=4",
        f"seed={seed}",
        f"output_dir={run_dir}",
        "heldout_eval.enabled=false",
        f"trainer.max_steps={steps}",
        f"trainer.save_steps={save_steps}",
        "trainer.save_total_limit=null",
        "trainer.save_only_model=true",
        "trainer.disable_tqdm=true",
        f"scheduler.decay_steps={steps}",
    ]
    if algorithm == "sft_then_rft":
        ov += [f"sft_trainer.max_steps={steps // 2}", f"trainer.max_steps={steps - steps // 2}"]
    return ov + extra + opts["overrides"]


def train_run(overrides: list[str], run_dir: Path, log_path: Path) -> dict[str, Any]:
    """Train one run in this process (stdout/stderr to ``log_path``); returns its metrics.json summary."""
    from prefix_rft.config.compose import compose_config
    from prefix_rft.pipeline import run_training

    if run_dir.exists():  # an unfinished run: start it again from scratch (checkpoints hold no optimizer)
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    cfg = compose_config(overrides)
    with open(log_path, "w") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        print("overrides:", " ".join(overrides), flush=True)
        return run_training(cfg)


def checkpoints(run_dir: Path, algorithm: str, steps: int) -> list[tuple[int, Path]]:
    """(global step within the budget, model folder) of every saved checkpoint and the final model."""
    found: list[tuple[int, Path]] = []
    stages = [(run_dir, 0)]
    if algorithm == "sft_then_rft":
        stages = [(run_dir / "stage1_sft", 0), (run_dir / "stage2_rl", steps // 2)]
    for folder, offset in stages:
        for ckpt in folder.glob("checkpoint-*"):
            if (ckpt / "config.json").is_file():
                found.append((offset + int(ckpt.name.split("-")[1]), ckpt))
    if not any(step == steps for step, _ in found):
        found.append((steps, run_dir))  # the final model sits at the top of the run folder
    return sorted(found)


# ---------------------------------------------------------------------------- evaluation
def eval_records(opts: dict[str, Any]) -> dict[str, list[dict]]:
    """The held-out sets, from the library's ``heldout_records`` (seed + 1: disjoint from training)."""
    from omegaconf import OmegaConf

    from prefix_rft.config.compose import compose_config
    from prefix_rft.data.sources import heldout_records

    data_cfg = compose_config(["output_dir=/tmp/unused"]).data
    sets = {}
    for name, (lo, hi) in EVAL_SETS.items():
        cfg = OmegaConf.merge(
            data_cfg,
            {"synthetic": {"num_eval": opts["eval_problems"], "eval_min_steps": lo, "eval_max_steps": hi}},
        )
        sets[name] = heldout_records(cfg)
    return sets


def evaluate_model(model_dir: Path, records: dict[str, list[dict]], opts: dict[str, Any], seed: int) -> dict:
    """avg@k accuracy on each held-out set."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from prefix_rft.eval.heldout import heldout_accuracy

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    result = {}
    for name, recs in records.items():
        acc = heldout_accuracy(
            model,
            tokenizer,
            recs,
            samples=opts["eval_samples"],
            temperature=opts["eval_temperature"],
            max_new_tokens=opts["eval_max_new_tokens"],
            batch_size=opts["eval_batch_size"],
            seed=seed,
        )
        result[name] = acc["accuracy"]
        result[f"{name}_by_steps"] = {k: v for k, v in acc.items() if k.startswith("accuracy/")}
    return result


def eval_settings(opts: dict[str, Any]) -> dict[str, Any]:
    keys = ("eval_problems", "eval_samples", "eval_temperature", "eval_max_new_tokens")
    return {k: opts[k] for k in keys}


def evaluate_points(
    points: list[tuple[int, Path]], cache: Path, records: dict, opts: dict[str, Any], seed: int
) -> list[dict]:
    """Evaluate each (step, model folder), reusing ``cache`` for points evaluated with the same settings."""
    saved = json.loads(cache.read_text()) if cache.is_file() else {}
    if saved.get("settings") != eval_settings(opts):
        saved = {"settings": eval_settings(opts), "points": {}}
    for step, folder in points:
        key = str(step)
        if key not in saved["points"]:
            t0 = time.perf_counter()
            saved["points"][key] = {
                **evaluate_model(folder, records, opts, seed),
                "eval_s": time.perf_counter() - t0,
            }
            cache.write_text(json.dumps(saved, indent=2))
    return [{"step": int(k), **v} for k, v in sorted(saved["points"].items(), key=lambda kv: int(kv[0]))]


# ---------------------------------------------------------------------------- driver
def plan(opts: dict[str, Any]) -> list[dict[str, Any]]:
    """Every (variant, seed) run to do: the algorithms first, then the ablations."""
    jobs = []
    for seed in opts["seeds"]:
        for algo in opts["algorithms"]:
            jobs.append({"variant": algo, "group": "algorithm", "algorithm": algo, "extra": [], "seed": seed})
    for seed in opts["ablation_seeds"]:
        for name in opts["ablations"]:
            algo, extra = ABLATIONS[name]
            jobs.append(
                {"variant": name, "group": "ablation", "algorithm": algo, "extra": extra, "seed": seed}
            )
    return jobs


def run_all(opts: dict[str, Any], out: Path) -> list[dict[str, Any]]:
    """Train and evaluate every planned run (skipping finished ones); returns one row per run."""
    from prefix_rft.models.load import resolve_model_path

    base_dir = Path(resolve_model_path(opts["model"]))  # builds the tiny model once if it is not cached
    records = eval_records(opts)
    rows, base_points = [], {}
    for seed in sorted(set(opts["seeds"]) | set(opts["ablation_seeds"])):
        # The starting model, evaluated once per seed (the eval sampling seed is the run's seed), is
        # step 0 of every curve.
        t0 = time.perf_counter()
        cache = out / "runs" / "base" / f"seed{seed}" / "bench_eval.json"
        cache.parent.mkdir(parents=True, exist_ok=True)
        points = evaluate_points([(0, base_dir)], cache, records, opts, seed)
        base_points[seed] = points[0]
        rows.append(
            {
                "variant": "base",
                "group": "base",
                "algorithm": "base",
                "seed": seed,
                "status": "ok",
                "train_s": 0.0,
                "eval_s": time.perf_counter() - t0,
                "points": points,
                "final": points[-1],
            }
        )
        _progress(rows[-1])
    for job in plan(opts):
        rows.append(run_job(job, opts, out, records, base_points[job["seed"]]))
        _progress(rows[-1])
    return rows


def run_job(job: dict, opts: dict, out: Path, records: dict, base_point: dict) -> dict[str, Any]:
    """Train (unless finished) and evaluate one run; a failure is recorded, not raised."""
    run_dir = out / "runs" / job["variant"] / f"seed{job['seed']}"
    row = {**{k: job[k] for k in ("variant", "group", "algorithm", "seed")}, "run_dir": str(run_dir)}
    try:
        t0 = time.perf_counter()
        metrics_path, marker = run_dir / "metrics.json", run_dir / "bench_run.json"
        overrides = run_overrides(job["algorithm"], job["extra"], job["seed"], opts, run_dir)
        done = metrics_path.is_file() and marker.is_file()
        if done and json.loads(marker.read_text()).get("overrides") == overrides:
            row["skipped_training"] = True
        else:  # not run, unfinished, or run with other settings (--steps, --override, ...): train anew
            train_run(overrides, run_dir, run_dir.parent / f"seed{job['seed']}.log")
            marker.write_text(json.dumps({"overrides": overrides}, indent=2))
        metrics = json.loads(metrics_path.read_text())
        row["train_s"] = time.perf_counter() - t0 if not row.get("skipped_training") else None
        row["train_runtime_s"] = metrics.get("train_runtime_s")
        t0 = time.perf_counter()
        points = checkpoints(run_dir, job["algorithm"], opts["steps"])
        evaluated = [base_point] + evaluate_points(
            points, run_dir / "bench_eval.json", records, opts, job["seed"]
        )
        row.update(status="ok", eval_s=time.perf_counter() - t0, points=evaluated, final=evaluated[-1])
    except Exception as err:  # one broken run must not lose the others
        row.update(status="failed", error=f"{type(err).__name__}: {err}")
        (run_dir.parent / f"seed{job['seed']}.error.txt").write_text(traceback.format_exc())
    return row


def _progress(row: dict) -> None:
    if row["status"] != "ok":
        print(f"  {row['variant']:>20} seed {row['seed']}: FAILED {row['error']}", flush=True)
        return
    f = row["final"]
    train = "cached" if row.get("skipped_training") else f"{row.get('train_s') or 0:.0f}s"
    print(
        f"  {row['variant']:>20} seed {row['seed']}: hard {f['hard']:.3f} easy {f['easy']:.3f} "
        f"(train {train}, eval {row['eval_s']:.0f}s)",
        flush=True,
    )


def summarise(rows: list[dict]) -> list[dict[str, Any]]:
    """Mean and std over seeds of the final accuracies, per variant, in run order."""
    order: list[str] = []
    for r in rows:
        if r["variant"] not in order:
            order.append(r["variant"])
    summary = []
    for variant in order:
        ok = [r for r in rows if r["variant"] == variant and r["status"] == "ok"]
        failed = [r for r in rows if r["variant"] == variant and r["status"] != "ok"]
        entry = {
            "variant": variant,
            "group": (ok or failed)[0]["group"],
            "seeds": len(ok),
            "failed": len(failed),
        }
        for name in EVAL_SETS:
            entry[f"{name}_mean"], entry[f"{name}_std"] = mean_std([r["final"][name] for r in ok])
        times = [r["train_runtime_s"] for r in ok if r.get("train_runtime_s")]
        entry["train_runtime_s_mean"] = mean_std(times)[0]
        summary.append(entry)
    return summary


def table(summary: list[dict], groups: tuple[str, ...]) -> str:
    rows = []
    for e in summary:
        if e["group"] not in groups:
            continue
        rows.append(
            [
                e["variant"],
                e["seeds"] if not e["failed"] else f"{e['seeds']} ({e['failed']} failed)",
                f"{e['hard_mean']:.3f} ± {e['hard_std']:.3f}",
                f"{e['easy_mean']:.3f} ± {e['easy_std']:.3f}",
                "-" if e["group"] == "base" else f"{e['train_runtime_s_mean']:.0f}",
            ]
        )
    return format_table(
        ["variant", "seeds", "hard (3-4 steps) avg@k", "easy (1-2 steps) avg@k", "train s/run"], rows
    )


def curves(rows: list[dict]) -> dict[str, dict[str, list]]:
    """Mean accuracy per step over seeds: {variant: {step: [...], hard: [...], easy: [...]}}."""
    result: dict[str, dict[str, list]] = {}
    for variant in dict.fromkeys(r["variant"] for r in rows if r["status"] == "ok" and r["group"] != "base"):
        by_step: dict[int, dict[str, list[float]]] = {}
        for r in rows:
            if r["variant"] == variant and r["status"] == "ok":
                for p in r["points"]:
                    slot = by_step.setdefault(p["step"], {n: [] for n in EVAL_SETS})
                    for n in EVAL_SETS:
                        slot[n].append(p[n])
        steps = sorted(by_step)
        result[variant] = {
            "step": steps,
            **{n: [mean_std(by_step[s][n])[0] for s in steps] for n in EVAL_SETS},
        }
    return result


def plot(result: dict[str, Any], path: Path) -> Path:
    """Accuracy vs step (mean over seeds): algorithms on top, ablations below; hard left, easy right."""
    plt = pyplot()
    groups = {"algorithm": [], "ablation": []}
    for s in result["summary"]:
        if s["group"] in groups:
            groups[s["group"]].append(s["variant"])
    nrows = 1 + bool(groups["ablation"])
    fig, axes = plt.subplots(nrows, 2, figsize=(11, 4 * nrows), squeeze=False)
    for row, group in enumerate(g for g in ("algorithm", "ablation") if groups[g]):
        for col, name in enumerate(EVAL_SETS):
            ax = axes[row][col]
            variants = groups[group] + (
                ["prefix_rft"] if group == "ablation" and "prefix_rft" in result["curves"] else []
            )
            for variant in variants:
                c = result["curves"].get(variant)
                if c:
                    ax.plot(
                        c["step"],
                        c[name],
                        marker="o",
                        label=variant,
                        linestyle="--" if variant == "prefix_rft" and group == "ablation" else "-",
                    )
            ax.set_title(f"{group}s: {name} held-out ({'-'.join(map(str, EVAL_SETS[name]))} steps)")
            ax.set_xlabel("training step")
            ax.set_ylabel(f"avg@{result['options']['eval_samples']} accuracy")
            ax.legend(fontsize=7)
    return save_figure(fig, path)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="1 seed, rft + prefix_rft, 8 steps, no ablations")
    p.add_argument("--seeds", default=None, help="comma-separated seeds (default 0,1,2; quick 0)")
    p.add_argument("--ablation-seeds", default=None, help="seeds of the ablation runs (default: --seeds)")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps per run (default 50; quick 8)")
    p.add_argument("--algorithms", default=None, help=f"comma-separated, from {','.join(ALGORITHMS)}")
    p.add_argument(
        "--ablations",
        default=None,
        help=f"comma-separated from {','.join(ABLATIONS)}, or 'none' (default all; quick none)",
    )
    p.add_argument("--model", default="builtin:tiny-warm", help="model.name_or_path of every run")
    p.add_argument(
        "--curve-points", type=int, default=2, help="checkpoints per run, evenly spaced (default 2)"
    )
    p.add_argument(
        "--eval-problems", type=int, default=None, help="problems per held-out set (default 32; quick 16)"
    )
    p.add_argument("--eval-samples", type=int, default=8, help="samples per problem (avg@k)")
    p.add_argument("--eval-temperature", type=float, default=0.6)
    p.add_argument("--eval-max-new-tokens", type=int, default=64)
    p.add_argument("--eval-batch-size", type=int, default=32, help="problems per generate() call")
    p.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra Hydra override for every run (repeatable), e.g. trainer.learning_rate=5e-5",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads (default 0: torch's choice, all cores). Use 1 on a machine shared with other "
        "jobs: there, idle OpenMP threads spin and made 2-thread steps up to 40x slower",
    )
    p.add_argument("--out", default=None, help=f"output folder (default benchmarks/results/{NAME}/)")
    return p.parse_args(argv)


def options(ns: argparse.Namespace) -> dict[str, Any]:
    """Flags -> options, with quick or full defaults; names are checked here, before any training."""
    q = ns.quick
    algorithms = (
        ns.algorithms.split(",")
        if ns.algorithms
        else list(("rft", "prefix_rft") if q else DEFAULT_ALGORITHMS)
    )
    bad = [a for a in algorithms if a not in ALGORITHMS]
    if bad:
        raise SystemExit(f"--algorithms: unknown {bad}; expected names from {list(ALGORITHMS)}")
    if ns.ablations is None:
        ablations = [] if q else list(ABLATIONS)
    else:
        ablations = [] if ns.ablations in ("", "none") else ns.ablations.split(",")
    bad = [a for a in ablations if a not in ABLATIONS]
    if bad:
        raise SystemExit(f"--ablations: unknown {bad}; expected names from {list(ABLATIONS)} or 'none'")
    seeds = [int(s) for s in ns.seeds.split(",")] if ns.seeds else ([0] if q else [0, 1, 2])
    ablation_seeds = [int(s) for s in ns.ablation_seeds.split(",")] if ns.ablation_seeds else seeds
    steps = ns.steps if ns.steps is not None else (8 if q else 50)
    if steps < 2:
        raise SystemExit("--steps must be >= 2 (sft_then_rft splits it into two stages)")
    return {
        "quick": q,
        "seeds": seeds,
        "ablation_seeds": ablation_seeds if ablations else [],
        "steps": steps,
        "algorithms": algorithms,
        "ablations": ablations,
        "model": ns.model,
        "curve_points": ns.curve_points,
        "eval_problems": ns.eval_problems if ns.eval_problems is not None else (16 if q else 32),
        "eval_samples": ns.eval_samples,
        "eval_temperature": ns.eval_temperature,
        "eval_max_new_tokens": ns.eval_max_new_tokens,
        "eval_batch_size": ns.eval_batch_size,
        "overrides": list(ns.override),
        "threads": ns.threads,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run (or resume) the comparison, print the tables, write ``small_scale_comparison.json`` and ``.png``."""
    import os

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    ns = parse_args(argv)
    opts = options(ns)
    out = output_dir(NAME, ns.out)
    from datasets.utils.logging import disable_progress_bar
    from transformers.utils import logging as hf_logging

    if opts["threads"]:
        import torch

        torch.set_num_threads(opts["threads"])
    disable_progress_bar()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    start = time.perf_counter()
    n_runs = len(opts["seeds"]) * len(opts["algorithms"]) + len(opts["ablation_seeds"]) * len(
        opts["ablations"]
    )
    print(f"{n_runs} runs of {opts['steps']} steps ({opts['model']}); logs in {out / 'runs'}", flush=True)
    rows = run_all(opts, out)
    summary = summarise(rows)
    result = {
        "options": opts,
        "summary": summary,
        "curves": curves(rows),
        "runs": rows,
        "machine": machine_info(),
        "wall_s": time.perf_counter() - start,
    }
    tables = [table(summary, ("base", "algorithm"))]
    if opts["ablations"]:
        tables.append(table(summary, ("ablation",)) + "\n(compare with the prefix_rft row above)")
    result["tables"] = tables
    write_json(out / f"{NAME}.json", result)
    plot(result, out / f"{NAME}.png")
    k = opts["eval_samples"]
    print(f"\nfinal avg@{k}, mean ± std over seeds {opts['seeds']}; {opts['steps']} steps per run\n")
    print("\n\n".join(tables))
    print(f"\nwall {result['wall_s']:.0f}s; results in {out}")
    return result


if __name__ == "__main__":
    main()
