"""Running an evaluation: generate, grade and append one JSON line per sample, resumably.

The run folder holds ``samples.jsonl`` with one line per (benchmark, item, sample index)::

    {"benchmark", "id", "sample", "completion", "pred", "answer", "correct"}

Lines are appended and flushed batch by batch, so a run that is interrupted (killed, out of time)
loses at most the batch in flight: rerunning with the same ``output_dir`` reads the file, skips every
finished sample and generates only the rest. A last line cut off mid-write is dropped. Raising
``samples`` or adding benchmarks later also only generates what is missing. ``eval_config.json``
records the settings that change what a sample means (model, prompt, decoding); resuming with
different ones is an error rather than a silently mixed file.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from prefix_rft.eval.benchmarks import extract_choice, get_spec
from prefix_rft.eval.generate import SamplingSettings, encode_prompts, sample_seed
from prefix_rft.rewards.grader import extract_answer

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
# Test hook: kill this process (SIGKILL, no clean-up) after writing this many samples.
CRASH_ENV = "PREFIX_RFT_EVAL_CRASH_AFTER"


# ---------------------------------------------------------------------------------------------------
# The samples file


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
            raise ValueError(f"{path}:{lineno}: not valid JSON ({err}); fix or delete the line") from err
    return rows


def sample_key(benchmark: str, item_id: str, sample: int) -> str:
    """The resume key of one sample."""
    return f"{benchmark}\x1f{item_id}\x1f{sample}"


# ---------------------------------------------------------------------------------------------------
# Prompts and grading


def make_prompt(record: Mapping, template: str = "auto", system_prompt: str | None = None) -> list[dict]:
    """The conversational prompt of a record.

    ``auto``: the source's own prompt where it has one (LUFFY parquet), else ``qwen_math``. A
    ``system_prompt`` replaces the source prompt's system turns / is prepended to a built prompt.
    """
    from prefix_rft.data.prompts import build_prompt

    if template == "auto" and record.get("prompt"):
        messages = [dict(m) for m in record["prompt"]]
        if system_prompt:
            messages = [{"role": "system", "content": system_prompt}] + [
                m for m in messages if m["role"] != "system"
            ]
        return messages
    return build_prompt(record["problem"], "qwen_math" if template == "auto" else template, system_prompt)


def grade_completions(
    records: Sequence[Mapping], completions: Sequence[str], grader
) -> list[tuple[str | None, bool]]:
    """(extracted prediction, correct) per completion; math answers by the grader, letters exactly."""
    preds: list[str | None] = [None] * len(records)
    correct = [False] * len(records)
    math_idx = []
    for i, (record, text) in enumerate(zip(records, completions)):
        if get_spec(record["benchmark"]).answer_style == "choice":
            preds[i] = extract_choice(text)
            correct[i] = preds[i] is not None and preds[i] == str(record["answer"]).strip().upper()
        else:
            preds[i] = extract_answer(text)
            math_idx.append(i)
    if math_idx:
        scores = grader.grade_many(
            [completions[i] for i in math_idx], [records[i]["answer"] for i in math_idx]
        )
        for i, score in zip(math_idx, scores):
            correct[i] = score > 0
    return list(zip(preds, correct))


# ---------------------------------------------------------------------------------------------------
# The generation loop


def plan_todo(
    records: Mapping[str, Sequence[Mapping]], samples: Mapping[str, int], done: set[str]
) -> list[tuple[Mapping, int]]:
    """(record, sample index) pairs not in ``done``, item by item (an item's samples stay together)."""
    return [
        (record, s)
        for name, recs in records.items()
        for record in recs
        for s in range(samples[name])
        if sample_key(name, record["id"], s) not in done
    ]


def run_samples(
    todo: Sequence[tuple[Mapping, int]],
    generate: Callable[[list[list[int]], list[int]], list[str]],
    prompt_ids: Mapping[tuple[str, str], list[int]],
    grader,
    out_path: Path,
    *,
    batch_size: int,
    base_seed: int = 0,
    stop_after: int | None = None,
    progress: bool = True,
) -> int:
    """Generate, grade and append ``todo`` in batches of ``batch_size``; returns the samples written.

    ``generate(prompt_ids, seeds)`` returns one completion per prompt. Each batch is written and
    flushed before the next starts, so an interruption loses at most one batch.
    """
    from tqdm.auto import tqdm

    limit = len(todo) if stop_after is None else min(stop_after, len(todo))
    crash_after = int(os.environ[CRASH_ENV]) if os.environ.get(CRASH_ENV) else None
    written = 0
    bar = tqdm(total=limit, unit="sample", desc="eval", disable=not progress, dynamic_ncols=True)
    start = time.perf_counter()
    with open(out_path, "a", encoding="utf-8") as f:
        while written < limit:
            batch = todo[written : min(written + batch_size, limit)]
            keys = [sample_key(r["benchmark"], r["id"], s) for r, s in batch]
            completions = generate(
                [prompt_ids[(r["benchmark"], r["id"])] for r, _ in batch],
                [sample_seed(base_seed, k) for k in keys],
            )
            graded = grade_completions([r for r, _ in batch], completions, grader)
            for (record, s), text, (pred, ok) in zip(batch, completions, graded):
                row = {
                    "benchmark": record["benchmark"],
                    "id": record["id"],
                    "sample": s,
                    "completion": text,
                    "pred": pred,
                    "answer": record["answer"],
                    "correct": bool(ok),
                }
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
            f.flush()
            written += len(batch)
            bar.update(len(batch))
            if crash_after is not None and written >= crash_after:
                os.fsync(f.fileno())
                os.kill(os.getpid(), signal.SIGKILL)  # simulate a hard kill (tests of resume)
    bar.close()
    if written:
        rate = written / max(time.perf_counter() - start, 1e-9)
        logger.info("wrote %d samples (%.2f samples/s)", written, rate)
    return written


# ---------------------------------------------------------------------------------------------------
# A whole evaluation


def _plain(cfg) -> dict[str, Any]:
    from omegaconf import OmegaConf

    if isinstance(cfg, dict):
        return cfg
    if not OmegaConf.is_config(cfg):
        cfg = OmegaConf.structured(cfg)
    return OmegaConf.to_container(cfg, resolve=True)


def default_run_name(model_path: str, adapter_path: str | None = None) -> str:
    """A short label from the model/adapter path (its last two path components)."""
    path = adapter_path or model_path
    parts = [p for p in Path(path.rstrip("/")).parts if p not in ("/", ".")]
    return "/".join(parts[-2:]) if parts else path


def check_fingerprint(out_dir: Path, cfg: Mapping[str, Any], overwrite: bool) -> None:
    """Save eval_config.json, or refuse to resume a folder made with other sample-defining settings."""
    path = out_dir / CONFIG_FILE
    current = {k: cfg.get(k) for k in FINGERPRINT_KEYS}
    if path.is_file() and not overwrite and (out_dir / SAMPLES_FILE).is_file():
        saved = json.loads(path.read_text()).get("fingerprint", {})
        diff = {
            k: (saved.get(k), current[k])
            for k in FINGERPRINT_KEYS
            if k in saved and saved.get(k) != current[k]
        }
        if diff:
            changes = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff.items())
            from prefix_rft.config.eval_schema import ConfigError

            raise ConfigError(
                f"{out_dir} holds samples made with other settings ({changes}); use another output_dir, "
                "or overwrite=true to start over"
            )
    path.write_text(json.dumps({"fingerprint": current, "config": dict(cfg)}, indent=2, default=str) + "\n")


