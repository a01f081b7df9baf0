"""Running an evaluation: plan the missing samples, generate and grade them, append them, summarise.

The run folder holds ``samples.jsonl`` with one line per (benchmark, item, sample index)::

    {"benchmark", "id", "sample", "completion", "pred", "answer", "correct"}

Lines are appended and flushed batch by batch (:mod:`prefix_rft.eval.samples_file`), so a run that is
interrupted (killed, out of time) loses at most the batch in flight: rerunning with the same
``output_dir`` skips every finished sample and generates only the rest. Raising ``samples`` or adding
benchmarks later also only generates what is missing. Generation and grading go through the loop
shared with the held-out accuracy (:mod:`prefix_rft.eval.loop`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from prefix_rft.errors import ConfigError
from prefix_rft.eval.config import EvalConfig
from prefix_rft.eval.generate import SamplingSettings, encode_prompts, sample_seed
from prefix_rft.eval.loop import graded_batches
from prefix_rft.eval.samples_file import (
    SAMPLES_FILE,
    check_fingerprint,
    read_samples,
    repair_tail,
    sample_key,
)
from prefix_rft.eval.suites import get_spec

logger = logging.getLogger(__name__)

# Test hook: kill this process (SIGKILL, no clean-up) after writing this many samples.
CRASH_ENV = "PREFIX_RFT_EVAL_CRASH_AFTER"


def make_prompt(record: Mapping, template: str = "auto", system_prompt: str | None = None) -> list[dict]:
    """The conversational prompt of a record.

    ``auto``: the source's own prompt where it has one (LUFFY parquet), ``plain`` for the synthetic task (the
    prompt the built-in models are trained with), else ``qwen_math``. A
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
    if template == "auto":
        template = "plain" if record.get("benchmark") == "synthetic" else "qwen_math"
    return build_prompt(record["problem"], template, system_prompt)


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

    todo = todo if stop_after is None else todo[:stop_after]
    crash_after = int(os.environ[CRASH_ENV]) if os.environ.get(CRASH_ENV) else None

    def generate_batch(batch: Sequence[tuple[Mapping, int]]) -> list[str]:
        keys = [sample_key(r["benchmark"], r["id"], s) for r, s in batch]
        return generate(
            [prompt_ids[(r["benchmark"], r["id"])] for r, _ in batch],
            [sample_seed(base_seed, k) for k in keys],
        )

    def answer_of(item: tuple[Mapping, int]) -> tuple[str, str]:
        record = item[0]
        return get_spec(record["benchmark"]).answer_style, record["answer"]

    written = 0
    bar = tqdm(total=len(todo), unit="sample", desc="eval", disable=not progress, dynamic_ncols=True)
    start = time.perf_counter()
    with open(out_path, "a", encoding="utf-8") as f:
        for batch, completions, graded in graded_batches(
            todo, generate_batch, answer_of, batch_size=batch_size, grader=grader
        ):
            for (record, s), text, result in zip(batch, completions, graded):
                row = {
                    "benchmark": record["benchmark"],
                    "id": record["id"],
                    "sample": s,
                    "completion": text,
                    "pred": result.pred,
                    "answer": record["answer"],
                    "correct": result.score > 0,
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


def default_run_name(model_path: str, adapter_path: str | None = None) -> str:
    """A short label from the model/adapter path (its last two path components)."""
    path = adapter_path or model_path
    parts = [p for p in Path(path.rstrip("/")).parts if p not in ("/", ".")]
    return "/".join(parts[-2:]) if parts else path


def run_evaluation(cfg: EvalConfig | Mapping[str, Any], generator=None, grader=None) -> dict:
    """Evaluate as configured by ``cfg`` (an EvalConfig, its DictConfig, or a dict); returns the summary.

    ``generator`` / ``grader`` replace the configured backend and a fresh Grader (tests, notebooks).
    The model is only loaded when some sample is still missing.
    """
    from prefix_rft.eval.config import to_eval_config, validate_eval_config
    from prefix_rft.eval.suites import load_benchmarks

    c = to_eval_config(cfg)
    validate_eval_config(c)
    out_dir = Path(c.output_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(
            f"output_dir={out_dir} is a file; expected a folder for {SAMPLES_FILE} and the summary"
        )
    samples_path = out_dir / SAMPLES_FILE
    # Everything the user can get wrong is checked before the folder is made: the benchmarks' files and
    # (for a fresh folder) the model, so that a refusal leaves no folder and prints no sample count.
    records = load_benchmarks(
        c.benchmarks, data_file=c.data_file, data_dir=c.data_dir, synthetic=c.synthetic, max_items=c.max_items
    )
    source = None
    if generator is None and (c.overwrite or not samples_path.is_file()):
        from prefix_rft.eval.generate import resolve_model_source

        source = resolve_model_source(c.model_path, c.adapter_path, options=c.model_options())
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        return _evaluate_into(c, out_dir, records, generator, grader, source)
    except BaseException:
        # A run that made the folder and failed before its first sample leaves nothing behind.
        if created and (not samples_path.is_file() or samples_path.stat().st_size == 0):
            shutil.rmtree(out_dir, ignore_errors=True)
        raise


def _evaluate_into(c: EvalConfig, out_dir: Path, records, generator, grader, source) -> dict:
    """The body of :func:`run_evaluation` once the folder exists: resume, generate, grade, summarise."""
    from prefix_rft.eval.report import summarize, write_summary

    samples_path = out_dir / SAMPLES_FILE
    if c.overwrite and samples_path.exists():
        samples_path.unlink()
    check_fingerprint(out_dir, c, c.overwrite)
    k_by_bench = {name: c.samples or get_spec(name).samples for name in records}
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

            grader = Grader(num_workers=c.grader_workers, timeout=c.grader_timeout)
        if generator is None:
            generator = build_generator(c, source)
        sampling = SamplingSettings(c.temperature, c.top_p, c.max_new_tokens, c.seed)
        wanted = {(r["benchmark"], r["id"]): r for r, _ in todo}
        keys = list(wanted)
        ids = encode_prompts(
            generator.tokenizer,
            [make_prompt(wanted[key], c.prompt_template, c.system_prompt) for key in keys],
            c.use_chat_template,
        )
        try:
            run_samples(
                todo,
                lambda prompt_ids, seeds: generator.generate(prompt_ids, sampling, seeds),
                dict(zip(keys, ids)),
                grader,
                samples_path,
                batch_size=c.batch_size,
                base_seed=c.seed,
                stop_after=c.stop_after,
                progress=c.progress,
            )
        finally:
            if own_grader:
                grader.close()

    meta = {
        "run_name": c.run_name or default_run_name(c.model_path, c.adapter_path),
        "model_path": c.model_path,
        "adapter_path": c.adapter_path,
        "settings": {
            "backend": c.backend,
            "temperature": c.temperature,
            "top_p": c.top_p,
            "max_new_tokens": c.max_new_tokens,
            "prompt_template": c.prompt_template,
            "seed": c.seed,
        },
    }
    plan = {name: ([r["id"] for r in recs], k_by_bench[name]) for name, recs in records.items()}
    summary = summarize(read_samples(samples_path), plan, c.pass_k, meta)
    write_summary(summary, out_dir)
    return summary


def build_generator(c: EvalConfig, source=None):
    """The configured backend with the configured model (``source``: already resolved, see
    prefix_rft.eval.generate)."""
    from prefix_rft.eval.generate import make_generator, resolve_model_source

    if source is None:
        source = resolve_model_source(c.model_path, c.adapter_path, options=c.model_options())
    return make_generator(c.backend, source, c.vllm)
