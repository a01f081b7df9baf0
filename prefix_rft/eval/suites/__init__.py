"""Evaluation benchmarks (datasets): the registry of known benchmarks, loaders for every source format, and
the resolution of the eval config's ``benchmarks`` list. Grading by answer style: :mod:`prefix_rft.rewards.grading`.

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

from prefix_rft.eval.suites.loaders import (
    load_hub,
    load_jsonl,
    load_luffy_parquet,
    load_synthetic,
    luffy_benchmarks,
    record_from_row,
)
from prefix_rft.eval.suites.registry import (
    PAPER_COLUMNS,
    REGISTRY,
    BenchmarkError,
    BenchmarkSpec,
    canonical_name,
    column_order,
    get_spec,
    register_benchmark,
)
from prefix_rft.eval.suites.resolve import load_benchmarks

__all__ = [
    "PAPER_COLUMNS",
    "REGISTRY",
    "BenchmarkError",
    "BenchmarkSpec",
    "canonical_name",
    "column_order",
    "get_spec",
    "load_benchmarks",
    "load_hub",
    "load_jsonl",
    "load_luffy_parquet",
    "load_synthetic",
    "luffy_benchmarks",
    "record_from_row",
    "register_benchmark",
]
