"""Pass rates of a model on training prompts: the measurement behind the hard subset
(``data.pass_rate_file`` / ``data.max_pass_rate``, see :mod:`prefix_rft.data.subsets`) and behind POPE's
per-problem guidance length (``algorithm.prefix_ratio_file`` of ``algorithm=prefix_in_prompt``)."""

from __future__ import annotations

from collections.abc import Sequence

from datasets import Dataset

from prefix_rft.data.columns import DEMONSTRATION, first_demonstration
from prefix_rft.data.subsets import problem_key
from prefix_rft.prefix.sampling import prompt_prefix_length


def measure_pass_rates(
    model,
    tokenizer,
    ds: Dataset,
    *,
    samples: int = 8,
    temperature: float = 1.0,
    max_new_tokens: int = 256,
    batch_size: int = 16,
    seed: int = 0,
    prefix_ratios: Sequence[float] = (),
) -> list[dict]:
    """Pass rate (correct samples / ``samples``) of ``model`` on each row of ``ds`` (prompt, answer).

    With ``prefix_ratios`` (increasing, in (0, 1)) each row also gets ``prefix_ratio``: the shortest
    demonstration prefix, as a fraction of its tokens, after which at least one of ``samples`` continuations
    is correct (POPE's "shortest prefix that makes the problem solvable"). Only problems never solved without
    a prefix are tried with prefixes, shortest first; 0.0 means solved without one, None means no ratio
    tried solved it (or the row has no demonstration). Prefixes are cut as the trainer cuts them
    (:func:`prefix_rft.prefix.sampling.prompt_prefix_length`, first demonstration of a list).
    """
    from prefix_rft.eval.heldout import sample_scores

    kwargs = dict(
        samples=samples,
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        seed=seed,
    )
    records = [{"prompt": p, "answer": a} for p, a in zip(ds["prompt"], ds["answer"])]
    scores = sample_scores(model, tokenizer, records, **kwargs)
    rows = [
        {"problem": problem_key(r["prompt"]), "pass_rate": sum(s) / samples} for r, s in zip(records, scores)
    ]
    ratios = sorted(float(r) for r in prefix_ratios)
    if not ratios:
        return rows
    if ratios[0] <= 0 or ratios[-1] >= 1:
        raise ValueError(f"prefix ratios must lie in (0, 1), got {ratios}")
    demos = ds[DEMONSTRATION] if DEMONSTRATION in ds.column_names else [None] * len(ds)
    for row in rows:
        row["prefix_ratio"] = 0.0 if row["pass_rate"] > 0 else None
    # Each unsolved problem's demonstration, tokenized once for every ratio tried.
    demo_ids = {
        i: tokenizer(text=first_demonstration(demos[i]), add_special_tokens=False)["input_ids"]
        for i, row in enumerate(rows)
        if row["prefix_ratio"] is None and first_demonstration(demos[i])
    }
    todo = list(demo_ids)
    for ratio in ratios:  # shortest first: a problem leaves the search at its first solving ratio
        if not todo:
            break
        guided = []
        for i in todo:
            ids = demo_ids[i]
            guided.append(
                dict(records[i], prefix_ids=ids[: prompt_prefix_length(ratio, len(ids), max_new_tokens)])
            )
        solved = sample_scores(model, tokenizer, guided, **kwargs)
        for i, s in zip(todo, solved):
            if any(s):
                rows[i]["prefix_ratio"] = ratio
        todo = [i for i in todo if rows[i]["prefix_ratio"] is None]
    return rows


def prefix_ratio_counts(rows: list[dict], ratios: Sequence[float]) -> dict[str, int]:
    """How the problems of a ``--prefix-ratios`` measurement came out: solved without a prefix, first solved
    at each ratio, never solved."""
    counts = {"problems": len(rows), "solved_unguided": sum(r["prefix_ratio"] == 0 for r in rows)}
    counts.update({f"ratio_{r}": sum(row["prefix_ratio"] == r for row in rows) for r in ratios})
    counts["never_solved"] = sum(r["prefix_ratio"] is None for r in rows)
    return counts
