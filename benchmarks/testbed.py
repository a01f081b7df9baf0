"""What the CPU-testbed benchmarks share: held-out sets, evaluation, parallel resumable runs, statistics.

A *job* is one training run (or none: the starting model) followed by an evaluation of its final model on
fixed held-out problems of every level. Each job runs in its own process with one torch thread
(``OMP_NUM_THREADS=1``: several jobs share the cores, and oversubscribed OpenMP threads make steps many
times slower), trains through ``prefix_rft.pipeline.run_training`` - exactly what ``prefix-rft-train``
runs - and writes ``result.json`` into its run folder. A job whose ``result.json`` holds the same spec is
not run again, so an interrupted benchmark resumes where it stopped.

Evaluation: for each level, the profile problems of ``prefix_rft.testbed_model`` (their own seeds),
minus any problem the run's training set contains; greedy and sampled at T=1 (the RL temperature), avg@k,
with the synthetic task's process metrics and chance baselines. The same problems and sampling seed serve
every model, so differences between models are paired over problems.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODEL = "builtin:tiny-warm"
# The CPU-scale RL settings every testbed run shares (the RL gate chose them; see benchmarks/README.md).
BASE_OVERRIDES = ["data.prompt_template=plain", "heldout_eval.enabled=false", "trainer.disable_tqdm=true"]

# Two-sided 95% Student t quantiles by degrees of freedom (intervals over a handful of seeds).
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


# ---------------------------------------------------------------------------- statistics
def mean_ci(values: Sequence[float]) -> tuple[float, float]:
    """Mean and half-width of its 95% t-interval (NaN half-width for fewer than 2 values)."""
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    mean = sum(values) / n
    if n < 2:
        return mean, float("nan")
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, _T975.get(n - 1, 1.96) * sd / math.sqrt(n)


def paired(before: Sequence[float], after: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of ``after - before`` over the same problems."""
    from prefix_rft.eval.heldout import paired_difference

    return paired_difference(list(before), list(after))


# ---------------------------------------------------------------------------- evaluation
def eval_records(levels: dict[int, int], train_data: Sequence[str] = ()) -> dict[int, list[dict]]:
    """{level: records}: ``levels[k]`` profile problems of level k, minus the problems of the training set
    that the data overrides ``train_data`` describe (every job of a benchmark passes the same, so all
    models are evaluated on the same problems)."""
    from prefix_rft.config.compose import compose_config
    from prefix_rft.data.synthetic import generate_problems
    from prefix_rft.testbed_model import profile_records

    s = compose_config(list(train_data)).data.synthetic
    train = {
        r["problem"] for r in generate_problems(s.num_train, s.seed, s.train_min_steps, s.train_max_steps)
    }
    return {
        k: [r for r in profile_records(n, levels=(k,)) if r["problem"] not in train]
        for k, n in sorted(levels.items())
    }


