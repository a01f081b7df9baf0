"""Whether a saved checkpoint or model folder is intact, checked from file sizes and headers only.

A run killed while writing, a full disk or a partial copy leaves truncated files; loading them fails deep
inside safetensors or torch with a library traceback. These checks read a few bytes per file (no tensor
is loaded), so resuming and evaluating can name the damaged file and the newest intact checkpoint first.
"""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

# torch.save writes zip archives; a truncated one has lost its central directory (at the end of the file).
TORCH_ARCHIVES = (".pt", ".pth", ".bin")


def _safetensors_problem(path: Path) -> str | None:
    size = path.stat().st_size
    if size < 8:
        return f"truncated ({size} bytes, no header)"
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        if 8 + header_len > size:
            return f"truncated ({size} bytes, the header alone needs {8 + header_len})"
        try:
            header = json.loads(f.read(header_len))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return "header is not valid JSON"
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)]
    expected = 8 + header_len + max(ends, default=0)
    if size < expected:
        return f"truncated ({size} of {expected} bytes)"
    return None


def file_problem(path: Path) -> str | None:
    """What is wrong with one file of a checkpoint (None: it looks intact)."""
    try:
        if path.suffix == ".safetensors":
            return _safetensors_problem(path)
        if path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
            return None
        if path.suffix in TORCH_ARCHIVES:
            if not zipfile.is_zipfile(path):
                return f"truncated or not a torch archive ({path.stat().st_size} bytes)"
            return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, struct.error) as err:
        return f"unreadable ({type(err).__name__}: {err})"
    return None


def damage(folder: Path) -> str | None:
    """The first damaged file of ``folder`` as ``"<file>: <what is wrong>"``; None when all look intact."""
    for path in sorted(Path(folder).iterdir()):
        if path.is_file():
            problem = file_problem(path)
            if problem is not None:
                return f"{path.name}: {problem}"
    return None


def newest_intact(candidates: list[Path]) -> Path | None:
    """The last folder of ``candidates`` (oldest first) that :func:`damage` finds nothing wrong with."""
    for folder in reversed(candidates):
        if damage(folder) is None:
            return folder
    return None
