"""The decision-token probe: can Prefix-RFT's entropy selection reach the tokens where the model is wrong?

python -m benchmarks.decision_tokens                       # both testbed models, levels 1-4, 200 problems each
python -m benchmarks.decision_tokens --models builtin:tiny-fork --levels 4
python -m benchmarks.decision_tokens --quick --out /tmp/x  # tiny-warm, level 4, 8 problems (the test suite's)
python -m benchmarks.decision_tokens --generic model.name_or_path=DIR data=local data.train_files=F.jsonl

Each demonstration is fed after its prompt (the chat template, as a hybrid rollout's prefix is) and scored in
one forward pass at T=1 (the RL temperature). Testbed mode, for a testbed model and a level: at each token
where the demonstration starts a new equation (``eq1`` ...) and at its ``\\boxed``, the probability of the
demonstration's token, of the model's top token, the entropy, the entropy rank among the demonstration's
tokens, whether ``entropy_top`` (keep fraction 0.2) keeps it when a prefix covers it, and the share of hybrid
rollouts under the default scheduler (over the planned run's steps) whose prefix covers it. The *fork* of a
k-step problem is ``eq<k>``: write the k-th equation, or box an answer one step early; ``p_continue`` there
is the model's probability mass on starting an equation (any digit).

Generic mode, for any model and data with demonstrations (the training config's ``data`` group): the
tokens where the model disagrees with the demonstration (p(demonstration token) < 0.01) and the share of them
that ``entropy_top`` keeps: whether Prefix-RFT's selection can reach what the model lacks, before training.

The keep decision is the package's own mask (:func:`prefix_rft.losses.prefix_update_mask`), computed over one
demonstration's prefix tokens; in training the threshold is computed over all prefix tokens of the batch, so
this is the per-demonstration view of it. Prefix lengths come from the package's scheduler and
:func:`prefix_rft.prefix.sampling.prefix_length`, drawn with the trainer's seeded per-step generator.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import format_table, machine_info, output_dir, write_json
from benchmarks.testbed import BASE_OVERRIDES

NAME = "decision_tokens"
TESTBED_MODELS = ("builtin:tiny-warm", "builtin:tiny-fork")
DISAGREE_BELOW = 0.01  # p(demonstration token) under which the model is said to disagree with it
CONFIDENT_ABOVE = 0.9  # p(top token) above which a disagreement is a confident error
# The planned comparison's run: 120 steps, the scheduler decaying over all of them.
RUN_STEPS = 120
DRAWS_PER_STEP = 8  # one hybrid rollout per group, 8 groups per step (conf/scale/cpu.yaml)


# ---------------------------------------------------------------------------- per-token statistics
def token_statistics(
    model, tokenizer, prompts: Sequence[Any], demos: Sequence[Sequence[int]], temperature: float = 1.0
) -> list[dict[str, list]]:
    """Per demonstration, per token: ``p_demo``, ``p_top``, ``top_id``, ``entropy`` (nats) and ``p_digit``
    (mass on the ten digits), from the model's next-token distribution after prompt + preceding demo tokens.

    ``prompts`` are chat messages (formatted with the tokenizer's chat template and generation prompt) or
    already-formatted strings; ``demos`` are token ids. One unpadded forward pass per demonstration (exact
    positions; the probe is cheap next to training).
    """
    import torch
    from trl.trainer.utils import entropy_from_logits

    digit_ids = [tokenizer.convert_tokens_to_ids(str(d)) for d in range(10)]
    digit_ids = [i for i in digit_ids if isinstance(i, int) and i != tokenizer.unk_token_id]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.no_grad():
            for prompt, demo in zip(prompts, demos):
                text = (
                    prompt
                    if isinstance(prompt, str)
                    else tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
                )
                prompt_ids = tokenizer(text=text, add_special_tokens=False)["input_ids"]
                ids = torch.tensor([list(prompt_ids) + list(demo)], device=device)
                logits = model(input_ids=ids).logits[0].float() / temperature
                # The distribution that predicts demo token j sits at position len(prompt) + j - 1.
                logits = logits[len(prompt_ids) - 1 : len(prompt_ids) + len(demo) - 1]
                probs = torch.softmax(logits, dim=-1)
                target = torch.tensor(list(demo), device=device)
                top = probs.max(dim=-1)
                out.append(
                    {
                        "ids": list(demo),
                        "p_demo": probs.gather(1, target[:, None])[:, 0].tolist(),
                        "p_top": top.values.tolist(),
                        "top_id": top.indices.tolist(),
                        "entropy": entropy_from_logits(logits).tolist(),
                        "p_digit": probs[:, digit_ids].sum(dim=-1).tolist()
                        if digit_ids
                        else [0.0] * len(demo),
                    }
                )
    finally:
        model.train(was_training)
    return out


def entropy_ranks(entropies: Sequence[float]) -> list[int]:
    """Rank of each token's entropy among its demonstration's tokens: 1 = highest (ties: earlier first)."""
    order = sorted(range(len(entropies)), key=lambda i: (-entropies[i], i))
    ranks = [0] * len(entropies)
    for rank, i in enumerate(order, start=1):
        ranks[i] = rank
    return ranks


def kept_by_prefix(entropies: Sequence[float], prefix_len: int, keep_fraction: float = 0.2) -> list[bool]:
    """Which tokens ``entropy_top`` keeps when a prefix of ``prefix_len`` tokens covers the demonstration
    (the package's mask, threshold over this prefix's tokens); tokens past the prefix are never kept."""
    import torch

    from prefix_rft.losses import prefix_update_mask

    n = len(entropies)
    ent = torch.tensor([list(entropies)], dtype=torch.float32)
    prefix_mask = torch.zeros(1, n, dtype=torch.bool)
    prefix_mask[0, :prefix_len] = True
    loss_mask = torch.ones(1, n, dtype=torch.bool)
    keep = prefix_update_mask(prefix_mask, loss_mask, ent, "entropy_top", keep_fraction=keep_fraction)
    return keep[0].tolist()


def prefix_length_draws(
    demo_len: int,
    scheduler,
    steps: int,
    draws_per_step: int,
    seed: int = 0,
    min_prefix_tokens: int = 1,
    budget: int | None = None,
) -> list[int]:
    """Prefix lengths of the hybrid rollouts of a ``demo_len``-token demonstration over ``steps`` steps: the
    scheduler's ratios drawn with the trainer's per-step generator, cut as the trainer cuts them."""
    from prefix_rft.prefix.sampling import prefix_length
    from prefix_rft.prefix.schedulers import step_generator

    lengths = []
    for step in range(steps):
        ratios = scheduler.sample(step, draws_per_step, generator=step_generator(seed, step))
        for ratio in ratios:
            length = prefix_length(ratio, demo_len, min_prefix_tokens)
            lengths.append(min(length, budget - 1) if budget is not None else length)
    return lengths


def coverage_and_keep(
    entropies: Sequence[float], lengths: Sequence[int], keep_fraction: float = 0.2
) -> tuple[list[float], list[float], list[bool]]:
    """Per token: the share of ``lengths`` (hybrid rollouts) whose prefix covers it, the share of those
    covering rollouts in which ``entropy_top`` keeps it (NaN if none covers it), and whether it is kept when
    the longest allowed prefix (all but the last token) covers the demonstration."""
    n = len(entropies)
    masks = {length: kept_by_prefix(entropies, length, keep_fraction) for length in set(lengths)}
    covered, kept = [0] * n, [0] * n
    for length in lengths:
        mask = masks[length]
        for i in range(min(length, n)):
            covered[i] += 1
            kept[i] += mask[i]
    share = [c / len(lengths) if lengths else 0.0 for c in covered]
    kept_share = [k / c if c else float("nan") for k, c in zip(kept, covered)]
    full = kept_by_prefix(entropies, max(n - 1, 1), keep_fraction)
    return share, kept_share, full


# ---------------------------------------------------------------------------- testbed mode
def decision_positions(tokenizer, solution: str) -> dict[str, int]:
    """{label: token index} of the decision tokens of a synthetic solution: the first token of each
    equation (``eq1`` ...) and the first token of ``\\boxed`` (``boxed``)."""
    from prefix_rft.data.synthetic import _EQUATION

    enc = tokenizer(text=solution, add_special_tokens=False, return_offsets_mapping=True)

    def token_at(char: int) -> int:
        for i, (start, end) in enumerate(enc["offset_mapping"]):
            if start <= char < max(end, start + 1):
                return i
        raise ValueError(f"no token covers character {char} of {solution!r}")

    positions = {f"eq{k}": token_at(m.start()) for k, m in enumerate(_EQUATION.finditer(solution), start=1)}
    positions["boxed"] = token_at(solution.index("\\boxed"))
    return positions


def _mean(values: Sequence[float]) -> float:
    vals = [v for v in values if v == v]  # NaN (no covering rollout) left out
    return sum(vals) / len(vals) if vals else float("nan")


def _median(values: Sequence[float]) -> float:
    vals = sorted(values)
    if not vals:
        return float("nan")
    mid = len(vals) // 2
    return vals[mid] if len(vals) % 2 else (vals[mid - 1] + vals[mid]) / 2


def probe_testbed(
    model_name: str, level: int, problems: int, steps: int = RUN_STEPS, keep_fraction: float = 0.2
) -> dict[str, Any]:
    """The decision-token table of ``model_name`` on ``problems`` profile problems of ``level`` steps."""
    import math

    from prefix_rft.config.compose import compose_config
    from prefix_rft.models.load import load_model, load_tokenizer, resolve_model_path
    from prefix_rft.prefix.schedulers import scheduler_from_config
    from prefix_rft.testbed_model import profile_records

    cfg = compose_config(
        [
            f"model.name_or_path={model_name}",
            "output_dir=unused",
            *BASE_OVERRIDES,
            "algorithm=prefix_rft",
            f"trainer.max_steps={steps}",
            f"scheduler.decay_steps={steps}",
        ]
    )
    path = resolve_model_path(cfg.model.name_or_path)
    model, tok = load_model(cfg.model, path), load_tokenizer(cfg.model, path)
    scheduler = scheduler_from_config(cfg.scheduler)
    budget = int(cfg.trainer.max_completion_length)
    records = profile_records(problems, levels=(level,))
    demos = [tok(text=r["solution"], add_special_tokens=False)["input_ids"] for r in records]
    stats = token_statistics(
        model, tok, [r["prompt"] for r in records], demos, float(cfg.trainer.temperature)
    )
    per_label: dict[str, dict[str, list]] = {}
    all_entropy: list[float] = []
    for r, s in zip(records, stats):
        n = len(s["ids"])
        lengths = prefix_length_draws(
            n, scheduler, steps, DRAWS_PER_STEP, int(cfg.seed), int(cfg.algorithm.min_prefix_tokens), budget
        )
        share, kept_share, full = coverage_and_keep(s["entropy"], lengths, keep_fraction)
        ranks = entropy_ranks(s["entropy"])
        top_k = math.ceil(keep_fraction * n - 1e-9)
        all_entropy += s["entropy"]
        for label, i in decision_positions(tok, r["solution"]).items():
            row = per_label.setdefault(label, {})
            for key, value in (
                ("p_demo", s["p_demo"][i]),
                ("p_top", s["p_top"][i]),
                ("top_is_demo", float(s["top_id"][i] == s["ids"][i])),
                ("p_continue", s["p_digit"][i]),
                ("entropy", s["entropy"][i]),
                ("rank", ranks[i]),
                ("rank_fraction", ranks[i] / n),
                ("in_top_fraction", float(ranks[i] <= top_k)),
                ("kept_full_prefix", float(full[i])),
                ("covered_share", share[i]),
                ("kept_when_covered", kept_share[i]),
            ):
                row.setdefault(key, []).append(value)
    order = sorted(per_label, key=lambda k: (k == "boxed", int(k[2:]) if k != "boxed" else 0))
    summary = {}
    for label in order:
        row = per_label[label]
        summary[label] = {
            "mean_p_demo": _mean(row["p_demo"]),
            "median_p_demo": _median(row["p_demo"]),
            "mean_p_top": _mean(row["p_top"]),
            "top_is_demo": _mean(row["top_is_demo"]),
            "mean_p_continue": _mean(row["p_continue"]),
            "mean_entropy": _mean(row["entropy"]),
            "median_entropy": _median(row["entropy"]),
            "median_rank": _median(row["rank"]),
            "mean_rank_fraction": _mean(row["rank_fraction"]),
            "in_top_fraction": _mean(row["in_top_fraction"]),
            "kept_full_prefix": _mean(row["kept_full_prefix"]),
            "covered_share": _mean(row["covered_share"]),
            "kept_when_covered": _mean(row["kept_when_covered"]),
        }
    return {
        "model": model_name,
        "level": level,
        "problems": len(records),
        "fork": f"eq{level}",
        "median_demo_token_entropy": _median(all_entropy),
        "settings": {
            "keep_fraction": keep_fraction,
            "scheduler": scheduler.state_dict(),
            "steps": steps,
            "draws_per_step": DRAWS_PER_STEP,
            "temperature": float(cfg.trainer.temperature),
            "max_completion_length": budget,
        },
        "summary": summary,
        "per_problem": {label: per_label[label] for label in order},
    }


TESTBED_COLUMNS = [
    "token",
    "p(demo)",
    "median p(demo)",
    "p(top)",
    "top = demo",
    "p(continue)",
    "entropy",
    "median rank",
    "in top 20%",
    "kept (full prefix)",
    "rollouts covering",
    "kept when covered",
]


def testbed_table(result: dict[str, Any]) -> str:
    """The decision-token table of one (model, level) as markdown."""
    rows = []
    for label, s in result["summary"].items():
        name = f"{label} (fork)" if label == result["fork"] else label
        rows.append(
            [
                name,
                f"{s['mean_p_demo']:.3g}",
                f"{s['median_p_demo']:.3g}",
                f"{s['mean_p_top']:.3f}",
                f"{s['top_is_demo']:.2f}",
                f"{s['mean_p_continue']:.3g}",
                f"{s['mean_entropy']:.3g}",
                f"{s['median_rank']:.0f}",
                f"{s['in_top_fraction']:.2f}",
                f"{s['kept_full_prefix']:.2f}",
                f"{s['covered_share']:.2f}",
                f"{s['kept_when_covered']:.2f}",
            ]
        )
    return format_table(TESTBED_COLUMNS, rows)


# ---------------------------------------------------------------------------- generic mode
def probe_generic(
    overrides: Sequence[str], problems: int, steps: int = RUN_STEPS, keep_fraction: float = 0.2
) -> dict[str, Any]:
    """Disagreement tokens (p(demo) < :data:`DISAGREE_BELOW`) of any model on any data with demonstrations
    (``overrides``: the training command's Hydra overrides), and the share ``entropy_top`` keeps."""
    from prefix_rft.config.compose import compose_config
    from prefix_rft.data.columns import first_demonstration
    from prefix_rft.data.sources import load_train_dataset
    from prefix_rft.models.load import load_model, load_tokenizer, resolve_model_path
    from prefix_rft.prefix.schedulers import scheduler_from_config

    cfg = compose_config(["output_dir=unused", "algorithm=prefix_rft", *overrides])
    ds = load_train_dataset(cfg.data, apply_pass_rates=False)
    if "demonstration" not in ds.column_names:
        print(
            f"error: the data has no demonstration column (columns: {ds.column_names}); the probe needs "
            "worked demonstrations (data.demonstration_column)",
            file=sys.stderr,
        )
        raise SystemExit(2)
    ds = ds.select(range(min(problems, len(ds))))
    path = resolve_model_path(cfg.model.name_or_path)
    model, tok = load_model(cfg.model, path), load_tokenizer(cfg.model, path)
    scheduler = scheduler_from_config(cfg.scheduler)
    budget = int(cfg.trainer.max_completion_length)
    steps = int(cfg.trainer.max_steps) if int(cfg.trainer.max_steps) > 0 else steps
    demos = [
        tok(text=first_demonstration(d), add_special_tokens=False)["input_ids"][: budget - 1]
        for d in ds["demonstration"]
    ]
    stats = token_statistics(model, tok, list(ds["prompt"]), demos, float(cfg.trainer.temperature))
    totals = {"tokens": 0, "disagree": 0, "kept_full": 0, "kept_full_all": 0, "covered": 0.0, "kept_cov": []}
    confident = {"n": 0, "kept": 0}
    for s in stats:
        n = len(s["ids"])
        if n < 2:
            continue
        lengths = prefix_length_draws(
            n, scheduler, steps, DRAWS_PER_STEP, int(cfg.seed), int(cfg.algorithm.min_prefix_tokens), budget
        )
        share, kept_share, full = coverage_and_keep(s["entropy"], lengths, keep_fraction)
        totals["tokens"] += n
        totals["kept_full_all"] += sum(full)
        for i in range(n):
            if s["p_demo"][i] < DISAGREE_BELOW:
                totals["disagree"] += 1
                totals["kept_full"] += full[i]
                totals["covered"] += share[i]
                totals["kept_cov"].append(kept_share[i])
                if s["p_top"][i] > CONFIDENT_ABOVE:
                    confident["n"] += 1
                    confident["kept"] += full[i]
    d = totals["disagree"]
    return {
        "model": cfg.model.name_or_path,
        "overrides": list(overrides),
        "demonstrations": len(stats),
        "tokens": totals["tokens"],
        "disagree_below": DISAGREE_BELOW,
        "disagreement_tokens": d,
        "disagreement_per_demonstration": d / max(len(stats), 1),
        "kept_share_all_tokens": totals["kept_full_all"] / max(totals["tokens"], 1),
        "kept_share_disagreement": totals["kept_full"] / d if d else float("nan"),
        "covered_share_disagreement": totals["covered"] / d if d else float("nan"),
        "kept_when_covered_disagreement": _mean(totals["kept_cov"]),
        "confident_above": CONFIDENT_ABOVE,
        "confident_disagreement_tokens": confident["n"],
        "kept_share_confident_disagreement": confident["kept"] / confident["n"]
        if confident["n"]
        else float("nan"),
        "settings": {"keep_fraction": keep_fraction, "scheduler": scheduler.state_dict(), "steps": steps},
    }


def generic_table(result: dict[str, Any]) -> str:
    """One-row markdown summary of the generic probe."""
    return format_table(
        [
            "demonstrations",
            "tokens",
            f"p(demo) < {DISAGREE_BELOW}",
            "per demonstration",
            "kept (all tokens)",
            "kept (disagreeing)",
            "rollouts covering",
            "kept when covered",
            f"confident (p(top) > {CONFIDENT_ABOVE})",
            "kept (confident)",
        ],
        [
            [
                result["demonstrations"],
                result["tokens"],
                result["disagreement_tokens"],
                f"{result['disagreement_per_demonstration']:.2f}",
                f"{result['kept_share_all_tokens']:.3f}",
                f"{result['kept_share_disagreement']:.3f}",
                f"{result['covered_share_disagreement']:.3f}",
                f"{result['kept_when_covered_disagreement']:.3f}",
                result["confident_disagreement_tokens"],
                f"{result['kept_share_confident_disagreement']:.3f}",
            ]
        ],
    )


def write_results(out: Path, result: dict[str, Any]) -> None:
    """``decision_tokens.json`` (summaries, settings, machine) and, compact, the per-problem values of every
    decision token (``decision_tokens_per_problem.json``, rounded to 6 decimals)."""
    import json

    per_problem = [
        {
            "model": r["model"],
            "level": r["level"],
            "per_problem": {
                label: {key: [round(v, 6) for v in values] for key, values in columns.items()}
                for label, columns in r["per_problem"].items()
            },
        }
        for r in result["results"]
    ]
    summary = {
        **result,
        "results": [{k: v for k, v in r.items() if k != "per_problem"} for r in result["results"]],
    }
    write_json(out / f"{NAME}.json", summary)
    (out / f"{NAME}_per_problem.json").write_text(json.dumps(per_problem) + "\n")


def record_in_profiles(results: Sequence[dict[str, Any]]) -> list[Path]:
    """Write the per-level summaries of each shipped testbed model into its ``PROFILE.json`` (key
    ``decision_tokens``), next to the skill profile they explain; returns the files written."""
    import json

    from prefix_rft.models.tiny import SHIPPED_DIRS

    written = []
    for name, folder in SHIPPED_DIRS.items():
        mine = [r for r in results if r["model"] == f"builtin:{name}"]
        path = folder / "PROFILE.json"
        if not mine or not path.is_file():
            continue
        profile = json.loads(path.read_text())
        profile["decision_tokens"] = {
            "what": "benchmarks/decision_tokens.py: per decision token, means over the profile problems",
            "settings": mine[0]["settings"],
            **{
                f"steps_{r['level']}": {
                    "problems": r["problems"],
                    "fork": r["fork"],
                    "median_demo_token_entropy": round(r["median_demo_token_entropy"], 5),
                    **{
                        label: {k: round(v, 6) for k, v in summary.items()}
                        for label, summary in r["summary"].items()
                    },
                }
                for r in mine
            },
        }
        path.write_text(json.dumps(profile, indent=2) + "\n")
        written.append(path)
    return written


# ---------------------------------------------------------------------------- choosing tiny-fork's length
def fork_candidates(
    folder: str | Path,
    problems: int,
    samples: int = 4,
    steps: Sequence[int] = (),
    measure_accuracy: bool = True,
) -> list[dict[str, Any]]:
    """For each ``checkpoint-<step>`` in ``folder`` (a constant-lr warm start, see ``FORK_RECIPE``; only
    ``steps`` if given): the probe's fork numbers on 4-step problems and, with ``measure_accuracy``, 4-step
    T=1 accuracy (avg@``samples``) and faithful accuracy (right answer with the problem's own chain)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from prefix_rft.eval.heldout import heldout_accuracy
    from prefix_rft.testbed_model import profile_records

    rows = []
    checkpoints = sorted(Path(folder).glob("checkpoint-*"), key=lambda d: int(d.name.split("-")[1]))
    checkpoints = [c for c in checkpoints if not steps or int(c.name.split("-")[1]) in steps]
    for ckpt in checkpoints:
        probe = probe_testbed(str(ckpt), 4, problems)
        fork, boxed = probe["summary"]["eq4"], probe["summary"]["boxed"]
        tok = AutoTokenizer.from_pretrained(ckpt)
        model = AutoModelForCausalLM.from_pretrained(ckpt)
        row: dict[str, Any] = {
            "step": int(ckpt.name.split("-")[1]),
            "fork_p_continue": fork["mean_p_continue"],
            "fork_p_demo": fork["mean_p_demo"],
            "fork_entropy": fork["mean_entropy"],
            "fork_in_top_20": fork["in_top_fraction"],
            "boxed_p_demo": boxed["mean_p_demo"],
        }
        if not measure_accuracy:
            rows.append(row)
            print(row, flush=True)
            continue
        for level in (4,):
            m = heldout_accuracy(
                model,
                tok,
                profile_records(problems, levels=(level,)),
                samples=samples,
                temperature=1.0,
                max_new_tokens=64,
                batch_size=64,
            )
            row[f"t1_accuracy_{level}"] = m["accuracy"]
            row[f"t1_faithful_working_{level}"] = m["process/faithful"]
            # Right answers with the problem's own chain (a right answer after a skipped step is a guess).
            row[f"t1_faithful_accuracy_{level}"] = m["accuracy"] * (
                1 - m["process/right_answer_wrong_working"]
            )
        rows.append(row)
        print(row, flush=True)
    return rows


# ---------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the probe, print the tables, write ``decision_tokens.json`` (testbed) or ``generic.json``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny-warm, level 4, 8 problems, 4 scheduler steps")
    p.add_argument(
        "--models", default=None, help=f"comma-separated testbed models (default {TESTBED_MODELS})"
    )
    p.add_argument("--levels", default=None, help="comma-separated levels (default 1,2,3,4)")
    p.add_argument("--problems", type=int, default=None, help="problems per level (default 200)")
    p.add_argument("--steps", type=int, default=None, help=f"scheduler steps drawn (default {RUN_STEPS})")
    p.add_argument("--out", default=None, help=f"output folder (default benchmarks/results/{NAME}/)")
    p.add_argument("--generic", nargs="+", metavar="OVERRIDE", help="any model + data: training overrides")
    p.add_argument(
        "--record-profile",
        action="store_true",
        help="also write each shipped testbed model's tables into its PROFILE.json (beside its profile)",
    )
    p.add_argument("--checkpoints", default=None, help="measure the fork of each checkpoint-N in this folder")
    p.add_argument("--checkpoint-steps", default="", help="only these checkpoints (comma-separated steps)")
    p.add_argument("--no-accuracy", action="store_true", help="--checkpoints: the probe only, no sampling")
    p.add_argument("--samples", type=int, default=4, help="--checkpoints: T=1 samples per problem")
    ns = p.parse_args(argv)
    problems = ns.problems or (8 if ns.quick else 200)
    steps = ns.steps or (4 if ns.quick else RUN_STEPS)
    started = time.time()
    out = output_dir(NAME, ns.out)
    if ns.checkpoints:
        wanted = [int(x) for x in ns.checkpoint_steps.split(",") if x]
        rows = fork_candidates(ns.checkpoints, problems, ns.samples, wanted, not ns.no_accuracy)
        result = {
            "folder": ns.checkpoints,
            "rows": rows,
            "machine": machine_info(),
            "wall_s": time.time() - started,
        }
        write_json(out / f"fork_candidates{'_' + ns.checkpoint_steps if wanted else ''}.json", result)
        return result
    if ns.generic:
        result = probe_generic(ns.generic, problems, steps)
        text = generic_table(result)
        result.update({"table": text, "machine": machine_info(), "wall_s": time.time() - started})
        write_json(out / "generic.json", result)
        print(text)
        print(f"\nwall {result['wall_s']:.0f}s; results in {out}")
        return result
    models = (
        ns.models.split(",") if ns.models else (["builtin:tiny-warm"] if ns.quick else list(TESTBED_MODELS))
    )
    levels = [int(x) for x in ns.levels.split(",")] if ns.levels else ([4] if ns.quick else [1, 2, 3, 4])
    tables = []
    results = []
    for model_name in models:
        for level in levels:
            r = probe_testbed(model_name, level, problems, steps)
            text = testbed_table(r)
            r["table"] = text
            results.append(r)
            header = (
                f"{model_name}, {level}-step problems ({r['problems']}), median demonstration-token entropy "
                f"{r['median_demo_token_entropy']:.3g} nats"
            )
            tables.append(f"{header}\n\n{text}")
            print(f"{header}\n\n{text}\n", flush=True)
    result = {
        "options": {"models": models, "levels": levels, "problems": problems, "steps": steps},
        "results": results,
        "machine": machine_info(),
        "wall_s": time.time() - started,
    }
    write_results(out, result)
    if ns.record_profile:
        for path in record_in_profiles(results):
            print(f"recorded in {path}")
    print(f"wall {result['wall_s']:.0f}s; results in {out}")
    return result


if __name__ == "__main__":
    main()
