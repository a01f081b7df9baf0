"""Loaders: every benchmark source format becomes a list of records (see :mod:`prefix_rft.eval.suites`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prefix_rft.eval.suites.registry import BenchmarkError, canonical_name, luffy_source_name
from prefix_rft.rewards.grader import extract_answer

# ---------------------------------------------------------------------------------------------------
# Row normalisation shared by the JSONL, hub and parquet loaders


def _answer_text(value: Any) -> str | None:
    """A reference answer as a string: numbers via str (AMC "27.0"), lists joined with ", "."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)) or (hasattr(value, "tolist") and not isinstance(value, str)):
        items = [str(v).strip() for v in (value.tolist() if hasattr(value, "tolist") else value)]
        return ", ".join(i for i in items if i) or None
    text = str(value).strip()
    return text or None


def _first(row: dict, keys: Sequence[str]) -> Any:
    for key in keys:
        if row.get(key) is not None and row.get(key) != "":
            return row[key]
    return None


PROBLEM_FIELDS = ("problem", "question", "Problem", "Question", "input")
ANSWER_FIELDS = ("answer", "final_answer", "ground_truth", "Answer", "expected_answer", "target")
SOLUTION_FIELDS = ("solution", "Solution", "reasoning")
ID_FIELDS = ("unique_id", "id", "idx", "ID")


def record_from_row(row: dict, benchmark: str, index: int, where: str) -> dict:
    """One record from a row with Qwen2.5-Math / hub style field names.

    The answer comes from the first answer field present (a GSM8K answer ``"... #### 18"`` keeps what
    follows ``####``); rows with only a solution (Minerva) take its last ``\\boxed{}``.
    """
    problem = _first(row, PROBLEM_FIELDS)
    solution = _first(row, SOLUTION_FIELDS)
    if isinstance(solution, (list, tuple)):  # OlympiadBench: several solutions, the first is the reference
        solution = solution[0] if solution else None
    answer = _answer_text(_first(row, ANSWER_FIELDS))
    if answer is not None and "####" in answer:
        answer = extract_answer(answer, style="gsm8k")
    if answer is None and isinstance(solution, str):
        answer = extract_answer(solution)
    if not isinstance(problem, str) or not problem.strip() or not answer:
        raise BenchmarkError(
            f"{where}: row {index} has no usable problem and answer; expected a problem field "
            f"({'/'.join(PROBLEM_FIELDS)}) and an answer field ({'/'.join(ANSWER_FIELDS)}) or a solution "
            f"with a \\boxed{{}} answer; found fields {sorted(row)}"
        )
    rid = _first(row, ID_FIELDS)
    return {
        "id": str(rid) if rid is not None else str(index),
        "benchmark": benchmark,
        "problem": problem.strip(),
        "answer": answer,
        "prompt": None,
        "solution": solution if isinstance(solution, str) else None,
        "copies": 1,
    }


def _dedupe_ids(records: list[dict], where: str) -> list[dict]:
    seen: set[str] = set()
    if any(r["id"] in seen or seen.add(r["id"]) for r in records):
        # Ids are the resume key: fall back to row numbers rather than merge two problems.
        for i, r in enumerate(records):
            r["id"] = str(i)
    return records


# ---------------------------------------------------------------------------------------------------
# Loaders


def benchmark_name_for_file(path: Path) -> str:
    """Benchmark name from a file name: ``math500.jsonl`` -> ``MATH-500``; unknown stems are kept."""
    return canonical_name(path.stem) or path.stem


def load_jsonl(path: str | Path, benchmark: str | None = None) -> list[dict]:
    """Records of one JSON-lines (or JSON list) file in the Qwen2.5-Math evaluation layout."""
    from prefix_rft.data.files import read_json_rows, read_jsonl_rows

    path = Path(path)
    name = benchmark or benchmark_name_for_file(path)
    what = f"benchmark file {path}"
    if path.suffix == ".json":
        rows = read_json_rows(path, what, error=BenchmarkError)
    else:
        rows = read_jsonl_rows(path, what, error=BenchmarkError)
    return _dedupe_ids([record_from_row(row, name, i, str(path)) for i, row in enumerate(rows)], str(path))


def _messages(value: Any) -> list[dict[str, str]]:
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    return [{"role": str(m["role"]), "content": str(m["content"])} for m in value]


