"""Resolving the ``benchmarks`` list of the eval config into records per benchmark."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from prefix_rft.eval.config import SyntheticEvalConfig
from prefix_rft.eval.suites.loaders import (
    load_hub,
    load_jsonl,
    load_luffy_parquet,
    load_synthetic,
    luffy_benchmarks,
)
from prefix_rft.eval.suites.registry import REGISTRY, BenchmarkError, canonical_name, get_spec

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
    synthetic: SyntheticEvalConfig | None = None,
    max_items: int | None = None,
) -> dict[str, list[dict]]:
    """Records per benchmark for the config's ``benchmarks`` list.

    An entry is a benchmark name (any alias) or a source: a ``.parquet`` (LUFFY format, every
    benchmark in it), a ``.jsonl``/``.json`` file (benchmark named after the file) or ``hub:<id>[:<split>]``.
    ``NAME@SOURCE`` names the benchmark of a source explicitly. A bare name is looked up in
    ``data_file`` (LUFFY parquet), then ``data_dir`` (JSONL files), then its default hub id;
    ``synthetic`` is built in (its settings: ``synthetic``). An empty list with a
    ``data_file`` means every benchmark in that file. ``max_items`` keeps the first N problems of each.
    """
    entries = list(entries)
    if data_dir and not Path(data_dir).is_dir():
        # A folder the user named: its absence is the problem to report, not the hub fallback's failure.
        what = "is a file" if Path(data_dir).exists() else "does not exist"
        raise BenchmarkError(
            f"data_dir={data_dir} {what}; expected a folder of benchmark JSONL files (math500.jsonl, aime24.jsonl, ...)"
        )
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
            s = synthetic or SyntheticEvalConfig()
            add(name, load_synthetic(s.num, s.seed, s.min_steps, s.max_steps))
            continue
        if data_file:
            present = luffy_cache.setdefault(data_file, luffy_benchmarks(data_file))
            if name in present:
                add(name, load_luffy_parquet(data_file, [name])[name])
                continue
        if data_dir and spec.jsonl_file and (Path(data_dir) / spec.jsonl_file).is_file():
            add(name, load_jsonl(Path(data_dir) / spec.jsonl_file, benchmark=name))
            continue
        if data_dir and spec.jsonl_file and not data_file:
            # The user pointed at a local folder: a benchmark missing from it is not fetched from the hub.
            held = sorted(p.name for p in Path(data_dir).glob("*.jsonl"))
            raise BenchmarkError(
                f"benchmark {name}: data_dir={data_dir} has no {spec.jsonl_file} (it holds "
                f"{', '.join(held[:10]) or 'no .jsonl file'}); add the file, drop {name} from benchmarks, "
                f"or pass hub:{spec.hub[0] if spec.hub else '<id>'} to fetch it from the hub"
            )
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
