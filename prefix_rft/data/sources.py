"""Training data: the synthetic task, local files and hub datasets, normalised to one row format.

Every source ends up as a ``datasets.Dataset`` with the columns the trainers read:
``prompt`` (a conversational prompt), ``answer`` (reference final answer, passed to the reward
functions) and ``demonstration`` (a worked solution, or ``None`` where a row has none), plus the
source columns listed in ``data.extra_columns`` under their own names (the reward functions receive
every column as a keyword argument).
"""

from __future__ import annotations

import logging
from typing import Any

from datasets import Dataset

from prefix_rft.data.columns import ANSWER, DEMONSTRATION, PROMPT
from prefix_rft.data.gold_check import SOURCE_ROW, check_gold_answers
from prefix_rft.data.prompts import build_prompt
from prefix_rft.data.subsets import load_pass_rates, problem_key, select_hard, take_subset
from prefix_rft.errors import DataError

__all__ = ["DataError", "load_train_dataset", "normalise_rows", "take_subset", "drop_long_prompts"]

logger = logging.getLogger(__name__)


def read_local_table(path: str, key: str, on_bad_row: str = "error") -> Dataset:
    """A local parquet/JSONL/JSON/CSV file as a Dataset; errors name the config ``key``, the file and (for
    JSON lines) the line. ``on_bad_row=skip`` skips malformed JSON lines with a warning."""
    from prefix_rft.data.files import read_table

    return read_table(
        path,
        f"{key}={path}",
        skip_bad=on_bad_row == "skip",
        hint="fix the line or set data.on_bad_row=skip to drop malformed lines",
    )


def _read_raw(data_cfg) -> Dataset:
    """Read the configured source into a Dataset with its original columns."""
    if data_cfg.source == "synthetic":
        from prefix_rft.data.synthetic import generate_problems

        s = data_cfg.synthetic
        rows = generate_problems(
            s.num_train, seed=s.seed, min_steps=s.train_min_steps, max_steps=s.train_max_steps
        )
        return Dataset.from_list(rows)
    from datasets import load_dataset

    if not data_cfg.path:
        raise DataError(f"data.path must be set for data.source={data_cfg.source}")
    if data_cfg.source == "local":
        return read_local_table(data_cfg.path, "data.path", data_cfg.on_bad_row)
    from prefix_rft.hub import go_offline, hub_unreachable_reason, unreachable_hint

    unreachable = hub_unreachable_reason()
    if unreachable:  # only the local cache can serve it: no minute of retries before the error
        go_offline()
    try:
        return load_dataset(data_cfg.path, split=data_cfg.split)
    except Exception as err:  # say what to do instead
        local = "download it where you have network access and use data.source=local data.path=<file>"
        if unreachable:
            raise DataError(unreachable_hint(data_cfg.path, "data.path", unreachable, local)) from err
        raise DataError(
            f"could not load data.path={data_cfg.path} (split {data_cfg.split}) from the hub: {err}; {local}"
        ) from err


def _text(value: Any) -> str | None:
    """A usable string from a cell (lists of strings or of messages take their first/last text)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, list) and value:
        last = value[-1]
        if isinstance(last, dict):
            return _text(last.get("content"))
        return _text(value[0])
    if isinstance(value, dict):
        return _text(value.get("content") or value.get("ground_truth"))
    return str(value)


def normalise_rows(raw: Dataset, data_cfg) -> Dataset:
    """Map the configured columns to prompt/answer/demonstration (and keep ``data.extra_columns`` as they
    are), reporting malformed rows by index."""
    extra = list(data_cfg.extra_columns or [])
    needed = [data_cfg.problem_column, data_cfg.answer_column]
    if data_cfg.demonstration_column:
        needed.append(data_cfg.demonstration_column)
    missing = [c for c in needed if c not in raw.column_names]
    if missing:
        raise DataError(
            f"data columns {missing} not found in {data_cfg.path or data_cfg.source}; available: "
            f"{raw.column_names}. Set data.problem_column / data.answer_column / data.demonstration_column."
        )
    clashes = [c for c in extra if c in (PROMPT, ANSWER, DEMONSTRATION)]
    if clashes:
        raise DataError(
            f"data.extra_columns: {clashes} are names of the normalised columns; list source columns"
        )
    absent = [c for c in extra if c not in raw.column_names]
    if absent:
        raise DataError(
            f"data.extra_columns: {absent} not found in {data_cfg.path or data_cfg.source}; available: "
            f"{raw.column_names}"
        )
    rows, bad = [], []
    for index, row in enumerate(raw):
        problem = row[data_cfg.problem_column]
        answer = _text(row[data_cfg.answer_column])
        demo = _text(row[data_cfg.demonstration_column]) if data_cfg.demonstration_column else None
        if isinstance(problem, list) and data_cfg.prompt_messages == "keep":  # a ready conversational prompt
            prompt = problem
        else:
            if isinstance(problem, list):  # re-template the last user turn
                users = [m.get("content") for m in problem if isinstance(m, dict) and m.get("role") == "user"]
                problem = users[-1] if users else None
            problem = _text(problem)
            prompt = (
                build_prompt(problem, data_cfg.prompt_template, data_cfg.system_prompt) if problem else None
            )
        problems = [name for name, ok in (("problem", prompt), ("answer", answer)) if not ok]
        if data_cfg.demonstration_column and not demo:
            problems.append("demonstration")
        if problems:
            bad.append((index, problems))
            continue
        rows.append(
            {
                PROMPT: prompt,
                ANSWER: answer,
                DEMONSTRATION: demo,
                **{c: row[c] for c in extra},
                SOURCE_ROW: index,
            }
        )
    if bad:
        detail = "; ".join(f"row {i}: empty {', '.join(p)}" for i, p in bad[:10])
        if data_cfg.on_bad_row == "error":
            raise DataError(
                f"{len(bad)} malformed rows in {data_cfg.path or data_cfg.source} ({detail}). "
                "Fix the data or set data.on_bad_row=skip."
            )
        logger.warning("skipping %d malformed rows: %s", len(bad), detail)
    return Dataset.from_list(rows)


def swap_demonstrations(ds: Dataset, path: str) -> Dataset:
    """Replace each row's demonstration with the one ``path`` gives for its problem (None if it has none)."""
    table = read_local_table(path, "data.demonstrations_file")
    for column in ("problem", "demonstration"):
        if column not in table.column_names:
            raise DataError(
                f"data.demonstrations_file={path} needs columns 'problem' and 'demonstration'; has {table.column_names}"
            )
    demos = {str(p).strip(): d for p, d in zip(table["problem"], table["demonstration"])}
    new = [demos.get(problem_key(p)) for p in ds["prompt"]]
    logger.info(
        "demonstrations from %s: %d of %d rows matched", path, sum(d is not None for d in new), len(new)
    )
    return ds.remove_columns("demonstration").add_column("demonstration", new)