def luffy_benchmarks(path: str | Path) -> list[str]:
    """Canonical names of the benchmarks present in a LUFFY parquet file, in file order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not Path(path).is_file():
        raise BenchmarkError(f"data_file={path} does not exist")
    try:
        column = pq.read_table(path, columns=["data_source"]).column("data_source").to_pylist()
    except (pa.ArrowException, OSError, KeyError) as err:
        raise BenchmarkError(
            f"data_file={path} is not a LUFFY evaluation parquet with a data_source column ({err})"
        ) from None
    if not column:
        raise BenchmarkError(f"data_file={path} holds no rows")
    return list(dict.fromkeys(luffy_source_name(s) for s in column))


def load_luffy_parquet(path: str | Path, benchmarks: Sequence[str] | None = None) -> dict[str, list[dict]]:
    """Records per benchmark of a LUFFY evaluation parquet, copies grouped into one record per problem.

    ``benchmarks``: names to keep (any alias); None keeps every benchmark in the file. A requested
    benchmark that is absent is an error naming the ones present.
    """
    import pandas as pd
    import pyarrow as pa

    path = Path(path)
    if not path.is_file():
        raise BenchmarkError(f"benchmark file {path} does not exist")
    try:
        df = pd.read_parquet(path)
    except (pa.ArrowException, OSError, ValueError) as err:
        raise BenchmarkError(f"benchmark file {path} cannot be read as parquet ({err})") from None
    if df.empty:
        raise BenchmarkError(f"benchmark file {path} holds no rows")
    missing = {"data_source", "prompt", "reward_model"} - set(df.columns)
    if missing:
        raise BenchmarkError(
            f"{path}: not a LUFFY evaluation parquet; missing columns {sorted(missing)} "
            f"(expected data_source, prompt, reward_model.ground_truth)"
        )
    wanted = None
    if benchmarks is not None:
        wanted = [canonical_name(b) or b for b in benchmarks]
    out: dict[str, list[dict]] = {}
    index: dict[tuple[str, str, str], dict] = {}
    for i, (source, prompt, reward) in enumerate(zip(df["data_source"], df["prompt"], df["reward_model"])):
        name = luffy_source_name(str(source))
        if wanted is not None and name not in wanted:
            continue
        messages = _messages(prompt)
        gold = _answer_text(reward.get("ground_truth") if isinstance(reward, dict) else reward)
        user = [m["content"] for m in messages if m["role"] == "user"]
        if not user or gold is None:
            raise BenchmarkError(
                f"{path}: row {i} ({source}) has no user turn or no reward_model.ground_truth"
            )
        key = (name, json.dumps(messages), gold)
        if key in index:  # one of the 32 copies of an AIME/AMC problem
            index[key]["copies"] += 1
            continue
        records = out.setdefault(name, [])
        record = {
            "id": str(len(records)),
            "benchmark": name,
            "problem": user[-1].strip(),
            "answer": gold,
            "prompt": messages,
            "solution": None,
            "copies": 1,
        }
        index[key] = record
        records.append(record)
    if wanted is not None:
        absent = [b for b in wanted if b not in out]
        if absent:
            raise BenchmarkError(f"{path} has no rows for {absent}; it holds {luffy_benchmarks(path)}")
    return out


def load_hub(
    hub_id: str, split: str = "test", config: str | None = None, benchmark: str | None = None
) -> list[dict]:
    """Records of a hub dataset through ``datasets.load_dataset`` (needs network or a warm HF cache)."""
    from datasets import load_dataset

    from prefix_rft.hub import go_offline, hub_unreachable_reason, unreachable_hint

    name = benchmark or canonical_name(hub_id.rsplit("/", 1)[-1]) or hub_id.rsplit("/", 1)[-1]
    unreachable = hub_unreachable_reason()
    if unreachable:  # only the local cache can serve it: no minute of retries before the error
        go_offline()
    try:
        ds = load_dataset(hub_id, config, split=split)
    except Exception as err:  # offline or unknown id: say which id and what to do instead
        if unreachable:
            raise BenchmarkError(
                unreachable_hint(
                    hub_id,
                    f"benchmark {name} from hub id",
                    unreachable,
                    "pass a local file (benchmarks=[path.jsonl]), data_dir=<folder of JSONL files> or "
                    "data_file=<LUFFY parquet>",
                )
            ) from err
        raise BenchmarkError(
            f"could not load benchmark {name} from the hub id {hub_id!r} (config {config}, split {split}): "
            f"{type(err).__name__}: {err}. Without network access, download it elsewhere and pass a local "
            "file (benchmarks=[path.jsonl]), data_dir=<folder of JSONL files> or data_file=<LUFFY parquet>."
        ) from err
    where = f"hub dataset {hub_id}"
    return _dedupe_ids([record_from_row(dict(row), name, i, where) for i, row in enumerate(ds)], where)


def load_synthetic(num: int, seed: int, min_steps: int = 1, max_steps: int = 4) -> list[dict]:
    """Records of the built-in synthetic arithmetic task (offline, deterministic for a seed)."""
    from prefix_rft.data.synthetic import generate_problems

    return [
        {
            "id": str(i),
            "benchmark": "synthetic",
            "problem": row["problem"],
            "answer": row["answer"],
            "prompt": None,
            "solution": row["solution"],
            "copies": 1,
        }
        for i, row in enumerate(generate_problems(num, seed=seed, min_steps=min_steps, max_steps=max_steps))
    ]
