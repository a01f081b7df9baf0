"""The files of an evaluation folder: ``samples.jsonl`` (one line per sample, appended and flushed batch by
batch) and ``eval_config.json`` (the settings that define what a sample means).

A last line cut off mid-write is dropped on resume (:func:`repair_tail`); resuming with other
sample-defining settings is refused (:func:`check_fingerprint`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

from prefix_rft.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

SAMPLES_FILE = "samples.jsonl"
CONFIG_FILE = "eval_config.json"
# Settings that change what a stored sample means: resuming with other values is refused.
FINGERPRINT_KEYS = (
    "model_path",
    "adapter_path",
    "revision",
    "chat_template",
    "config_overrides",
    "prompt_template",
    "system_prompt",
    "use_chat_template",
    "temperature",
    "top_p",
    "max_new_tokens",
)


def repair_tail(path: Path) -> int:
    """Drop a last line cut off mid-write (no newline, or not JSON); returns the bytes dropped."""
    if not path.is_file():
        return 0
    data = path.read_bytes()
    if not data:
        return 0
    end = len(data)
    if data.endswith(b"\n"):
        start = data.rfind(b"\n", 0, end - 1) + 1
        try:
            json.loads(data[start:end])
            return 0
        except json.JSONDecodeError:
            keep = start
    else:
        keep = data.rfind(b"\n") + 1
    with open(path, "r+b") as f:
        f.truncate(keep)
    return end - keep


def read_samples(path: str | Path) -> list[dict]:
    """The rows of a samples file; a truncated last line is ignored, a bad line elsewhere is an error."""
    path = Path(path)
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").split("\n")
    rows = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            if lineno >= len(lines) - 1:  # the last line: an interrupted write
                logger.warning("%s: ignoring a truncated last line", path)
                break
            raise DataError(f"{path}:{lineno}: not valid JSON ({err}); fix or delete the line") from err
    return rows


def sample_key(benchmark: str, item_id: str, sample: int) -> str:
    """The resume key of one sample."""
    return f"{benchmark}\x1f{item_id}\x1f{sample}"


def check_fingerprint(out_dir: Path, cfg, overwrite: bool) -> None:
    """Save eval_config.json, or refuse to resume a folder made with other sample-defining settings.

    ``cfg``: the :class:`~prefix_rft.eval.config.EvalConfig` of the evaluation.
    """
    path = out_dir / CONFIG_FILE
    config = dataclasses.asdict(cfg)
    current = {k: config[k] for k in FINGERPRINT_KEYS}
    if path.is_file() and not overwrite and (out_dir / SAMPLES_FILE).is_file():
        saved = json.loads(path.read_text()).get("fingerprint", {})
        diff = {
            k: (saved.get(k), current[k])
            for k in FINGERPRINT_KEYS
            if k in saved and saved.get(k) != current[k]
        }
        if diff:
            changes = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff.items())
            raise ConfigError(
                f"{out_dir} holds samples made with other settings ({changes}); use another output_dir, "
                "or overwrite=true to start over"
            )
    path.write_text(json.dumps({"fingerprint": current, "config": config}, indent=2, default=str) + "\n")