def load_train_dataset(data_cfg, apply_pass_rates: bool = True, gold_style: str | None = None) -> Dataset:
    """The training set described by ``data_cfg``: normalised, demonstrations swapped, subset, ready.

    ``gold_style``: the reward's answer style; ``boxed`` grades every reference answer of the subset
    against itself (:mod:`prefix_rft.data.gold_check`)."""
    ds = normalise_rows(_read_raw(data_cfg), data_cfg)
    if data_cfg.demonstrations_file:
        ds = swap_demonstrations(ds, data_cfg.demonstrations_file)
        missing = [i for i, d in enumerate(ds["demonstration"]) if not d]
        if missing and data_cfg.on_bad_row == "error":
            raise DataError(
                f"{len(missing)} rows (first: row {missing[0]}) have no demonstration in "
                f"data.demonstrations_file={data_cfg.demonstrations_file}; set data.on_bad_row=skip to drop them"
            )
        if missing:
            logger.warning("skipping %d rows without a demonstration in the swapped file", len(missing))
            ds = ds.select([i for i in range(len(ds)) if i not in set(missing)])
    if apply_pass_rates and data_cfg.pass_rate_file:
        if data_cfg.max_pass_rate is None:
            raise DataError("data.pass_rate_file is set but data.max_pass_rate is not")
        ds = select_hard(ds, load_pass_rates(data_cfg.pass_rate_file), data_cfg.max_pass_rate)
    ds = take_subset(ds, data_cfg.fraction, data_cfg.max_samples, data_cfg.seed)
    if len(ds) == 0:
        raise DataError(f"no training rows left from {data_cfg.path or data_cfg.source}")
    return check_gold_answers(ds, gold_style, data_cfg.path or data_cfg.source, data_cfg.on_bad_row)


def drop_long_prompts(ds: Dataset, tokenizer, max_prompt_length: int, on_bad_row: str) -> Dataset:
    """Reject (or skip) prompts whose chat-templated length exceeds ``max_prompt_length`` tokens."""
    lengths = [
        len(tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=True, return_dict=False))
        for p in ds["prompt"]
    ]
    too_long = [i for i, n in enumerate(lengths) if n > max_prompt_length]
    if too_long and on_bad_row == "error":
        raise DataError(
            f"{len(too_long)} prompts exceed data.max_prompt_length={max_prompt_length} tokens (first: row "
            f"{too_long[0]}, {lengths[too_long[0]]} tokens); raise the limit or set data.on_bad_row=skip"
        )
    if too_long:
        logger.warning("skipping %d prompts longer than %d tokens", len(too_long), max_prompt_length)
        ds = ds.select([i for i in range(len(ds)) if i not in set(too_long)])
    return ds


def heldout_records(data_cfg) -> list[dict]:
    """Held-out problems for the before/after accuracy: synthetic ones that never occur in the training set.

    They come from seed + 1; the rare problem that the training generator also produced is dropped and
    replaced, so the two sets are disjoint by text, not only by seed.
    """
    if data_cfg.source != "synthetic":
        return []
    from prefix_rft.data.synthetic import generate_problems

    s = data_cfg.synthetic
    train = {
        r["problem"]
        for r in generate_problems(
            s.num_train, seed=s.seed, min_steps=s.train_min_steps, max_steps=s.train_max_steps
        )
    }
    rows: list[dict] = []
    extra = 0
    while len(rows) < s.num_eval:
        if extra > 10 * (s.num_eval + 100):
            raise DataError(
                f"data.synthetic: cannot find {s.num_eval} held-out problems outside the training set; "
                "lower data.synthetic.num_eval or num_train"
            )
        extra = max(2 * extra, 16)
        candidates = generate_problems(
            s.num_eval + extra, seed=s.seed + 1, min_steps=s.eval_min_steps, max_steps=s.eval_max_steps
        )
        rows = [r for r in candidates if r["problem"] not in train][: s.num_eval]
    return [
        {
            "prompt": build_prompt(r["problem"], data_cfg.prompt_template, data_cfg.system_prompt),
            "answer": r["answer"],
            "num_steps": r["num_steps"],
            "problem": r["problem"],
        }
        for r in rows
    ]
