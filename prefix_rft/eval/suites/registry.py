"""The registry of evaluation benchmarks: canonical names, aliases, default samples, where each is found,
and how its answers are graded. :func:`register_benchmark` adds one (or replaces it)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from prefix_rft.errors import DataError
from prefix_rft.rewards.grading import ANSWER_STYLES


class BenchmarkError(DataError):
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
    # Answer style (prefix_rft.rewards.grading): "boxed" (math, math-verify) or "choice" (a letter, exact match).
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
REGISTRY: dict[str, BenchmarkSpec] = {}
# Normalised alias -> canonical name; normalised LUFFY data_source -> canonical name.
_ALIASES: dict[str, str] = {}
_LUFFY_SOURCES: dict[str, str] = {}

# The paper's table columns (then "avg", the unweighted mean over them).
PAPER_COLUMNS: tuple[str, ...] = ("AIME24", "AIME25", "AMC", "MATH-500", "Minerva", "OlympiadBench")


def _key(name: str) -> str:
    return re.sub(r"[-_\s]", "", name.lower())


def register_benchmark(spec: BenchmarkSpec) -> BenchmarkSpec:
    """Add ``spec`` to the registry (replacing one of the same name) with its aliases and LUFFY sources."""
    if spec.answer_style not in ANSWER_STYLES:
        raise ValueError(f"benchmark {spec.name}: answer_style {spec.answer_style!r} not in {ANSWER_STYLES}")
    REGISTRY[spec.name] = spec
    for alias in (spec.name, *spec.aliases):
        _ALIASES[_key(alias)] = spec.name
    for source in spec.luffy_sources:
        _LUFFY_SOURCES[_key(source)] = spec.name
    return spec


for _spec in _SPECS:
    register_benchmark(_spec)


def luffy_source_name(source: str) -> str:
    """The canonical name of a LUFFY parquet ``data_source`` value (the value itself when unknown)."""
    return _LUFFY_SOURCES.get(_key(source), source)


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
