"""Training subsets: a seeded fraction / size cap (the paper's 10% and 1% ablations) and the "hard" subset
of prompts a given model rarely solves (the paper's hardest-prompts analysis).

Measure pass rates once (:mod:`prefix_rft.eval.pass_rates`), then train on the hard subset:

    prefix-rft-pass-rates --model builtin:tiny-warm --out pass_rates.jsonl --samples 8
    prefix-rft-train data.pass_rate_file=pass_rates.jsonl data.max_pass_rate=0.0
"""

from __future__ import annotations

import random
from pathlib import Path

from datasets import Dataset

from prefix_rft.errors import DataError


def take_subset(ds: Dataset, fraction: float, max_samples: int | None, seed: int) -> Dataset:
    """Seeded random fraction of the rows, then at most ``max_samples`` of them (original order kept)."""
    n = len(ds)
    keep = n if fraction >= 1.0 else max(1, round(fraction * n))
    if max_samples is not None:
        keep = min(keep, max_samples)
    if keep >= n:
        return ds
    indices = sorted(random.Random(seed).sample(range(n), keep))
    return ds.select(indices)


def problem_key(prompt: list[dict[str, str]] | str) -> str:
    """The text that identifies a problem: the last user turn of a conversational prompt."""
    if isinstance(prompt, str):
        return prompt.strip()
    users = [m["content"] for m in prompt if m.get("role") == "user"]
    return (users[-1] if users else prompt[-1]["content"]).strip()


def load_pass_rates(path: str | Path) -> dict[str, float]:
    """``{problem key: pass rate}`` from a JSONL written by ``prefix-rft-pass-rates``."""
    from prefix_rft.data.files import read_jsonl_rows

    what = f"data.pass_rate_file={path}"
    rates: dict[str, float] = {}
    for n, row in enumerate(read_jsonl_rows(Path(path), what), 1):
        if "problem" not in row or "pass_rate" not in row:
            raise DataError(f"{what}: row {n}: expected keys 'problem' and 'pass_rate', got {sorted(row)}")
        rates[str(row["problem"]).strip()] = float(row["pass_rate"])
    return rates


def select_hard(ds: Dataset, pass_rates: dict[str, float], max_pass_rate: float) -> Dataset:
    """Rows whose measured pass rate is at most ``max_pass_rate``; rows never measured are an error."""
    keys = [problem_key(p) for p in ds["prompt"]]
    unmeasured = [i for i, k in enumerate(keys) if k not in pass_rates]
    if unmeasured:
        raise DataError(
            f"{len(unmeasured)} training rows have no pass rate in data.pass_rate_file (first: row "
            f"{unmeasured[0]}); measure the same data and template"
        )
    return ds.select([i for i, k in enumerate(keys) if pass_rates[k] <= max_pass_rate])


def load_prefix_ratios(path: str | Path, what: str) -> dict[str, float | None]:
    """``{problem key: prefix ratio or None}`` from a JSONL written by ``prefix-rft-pass-rates
    --prefix-ratios`` (POPE's shortest solving prefix per problem; ``what`` names the key in errors)."""
    from prefix_rft.data.files import read_jsonl_rows

    ratios: dict[str, float | None] = {}
    for n, row in enumerate(read_jsonl_rows(Path(path), what), 1):
        if "problem" not in row or "prefix_ratio" not in row:
            raise DataError(
                f"{what}: row {n}: expected keys 'problem' and 'prefix_ratio' (written by prefix-rft-pass-rates "
                f"--prefix-ratios), got {sorted(row)}"
            )
        value = row["prefix_ratio"]
        if value is not None and not (isinstance(value, (int, float)) and 0.0 <= value < 1.0):
            raise DataError(
                f"{what}: row {n}: prefix_ratio must be null or a number in [0, 1), got {value!r}"
            )
        ratios[str(row["problem"]).strip()] = None if value is None else float(value)
    return ratios


def missing_problems(prompts, known: dict) -> list[int]:
    """Indices of ``prompts`` whose problem key is not in ``known``."""
    return [i for i, p in enumerate(prompts) if problem_key(p) not in known]
