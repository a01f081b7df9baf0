"""Reading local data files with errors that name the file and line: empty files, bytes that are not
UTF-8, malformed JSON lines, unreadable parquet/CSV.

Training data (``data.path``, ``data.demonstrations_file``) and evaluation benchmarks read their files
through here. JSON lines are parsed line by line so that a bad line can be reported by number, or
skipped (``skip_bad=True``, training's ``data.on_bad_row=skip``) instead of failing the whole file.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefix_rft.errors import DataError

logger = logging.getLogger(__name__)

TABLE_FORMATS = (".parquet", ".jsonl", ".json", ".csv")


def read_bytes(path: Path, what: str, error: Callable[[str], Exception] = DataError) -> bytes:
    """The file's bytes; a missing or empty file is an ``error`` naming ``what`` (e.g. ``data.path=x``)."""
    if not path.is_file():
        raise error(f"{what} does not exist or is not a file")
    data = path.read_bytes()
    if not data.strip():
        raise error(f"{what} is empty; expected one row per problem")
    return data


def _not_utf8(what: str, data: bytes, err: UnicodeDecodeError, lineno: int | None = None) -> str:
    line = lineno if lineno is not None else data.count(b"\n", 0, err.start) + 1
    return f"{what}: line {line} is not UTF-8 text (byte 0x{data[err.start]:02x}; save the file as UTF-8)"


def decode_text(path: Path, what: str, error: Callable[[str], Exception] = DataError) -> str:
    """The whole file as UTF-8 text (a BOM is dropped); errors name the file and the line."""
    data = read_bytes(path, what, error)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise error(_not_utf8(what, data, err)) from None


def read_jsonl_rows(
    path: Path,
    what: str,
    skip_bad: bool = False,
    error: Callable[[str], Exception] = DataError,
    hint: str = "fix the line",
) -> list[dict[str, Any]]:
    """One dict per non-blank line. A line that is not UTF-8, not JSON or not an object is an ``error``
    naming the file and line (``hint``: what to do about it), or (``skip_bad``) skipped with a warning
    that counts and locates them."""
    data = read_bytes(path, what, error)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    rows: list[dict[str, Any]] = []
    bad: list[str] = []
    for lineno, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw.decode("utf-8"))
            if not isinstance(row, dict):
                raise ValueError(f"a JSON {type(row).__name__}, not an object")
        except UnicodeDecodeError as err:
            problem = _not_utf8(what, raw, err, lineno)
        except ValueError as err:  # json.JSONDecodeError is a ValueError
            problem = f"{what}: line {lineno} is not a JSON object ({err})"
        else:
            rows.append(row)
            continue
        if not skip_bad:
            raise error(f"{problem}; {hint}")
        bad.append(problem)
    if bad:
        logger.warning("skipped %d malformed lines of %s (first: %s)", len(bad), path, bad[0])
    if not rows:
        raise error(f"{what} holds no usable JSON lines" + (f" ({len(bad)} malformed)" if bad else ""))
    return rows


def read_json_rows(path: Path, what: str, error: Callable[[str], Exception] = DataError) -> list[dict]:
    """A ``.json`` file: a list of objects, an object of columns, or JSON lines."""
    text = decode_text(path, what, error)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        if "Extra data" in err.msg:  # several documents: JSON lines in a .json file
            return read_jsonl_rows(path, what, error=error)
        raise error(f"{what}: not valid JSON at line {err.lineno} ({err.msg})") from None
    if isinstance(doc, list) and all(isinstance(r, dict) for r in doc):
        rows = doc
    elif isinstance(doc, dict) and doc and all(isinstance(v, list) for v in doc.values()):
        n = {len(v) for v in doc.values()}
        if len(n) != 1:
            raise error(f"{what}: its columns have different lengths {sorted(n)}")
        rows = [dict(zip(doc, values)) for values in zip(*doc.values())]
    else:
        raise error(f"{what}: expected a list of objects or an object of equal-length lists")
    if not rows:
        raise error(f"{what} holds no rows")
    return rows


def rows_to_dataset(rows: list[dict[str, Any]], what: str):
    """A ``datasets.Dataset`` of ``rows`` (columns: the union of their keys, in first-seen order)."""
    import pyarrow as pa
    from datasets import Dataset

    columns = list(dict.fromkeys(k for row in rows for k in row))
    try:
        return Dataset.from_dict({c: [row.get(c) for row in rows] for c in columns})
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise DataError(f"{what}: a column mixes value types ({err})") from None


def read_table(path: str | Path, what: str, skip_bad: bool = False, hint: str = "fix the line"):
    """A local parquet / JSONL / JSON / CSV file as a ``datasets.Dataset``; every failure is a
    :class:`DataError` naming ``what`` (the config key and the file). ``skip_bad``: skip malformed JSON
    lines instead (``hint``: the advice in the error when not skipping)."""
    p = Path(path)
    if p.suffix not in TABLE_FORMATS:
        if not p.is_file():
            raise DataError(f"{what} does not exist or is not a file")
        raise DataError(f"{what}: unsupported file type {p.suffix!r}; expected one of {list(TABLE_FORMATS)}")
    if p.suffix == ".jsonl":
        return rows_to_dataset(read_jsonl_rows(p, what, skip_bad, hint=hint), what)
    if p.suffix == ".json":
        return rows_to_dataset(read_json_rows(p, what), what)
    read_bytes(p, what)  # missing or empty
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq
    from datasets import Dataset

    if p.suffix == ".csv":
        decode_text(p, what)  # name the line of a byte that is not UTF-8
    try:
        table = pq.read_table(p) if p.suffix == ".parquet" else pa_csv.read_csv(p)
    except (pa.ArrowException, OSError) as err:
        raise DataError(f"{what}: cannot be read as {p.suffix} ({type(err).__name__}: {err})") from None
    if table.num_rows == 0:
        raise DataError(f"{what} holds no rows")
    return Dataset(table)