def evaluate(model_dir: str | Path, records: dict[int, list[dict]], samples: int, seed: int = 0) -> dict:
    """{level: metrics} with greedy and T=1 avg@``samples`` accuracy, process metrics, per-problem scores."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from prefix_rft.eval.heldout import heldout_accuracy

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    return {
        str(k): heldout_accuracy(
            model,
            tokenizer,
            recs,
            samples=samples,
            greedy=True,
            temperature=1.0,
            max_new_tokens=64,
            batch_size=64,
            seed=seed,
        )
        for k, recs in records.items()
    }


# ---------------------------------------------------------------------------- jobs
def job_spec(
    name: str,
    seed: int,
    overrides: Sequence[str] | None,
    train_data: Sequence[str],
    levels: dict[int, int],
    samples: int,
    model: str = MODEL,
    curve: dict[str, int] | None = None,
) -> dict[str, Any]:
    """A job: train ``model`` with ``train_data`` + ``overrides`` (None: no training, evaluate the starting
    model), then evaluate on ``levels`` ({level: problems}) with avg@``samples``.

    ``curve`` ({every, sft_every, level, problems, samples}) also evaluates the model every ``every`` RL
    (``sft_every`` SFT) optimizer steps (saved checkpoints, evaluated after training, then deleted) for
    learning curves against rollouts and FLOPs. A job of the default model without a curve has the spec it always had (finished runs resume).
    """
    spec: dict[str, Any] = {
        "name": name,
        "seed": seed,
        "overrides": None
        if overrides is None
        else [
            *BASE_OVERRIDES,
            *([f"model.name_or_path={model}"] if model != MODEL else []),
            *train_data,
            f"seed={seed}",
            *overrides,
            *(curve_overrides(curve["every"], curve.get("sft_every", curve["every"])) if curve else []),
        ],
        "train_data": list(train_data),
        "levels": {str(k): n for k, n in levels.items()},
        "samples": samples,
    }
    if model != MODEL:
        spec["model"] = model
    if curve and overrides is not None:
        spec["curve"] = dict(curve)
    return spec


def curve_overrides(every: int, sft_every: int) -> list[str]:
    """Save the model (weights and trainer state, which holds the cost counters) every ``every`` RL steps and
    ``sft_every`` SFT steps, keeping all of them until the learning curve has read them."""
    out = []
    for group, n in (("trainer", every), ("sft_trainer", sft_every)):
        out += [
            f"{group}.save_strategy=steps",
            f"{group}.save_steps={n}",
            f"{group}.save_only_model=true",
            f"{group}.save_total_limit=null",
        ]
    return out


def single_stage_kind(overrides: Sequence[str] | None) -> str:
    """The stage kind of a one-stage run (``sft`` or ``rl``), from its ``algorithm=`` override: a one-stage run
    saves its checkpoints in the run folder itself, so the folder name cannot say."""
    from prefix_rft.algorithms import ALGORITHMS

    names = [o.split("=", 1)[1] for o in overrides or [] if o.startswith("algorithm=")]
    stages = ALGORITHMS[names[-1]].stages if names and names[-1] in ALGORITHMS else ("rl",)
    return stages[0] if len(stages) == 1 else "rl"


def learning_curve(
    run_dir: Path, model: str, curve: dict[str, int], train_data: Sequence[str], single_stage: str = "rl"
) -> list[dict]:
    """T=1 accuracy, faithful accuracy and cumulative cost (rollouts, FLOPs, demonstration tokens) at each
    saved checkpoint of a run, in training order (stage by stage); each checkpoint is deleted once read."""
    import shutil

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from prefix_rft.cost.counters import CostCounters
    from prefix_rft.cost.estimate import stage_cost
    from prefix_rft.eval.heldout import heldout_accuracy
    from prefix_rft.models.load import resolve_model_path

    records = eval_records({curve["level"]: curve["problems"]}, train_data)[curve["level"]]
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(model))
    stages = sorted(run_dir.glob("stage*_*")) or [run_dir]
    points: list[dict] = []
    carried = {"rollouts": 0.0, "tflops": 0.0, "demo_tokens": 0.0}
    for stage_dir in stages:
        kind = stage_dir.name.split("_", 1)[1] if stage_dir != run_dir else single_stage
        last = dict(carried)
        for ckpt in sorted(stage_dir.glob("checkpoint-*"), key=lambda d: int(d.name.split("-")[1])):
            state = json.loads((ckpt / "trainer_state.json").read_text())
            saved = (state.get("stateful_callbacks") or {}).get("CostState") or {}
            saved = saved[-1] if isinstance(saved, list) else saved
            model_obj = AutoModelForCausalLM.from_pretrained(ckpt)
            n_params = sum(p.numel() for p in model_obj.parameters())
            cost = stage_cost(
                kind, CostCounters.from_dict(saved.get("attributes", {}).get("counters", {})), n_params, 0
            )
            trained = cost["tokens_trained"]
            here = {
                "rollouts": carried["rollouts"] + cost["rollouts"],
                "tflops": carried["tflops"] + cost["flops"]["total"] / 1e12,
                "demo_tokens": carried["demo_tokens"]
                + trained["prefix"]
                + trained["full_demonstration"]
                + trained["sft"],
            }
            m = heldout_accuracy(
                model_obj,
                tokenizer,
                records,
                samples=curve["samples"],
                temperature=1.0,
                max_new_tokens=64,
                batch_size=64,
            )
            points.append(
                {
                    "stage": kind,
                    "step": int(state.get("global_step", 0)),
                    **here,
                    "accuracy": m["accuracy"],
                    "faithful": m["process/faithful"],
                    "faithful_accuracy": m["accuracy"] * (1 - m["process/right_answer_wrong_working"]),
                }
            )
            last = here
            shutil.rmtree(ckpt)
        carried = last
    return points


def run_job(spec: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Train and evaluate one job in this process; writes and returns ``result.json``."""
    import shutil

    from prefix_rft.config.compose import compose_config
    from prefix_rft.pipeline import run_training

    levels = {int(k): n for k, n in spec["levels"].items()}
    started = time.time()
    metrics: dict[str, Any] = {}
    model_dir: str | Path
    model = spec.get("model", MODEL)
    curve: list[dict] = []
    if spec["overrides"] is None:
        from prefix_rft.models.load import resolve_model_path

        model_dir = resolve_model_path(model)
    else:
        if run_dir.exists():  # an unfinished run starts again from scratch
            shutil.rmtree(run_dir)
        saving = [] if "curve" in spec else ["trainer.save_strategy=no"]
        overrides = [*spec["overrides"], f"output_dir={run_dir}", *saving]
        metrics = run_training(compose_config(overrides))
        model_dir = run_dir
    train_s = time.time() - started
    if "curve" in spec:  # its evaluations count as evaluation time
        kind = single_stage_kind(spec["overrides"])
        curve = learning_curve(run_dir, model, spec["curve"], spec["train_data"], kind)
    records = eval_records(levels, spec["train_data"])
    evaluation = evaluate(model_dir, records, spec["samples"])
    result = {
        "spec": spec,
        "train_s": train_s,
        "eval_s": time.time() - started - train_s,
        "metrics": metrics,
        "eval": evaluation,
        "reward_curve": _reward_curve(run_dir),
    }
    if curve:
        result["heldout_curve"] = curve
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "result.json").write_text(json.dumps(result, indent=1))
    return result


