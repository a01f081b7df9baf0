"""The held-out evaluation a training run does before and after training.

Beside accuracy it reports what an accuracy needs to be read: accuracy by difficulty, the chance
baselines of the set (:mod:`prefix_rft.eval.chance`), the process metrics of the synthetic task (does the
working have the right steps and arithmetic, :func:`prefix_rft.data.synthetic.check_working`), and the
per-problem scores from which :func:`paired_difference` gives an interval for before -> after.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch


@torch.no_grad()
def sample_completions(
    model,
    tokenizer,
    records: list[dict],
    *,
    samples: int = 4,
    temperature: float = 0.6,
    max_new_tokens: int = 96,
    batch_size: int = 32,
    seed: int = 0,
    on_batch: Callable[[int, int], None] | None = None,
) -> tuple[list[list[str]], list[list[float]]]:
    """``samples`` completions per record ({prompt, answer}) and their grades (1/0), in record order.

    ``temperature`` 0 is greedy decoding (then one sample per record is enough). A record with
    ``prefix_ids`` (token ids) continues them after the generation prompt, as a guided row of
    ``algorithm=prefix_in_prompt`` does: prefix + continuation stay within ``max_new_tokens``, and the
    returned (and graded) text is the prefix's text followed by the continuation. ``on_batch(done,
    total)`` is called after each graded batch with the number of records done so far.
    """
    from prefix_rft.eval.loop import graded_batches

    was_training = model.training
    model.eval()
    torch.manual_seed(seed)
    device = next(model.parameters()).device
    old_side, tokenizer.padding_side = tokenizer.padding_side, "left"

    def generate(batch: list[dict]) -> list[str]:
        texts = [
            tokenizer.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=False)
            for r in batch
        ]
        prefixes = [list(r.get("prefix_ids") or []) for r in batch]
        ids = [t + pre for t, pre in zip(tokenizer(texts, add_special_tokens=False)["input_ids"], prefixes)]
        enc = tokenizer.pad({"input_ids": ids}, return_tensors="pt").to(device)
        out = model.generate(
            **enc,
            do_sample=temperature > 0,
            temperature=temperature if temperature > 0 else None,
            top_p=1.0,
            top_k=None,
            max_new_tokens=max(max_new_tokens - min(map(len, prefixes)), 1),
            num_return_sequences=samples,
            pad_token_id=tokenizer.pad_token_id,
        )
        new_ids = out[:, enc["input_ids"].shape[1] :].tolist()
        if not any(prefixes):
            return tokenizer.batch_decode(new_ids, skip_special_tokens=True)
        texts = []
        for i, row in enumerate(new_ids):
            prefix = prefixes[i // samples]
            # Prefix + continuation within max_new_tokens (the trainer's trajectory budget).
            budget = max(max_new_tokens - len(prefix), 1)
            texts.append(tokenizer.decode(prefix + row[:budget], skip_special_tokens=True))
        return texts

    completions: list[str] = []
    scores: list[float] = []
    try:
        for _, texts, graded in graded_batches(
            records, generate, lambda r: ("boxed", r["answer"]), batch_size=batch_size, per_item=samples
        ):
            completions.extend(texts)
            scores.extend(g.score for g in graded)
            if on_batch is not None:
                on_batch(len(completions) // samples, len(records))
    finally:
        tokenizer.padding_side = old_side
        model.train(was_training)
    cut = range(len(records))
    return (
        [completions[i * samples : (i + 1) * samples] for i in cut],
        [scores[i * samples : (i + 1) * samples] for i in cut],
    )


def sample_scores(model, tokenizer, records: list[dict], **kwargs) -> list[list[float]]:
    """Grades (1/0) of the sampled completions per record (see :func:`sample_completions`)."""
    return sample_completions(model, tokenizer, records, **kwargs)[1]


def _problem_text(record: dict) -> str:
    if "problem" in record:
        return record["problem"]
    users = [m["content"] for m in record["prompt"] if m.get("role") == "user"]
    return users[-1] if users else ""


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _summarise(records, completions, scores, prefix: str) -> dict:
    """Accuracy overall and by number of steps, process metrics, per-problem scores (keys under ``prefix``)."""
    from prefix_rft.data.synthetic import check_working, parse_problem

    flat = [x for row in scores for x in row]
    out: dict = {f"{prefix}accuracy": _mean(flat)}
    by_steps: dict[int, list[float]] = {}
    for r, row in zip(records, scores):
        if "num_steps" in r:
            by_steps.setdefault(r["num_steps"], []).extend(row)
    for steps, vals in sorted(by_steps.items()):
        out[f"{prefix}accuracy/steps_{steps}"] = _mean(vals)
    checks = []
    for r, texts, row in zip(records, completions, scores):
        problem = _problem_text(r)
        if parse_problem(problem) is not None:
            checks += [(check_working(problem, t), s) for t, s in zip(texts, row)]
    if checks:
        for key in ("steps_ok", "arithmetic_ok", "faithful"):
            out[f"{prefix}process/{key}"] = _mean([float(c[key]) for c, _ in checks])
        right = [c for c, s in checks if s > 0]
        # Among right final answers, the share whose working is not the problem's chain: guesses/shortcuts.
        out[f"{prefix}process/right_answer_wrong_working"] = (
            _mean([float(not c["faithful"]) for c in right]) if right else 0.0
        )
    out[f"{prefix}per_problem"] = [_mean(row) for row in scores]
    return out


def _progress(label: str | None, what: str, started: float) -> Callable[[int, int], None] | None:
    """A batch callback logging ``held-out <label>: <what> 64/128 problems (12 s)`` on the progress logger."""
    if label is None:
        return None
    from prefix_rft.training.progress import logger

    def report(done: int, total: int) -> None:
        logger.info(
            "held-out %s: %s %d/%d problems (%.0f s)", label, what, done, total, time.perf_counter() - started
        )

    return report


def heldout_accuracy(
    model,
    tokenizer,
    records: list[dict],
    *,
    samples: int = 4,
    greedy: bool = False,
    label: str | None = None,
    **kwargs,
) -> dict:
    """Held-out metrics of ``model`` on ``records`` ({prompt, answer[, num_steps, problem]}).

    ``accuracy`` is avg@``samples`` at ``kwargs['temperature']``, also by number of steps
    (``accuracy/steps_<k>``); ``process/*`` are the synthetic task's working checks; ``chance/*`` the
    set's chance baselines; ``per_problem`` the mean score of each record (for paired comparisons).
    ``greedy=True`` adds the same under ``greedy/`` for greedy decoding. ``kwargs``: temperature,
    max_new_tokens, batch_size, seed (see :func:`sample_completions`). ``label`` (e.g. ``before training``):
    log a start line and one progress line per batch, as training logs its steps, so that the minute an
    evaluation takes on CPU is not silent.
    """
    from prefix_rft.eval.chance import chance_baselines

    if not records:
        return {}
    started = time.perf_counter()
    if label is not None:
        from prefix_rft.training.progress import logger

        logger.info(
            "held-out %s: evaluating %d problems (%d samples each%s)",
            label,
            len(records),
            samples,
            " + greedy" if greedy else "",
        )
    completions, scores = sample_completions(
        model, tokenizer, records, samples=samples, on_batch=_progress(label, "sampled", started), **kwargs
    )
    result = _summarise(records, completions, scores, "")
    if greedy:
        greedy_kwargs = {**kwargs, "temperature": 0.0}
        completions, scores = sample_completions(
            model,
            tokenizer,
            records,
            samples=1,
            on_batch=_progress(label, "greedy", started),
            **greedy_kwargs,
        )
        result.update(_summarise(records, completions, scores, "greedy/"))
    chance = chance_baselines([_problem_text(r) for r in records], [str(r["answer"]) for r in records])
    result.update({f"chance/{k}": v for k, v in chance.items()})
    return result


def paired_difference(before: list[float], after: list[float]) -> tuple[float, float]:
    """Mean and standard error of ``after - before`` over the same problems (per-problem scores)."""
    if len(before) != len(after) or not before:
        raise ValueError(f"paired scores need equal, non-empty lengths; got {len(before)} and {len(after)}")
    diffs = [a - b for a, b in zip(after, before)]
    mean = _mean(diffs)
    if len(diffs) < 2:
        return mean, float("nan")
    var = sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1)
    return mean, math.sqrt(var / len(diffs))


def format_change(before: dict, after: dict, key: str = "accuracy") -> str:
    """``before 0.515 -> after 0.601 (+0.086, 95% CI +0.052..+0.120)``; the interval is over problems."""
    b, a = before.get(key), after.get(key)
    if b is None or a is None:
        return f"before {b if b is not None else 'n/a'} -> after {a if a is not None else 'n/a'}"
    per = key[: -len("accuracy")] + "per_problem"
    text = f"before {b:.3f} -> after {a:.3f}"
    if before.get(per) and after.get(per) and len(before[per]) == len(after[per]):
        delta, se = paired_difference(before[per], after[per])
        if not math.isnan(se):
            text += f" ({delta:+.3f}, 95% CI {delta - 1.96 * se:+.3f}..{delta + 1.96 * se:+.3f})"
    return text


def report_lines(before: dict, after: dict, num_problems: int, samples: int, temperature: float) -> list[str]:
    """The lines a run prints at its end: before -> after with its interval, greedy, chance, process."""
    lines = [
        f"held-out accuracy ({num_problems} problems, avg@{samples}, T={temperature:g}): "
        + format_change(before, after)
    ]
    if "greedy/accuracy" in before or "greedy/accuracy" in after:
        lines.append("  greedy: " + format_change(before, after, "greedy/accuracy"))
    for key in sorted(k for k in {**before, **after} if k.startswith("accuracy/steps_")):
        lines.append(f"  {key[len('accuracy/') :]}: " + format_change(before, after, key))
    final = after or before
    if "chance/best_constant" in final:
        lines.append(
            f"  chance: best constant answer {final['chance/best_constant']:.3f}, "
            f"last number in the problem {final['chance/last_number']:.3f}"
        )
    if "process/faithful" in final:
        # A side measured without process metrics (e.g. an older run's stored "before") shows only the other.
        parts = [
            f"{name} "
            + " -> ".join(
                f"{side['process/' + name]:.3f}" for side in (before, after) if "process/" + name in side
            )
            for name in ("faithful", "right_answer_wrong_working")
        ]
        lines.append("  working: " + ", ".join(parts))
    return lines