def run_evaluation(cfg, generator=None, grader=None) -> dict:
    """Evaluate as configured by ``cfg`` (an EvalConfig, its DictConfig, or a dict); returns the summary.

    ``generator`` / ``grader`` replace the configured backend and a fresh Grader (tests, notebooks).
    The model is only loaded when some sample is still missing.
    """
    from prefix_rft.config.eval_schema import ConfigError, EvalConfig, validate_eval_config
    from prefix_rft.eval.benchmarks import load_benchmarks
    from prefix_rft.eval.report import summarize, write_summary

    defaults, given = _plain(EvalConfig()), _plain(cfg)
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ConfigError(f"unknown eval config keys {unknown}; expected keys of EvalConfig")
    c = {**defaults, **given}
    validate_eval_config(SimpleNamespace(**c))
    out_dir = Path(c["output_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    samples_path = out_dir / SAMPLES_FILE
    if c["overwrite"] and samples_path.exists():
        samples_path.unlink()
    check_fingerprint(out_dir, c, c["overwrite"])

    records = load_benchmarks(
        c["benchmarks"],
        data_file=c["data_file"],
        data_dir=c["data_dir"],
        synthetic=c["synthetic"],
        max_items=c["max_items"],
    )
    k_by_bench = {name: c["samples"] or get_spec(name).samples for name in records}
    dropped = repair_tail(samples_path)
    if dropped:
        logger.warning("%s: dropped a truncated last line (%d bytes)", samples_path, dropped)
    done = {sample_key(r["benchmark"], r["id"], r["sample"]) for r in read_samples(samples_path)}
    todo = plan_todo(records, k_by_bench, done)
    total = sum(len(recs) * k_by_bench[name] for name, recs in records.items())
    print(f"{total - len(todo)}/{total} samples already in {samples_path}; {len(todo)} to generate")

    if todo:
        own_grader = grader is None
        if own_grader:
            from prefix_rft.rewards.grader import Grader

            grader = Grader(num_workers=c["grader_workers"], timeout=c["grader_timeout"])
        if generator is None:
            generator = build_generator(c)
        sampling = SamplingSettings(c["temperature"], c["top_p"], c["max_new_tokens"], c["seed"])
        wanted = {(r["benchmark"], r["id"]): r for r, _ in todo}
        keys = list(wanted)
        ids = encode_prompts(
            generator.tokenizer,
            [make_prompt(wanted[key], c["prompt_template"], c["system_prompt"]) for key in keys],
            c["use_chat_template"],
        )
        try:
            run_samples(
                todo,
                lambda prompt_ids, seeds: generator.generate(prompt_ids, sampling, seeds),
                dict(zip(keys, ids)),
                grader,
                samples_path,
                batch_size=c["batch_size"],
                base_seed=c["seed"],
                stop_after=c["stop_after"],
                progress=c["progress"],
            )
        finally:
            if own_grader:
                grader.close()

    meta = {
        "run_name": c["run_name"] or default_run_name(c["model_path"], c["adapter_path"]),
        "model_path": c["model_path"],
        "adapter_path": c["adapter_path"],
        "settings": {
            "backend": c["backend"],
            "temperature": c["temperature"],
            "top_p": c["top_p"],
            "max_new_tokens": c["max_new_tokens"],
            "prompt_template": c["prompt_template"],
            "seed": c["seed"],
        },
    }
    plan = {name: ([r["id"] for r in recs], k_by_bench[name]) for name, recs in records.items()}
    summary = summarize(read_samples(samples_path), plan, c["pass_k"], meta)
    write_summary(summary, out_dir)
    return summary


def build_generator(c: Mapping[str, Any]):
    """The configured backend with the configured model (see prefix_rft.eval.generate)."""
    from prefix_rft.eval.generate import make_generator, resolve_model_source

    source = resolve_model_source(
        c["model_path"],
        c["adapter_path"],
        revision=c["revision"],
        dtype=c["dtype"],
        chat_template=c["chat_template"],
        trust_remote_code=c["trust_remote_code"],
        config_overrides=c["config_overrides"],
    )
    vllm = dict(c["vllm"]) if c["backend"] == "vllm" else {}
    return make_generator(c["backend"], source, **vllm)