def _reward_curve(run_dir: Path) -> list[dict[str, float]]:
    """Per-step training reward (and the hybrid / on-policy split where logged) from log_history.jsonl."""
    path = run_dir / "log_history.jsonl"
    if not path.is_file():
        return []
    keep = ("reward", "rewards/on_policy_mean", "rewards/hybrid_mean", "frac_reward_zero_std", "loss")
    curve = []
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if "step" in row and any(k in row for k in keep):
            curve.append({"step": row["step"], **{k: row[k] for k in keep if k in row}})
    return curve


def run_jobs(jobs: list[dict[str, Any]], out: Path, parallel: int) -> list[dict[str, Any]]:
    """Run every job not finished with the same spec, ``parallel`` processes at a time; return all results."""
    todo, results = [], {}
    for spec in jobs:
        run_dir = out / "runs" / spec["name"] / f"seed{spec['seed']}"
        done = run_dir / "result.json"
        if done.is_file() and json.loads(done.read_text())["spec"] == spec:
            results[id(spec)] = json.loads(done.read_text())
        else:
            todo.append((spec, run_dir))
    print(f"{len(jobs)} jobs, {len(jobs) - len(todo)} already done; {parallel} at a time", flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    running: list[tuple[subprocess.Popen, dict, Path, float]] = []
    while todo or running:
        while todo and len(running) < parallel:
            spec, run_dir = todo.pop(0)
            run_dir.parent.mkdir(parents=True, exist_ok=True)
            spec_path = run_dir.parent / f"seed{spec['seed']}.spec.json"
            spec_path.write_text(json.dumps(spec))
            log = open(run_dir.parent / f"seed{spec['seed']}.log", "w")  # noqa: SIM115 - closed with the process
            cmd = [sys.executable, "-m", "benchmarks.testbed", str(spec_path), str(run_dir)]
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=Path(__file__).parents[1]
            )
            running.append((proc, spec, run_dir, time.time()))
        time.sleep(2)
        for item in list(running):
            proc, spec, run_dir, t0 = item
            if proc.poll() is None:
                continue
            running.remove(item)
            status = "ok" if proc.returncode == 0 and (run_dir / "result.json").is_file() else "FAILED"
            print(f"  {spec['name']:>22} seed {spec['seed']}: {status} ({time.time() - t0:.0f}s)", flush=True)
            if status == "ok":
                results[id(spec)] = json.loads((run_dir / "result.json").read_text())
    return [results[id(s)] for s in jobs if id(s) in results]


if __name__ == "__main__":  # worker: python -m benchmarks.testbed <spec.json> <run dir>
    import logging

    logging.basicConfig(level=logging.WARNING)
    run_job(json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2]))
