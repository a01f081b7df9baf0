"""Evaluation benchmarks: a registry of the paper's benchmarks and loaders for every source format.

Every source becomes a list of *records*, one per unique problem::

    {"id": str, "benchmark": str, "problem": str, "answer": str,
     "prompt": list of {role, content} or None, "solution": str or None, "copies": int}

``prompt`` is the source's own conversational prompt (the LUFFY parquet carries one, with its system
prompt); ``None`` means the runner builds one from ``problem`` with a prompt template.

Sources:

* LUFFY evaluation parquet (``data_file=...parquet``): one file, a ``data_source`` column naming the
  benchmark, ``prompt`` = messages, ``reward_model.ground_truth``. AIME/AMC rows are repeated 32 times
  so that one sample per row gives avg@32; the copies are grouped back into one record per unique
  problem (``copies`` = 32) and the runner draws the k samples itself.
* Qwen2.5-Math evaluation layout (``data_dir=...`` folder of ``math500.jsonl``, ``aime24.jsonl``...,
  or one ``.jsonl``/``.json`` file): field names differ per file (problem/question,
  answer/final_answer, or only a solution whose last ``\\boxed{}`` is the answer).
* Hub datasets (``hub:<id>[:<split>]``, or a registry name with no local file): ``datasets.load_dataset``.
* ``synthetic``: the built-in arithmetic task (:mod:`prefix_rft.data.synthetic`), so the tiny model
  can be evaluated offline.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefix_rft.rewards.grader import extract_answer


class BenchmarkError(ValueError):
    """A benchmark cannot be loaded; the message names the benchmark, file or hub id."""


@dataclass(frozen=True)
class BenchmarkSpec:
    """One known benchmark: canonical name, default samples, where to find it."""

    name: str
    # Default samples per problem (k): avg@k when k > 1, else pass@1.
    samples: int = 1
    # Names accepted on the command line (case-insensitive; "-" and "_" are ignored).
    aliases: tuple[str, ...] = ()
    # `data_source` values of this benchmark in the LUFFY parquet files.
    luffy_sources: tuple[str, ...] = ()
    # File name in the Qwen2.5-Math evaluation layout.
    jsonl_file: str | None = None
    # Default hub dataset: (id, config or None, split); None = no known hub copy.
    hub: tuple[str, str | None, str] | None = None
    # Answer format: "boxed" (math, graded by math-verify) or "choice" (a letter, exact match).
    answer_style: str = "boxed"
    # Out of distribution (reported apart from the math average, as in the paper).
    ood: bool = False

    @property
    def metric(self) -> str:
        """How the score is named in reports (``avg@32``, ``pass@1``)."""
        return f"avg@{self.samples}" if self.samples > 1 else "pass@1"


_SPECS = (
    BenchmarkSpec(
        "AIME24",
        samples=32,
        aliases=("aime24", "aime", "aime2024"),
        luffy_sources=("aime", "aime24"),
        jsonl_file="aime24.jsonl",
        hub=("HuggingFaceH4/aime_2024", None, "train"),
    ),
    BenchmarkSpec(
        "AIME25",
        samples=32,
        aliases=("aime25", "aime2025"),
        luffy_sources=("aime25", "aime2025"),
        jsonl_file="aime25.jsonl",
        hub=("math-ai/aime25", None, "test"),
    ),
    BenchmarkSpec(
        "AMC",
        samples=32,
        aliases=("amc", "amc23", "amc2023", "aimo-validation-amc"),
        luffy_sources=("amc", "amc23"),
        jsonl_file="amc23.jsonl",
        hub=("AI-MO/aimo-validation-amc", None, "train"),
    ),
    BenchmarkSpec(
        "MATH-500",
        aliases=("math500", "math"),
        luffy_sources=("math", "math500"),
        jsonl_file="math500.jsonl",
        hub=("HuggingFaceH4/MATH-500", None, "test"),
    ),
    BenchmarkSpec(
        "Minerva",
        aliases=("minerva", "minerva_math"),
        luffy_sources=("minerva",),
        jsonl_file="minerva_math.jsonl",
    ),
    BenchmarkSpec(
        "OlympiadBench",
        aliases=("olympiadbench", "olympiad"),
        luffy_sources=("olympiad_bench",),
        jsonl_file="olympiadbench.jsonl",
    ),
    BenchmarkSpec(
        "ARC-c",
        aliases=("arc_c", "arc", "arc_challenge"),
        luffy_sources=("arc_c",),
        answer_style="choice",
        ood=True,
    ),
    BenchmarkSpec(
        "GPQA-diamond",
        aliases=("gpqa", "gpqa_diamond"),
        luffy_sources=("gpqa",),
        answer_style="choice",
        ood=True,
    ),
    BenchmarkSpec(
        "MMLU-Pro", aliases=("mmlu_pro",), luffy_sources=("mmlu_pro",), answer_style="choice", ood=True
    ),
    BenchmarkSpec(
        "GSM8K",
        aliases=("gsm8k",),
        luffy_sources=("gsm8k",),
        jsonl_file="gsm8k.jsonl",
        hub=("openai/gsm8k", "main", "test"),
    ),
    BenchmarkSpec("synthetic", samples=4, aliases=("synthetic", "synth")),
)
# Canonical name -> spec. Names and aliases match case-insensitively, ignoring "-", "_" and spaces.
REGISTRY: dict[str, BenchmarkSpec] = {spec.name: spec for spec in _SPECS}

# The paper's table columns (then "avg", the unweighted mean over them).
PAPER_COLUMNS: tuple[str, ...] = ("AIME24", "AIME25", "AMC", "MATH-500", "Minerva", "OlympiadBench")


def _key(name: str) -> str:
    return re.sub(r"[-_\s]", "", name.lower())


_ALIASES = {_key(alias): spec.name for spec in REGISTRY.values() for alias in (spec.name, *spec.aliases)}
_LUFFY_SOURCES = {_key(src): spec.name for spec in REGISTRY.values() for src in spec.luffy_sources}


def canonical_name(name: str) -> str | None:
    """The registry name for ``name`` or any of its aliases (``math500`` -> ``MATH-500``); None if unknown."""
    return _ALIASES.get(_key(name))


def get_spec(name: str) -> BenchmarkSpec:
    """The registry entry of ``name``; unknown benchmarks (custom files) get defaults (k = 1, boxed)."""
    canon = canonical_name(name)
    return REGISTRY[canon] if canon else BenchmarkSpec(name)


def column_order(names: Iterable[str]) -> list[str]:
    """``names`` in the paper's column order; other benchmarks follow in their given order."""
    names = list(dict.fromkeys(names))
    return [c for c in PAPER_COLUMNS if c in names] + [n for n in names if n not in PAPER_COLUMNS]


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
    path = Path(path)
    if not path.is_file():
        raise BenchmarkError(f"benchmark file {path} does not exist")
    name = benchmark or benchmark_name_for_file(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json" and text.lstrip().startswith("["):
        rows = json.loads(text)
    else:
        rows = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise BenchmarkError(f"{path}:{lineno}: not valid JSON ({err})") from err
    return _dedupe_ids([record_from_row(row, name, i, str(path)) for i, row in enumerate(rows)], str(path))


def _messages(value: Any) -> list[dict[str, str]]:
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    return [{"role": str(m["role"]), "content": str(m["content"])} for m in value]


def luffy_benchmarks(path: str | Path) -> list[str]:
    """Canonical names of the benchmarks present in a LUFFY parquet file, in file order."""
    import pyarrow.parquet as pq

    column = pq.read_table(path, columns=["data_source"]).column("data_source").to_pylist()
    return list(dict.fromkeys(_LUFFY_SOURCES.get(_key(s), s) for s in column))


def load_luffy_parquet(path: str | Path, benchmarks: Sequence[str] | None = None) -> dict[str, list[dict]]:
    """Records per benchmark of a LUFFY evaluation parquet, copies grouped into one record per problem.

    ``benchmarks``: names to keep (any alias); None keeps every benchmark in the file. A requested
    benchmark that is absent is an error naming the ones present.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise BenchmarkError(f"benchmark file {path} does not exist")
    df = pd.read_parquet(path)
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
        name = _LUFFY_SOURCES.get(_key(str(source)), str(source))
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

    name = benchmark or canonical_name(hub_id.rsplit("/", 1)[-1]) or hub_id.rsplit("/", 1)[-1]
    try:
        ds = load_dataset(hub_id, config, split=split)
    except Exception as err:  # offline or unknown id: say which id and what to do instead
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


# ---------------------------------------------------------------------------------------------------
# Resolving the `benchmarks` list of the eval config


def _parse_hub(source: str) -> tuple[str, str]:
    body = source[len("hub:") :]
    hub_id, _, split = body.partition(":")
    if not hub_id:
        raise BenchmarkError(f"benchmark source {source!r}: expected hub:<id>[:<split>]")
    return hub_id, split or "test"


def _is_source(entry: str) -> bool:
    return entry.startswith("hub:") or Path(entry).suffix in (".parquet", ".jsonl", ".json")


def load_benchmarks(
    entries: Sequence[str],
    *,
    data_file: str | None = None,
    data_dir: str | None = None,
    synthetic: dict | None = None,
    max_items: int | None = None,
) -> dict[str, list[dict]]:
    """Records per benchmark for the config's ``benchmarks`` list.

    An entry is a benchmark name (any alias) or a source: a ``.parquet`` (LUFFY format, every
    benchmark in it), a ``.jsonl``/``.json`` file (benchmark named after the file) or ``hub:<id>[:<split>]``.
    ``NAME@SOURCE`` names the benchmark of a source explicitly. A bare name is looked up in
    ``data_file`` (LUFFY parquet), then ``data_dir`` (JSONL files), then its default hub id;
    ``synthetic`` is built in (``synthetic`` = {num, seed, min_steps, max_steps}). An empty list with a
    ``data_file`` means every benchmark in that file. ``max_items`` keeps the first N problems of each.
    """
    entries = list(entries)
    if not entries:
        if not data_file:
            raise BenchmarkError("benchmarks is empty; name at least one benchmark or set data_file")
        entries = luffy_benchmarks(data_file)
    out: dict[str, list[dict]] = {}
    luffy_cache: dict[str, list[str]] = {}

    def add(name: str, records: list[dict]) -> None:
        if name in out:
            raise BenchmarkError(f"benchmark {name} is listed twice in benchmarks")
        if not records:
            raise BenchmarkError(f"benchmark {name} has no problems")
        out[name] = records[:max_items] if max_items else records

    for entry in entries:
        entry = str(entry).strip()
        name_override, source = None, entry
        if "@" in entry and _is_source(entry.split("@", 1)[1]):
            name_override, source = entry.split("@", 1)
            name_override = canonical_name(name_override) or name_override
        if _is_source(source):
            if source.startswith("hub:"):
                hub_id, split = _parse_hub(source)
                records = load_hub(hub_id, split, benchmark=name_override)
                add(name_override or records[0]["benchmark"], records)
            elif source.endswith(".parquet"):
                for name, records in load_luffy_parquet(source).items():
                    add(name_override or name, _rename(records, name_override))
            else:
                records = load_jsonl(source, benchmark=name_override)
                add(records[0]["benchmark"], records)
            continue
        spec = get_spec(entry)
        name = spec.name
        if name == "synthetic":
            s = {"num": 32, "seed": 1, "min_steps": 1, "max_steps": 4, **(synthetic or {})}
            add(name, load_synthetic(s["num"], s["seed"], s["min_steps"], s["max_steps"]))
            continue
        if data_file:
            present = luffy_cache.setdefault(data_file, luffy_benchmarks(data_file))
            if name in present:
                add(name, load_luffy_parquet(data_file, [name])[name])
                continue
        if data_dir and spec.jsonl_file and (Path(data_dir) / spec.jsonl_file).is_file():
            add(name, load_jsonl(Path(data_dir) / spec.jsonl_file, benchmark=name))
            continue
        if spec.hub is not None:
            hub_id, config, split = spec.hub
            add(name, load_hub(hub_id, split, config, benchmark=name))
            continue
        looked = [
            f"data_file={data_file}" if data_file else None,
            f"data_dir={data_dir}" if data_dir else None,
        ]
        raise BenchmarkError(
            f"benchmark {entry!r} ({name}) was not found ({', '.join(x for x in looked if x) or 'no data_file/data_dir set'}) "
            f"and has no default hub id; pass data_file=<LUFFY parquet>, data_dir=<folder with "
            f"{spec.jsonl_file or name + '.jsonl'}> or a file path. Known benchmarks: {sorted(REGISTRY)}"
        )
    return out


def _rename(records: list[dict], name: str | None) -> list[dict]:
    if name:
        for r in records:
            r["benchmark"] = name
    return records


# ---------------------------------------------------------------------------------------------------
# Multiple-choice answers (ARC-c, GPQA-diamond, MMLU-Pro)

_CHOICE_PATTERNS = (
    re.compile(r"ANSWER\s*[:：]\s*\(?\$?([A-J])\b", re.I),
    re.compile(r"answer is\s*[:：]?\s*\(?\$?(?:\\text\{)?([A-J])\b"),
)


def extract_choice(text: str) -> str | None:
    """The chosen letter: the last ``\\boxed{}`` (``C``, ``(C)``, ``\\text{C}``), else ``ANSWER: C`` or ``answer is (C)``."""
    boxed = extract_answer(text)
    if boxed is not None:
        # Unwrap \text{...}-style wrappers and a leading "(", then expect the letter alone or followed
        # by punctuation/text ("C", "(C)", "C. 42").
        inner = (
            re.sub(r"\\(?:text|textbf|mathrm|mathbf)\{([^{}]*)\}", r"\1", boxed).strip().lstrip("(").strip()
        )
        m = re.match(r"([A-Ja-j])(?:$|[\s.:)])", inner)
        if m:
            return m.group(1).upper()
    for pattern in _CHOICE_PATTERNS:
        found = pattern.findall(text)
        if found:
            return found[-1].upper()
    return None
