"""Training subsets: a seeded fraction / size cap (the paper's 10% and 1% ablations) and the "hard" subset
of prompts a given model rarely solves (the paper's hardest-prompts analysis).

Measure pass rates once, then train on the hard subset:

    python -m prefix_rft.data.subsets --model builtin:tiny-warm --out pass_rates.jsonl --samples 8
    prefix-rft-train data.pass_rate_file=pass_rates.jsonl data.max_pass_rate=0.0
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from datasets import Dataset


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
    """``{problem key: pass rate}`` from a JSONL written by :func:`measure_pass_rates`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data.pass_rate_file={path} does not exist")
    rates: dict[str, float] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if "problem" not in row or "pass_rate" not in row:
            raise ValueError(f"{path}:{n}: expected keys 'problem' and 'pass_rate', got {sorted(row)}")
        rates[row["problem"].strip()] = float(row["pass_rate"])
    return rates


def select_hard(ds: Dataset, pass_rates: dict[str, float], max_pass_rate: float) -> Dataset:
    """Rows whose measured pass rate is at most ``max_pass_rate``; rows never measured are an error."""
    keys = [problem_key(p) for p in ds["prompt"]]
    unmeasured = [i for i, k in enumerate(keys) if k not in pass_rates]
    if unmeasured:
        raise ValueError(
            f"{len(unmeasured)} training rows have no pass rate in data.pass_rate_file (first: row "
            f"{unmeasured[0]}); measure the same data and template"
        )
    return ds.select([i for i, k in enumerate(keys) if pass_rates[k] <= max_pass_rate])


def measure_pass_rates(
    model,
    tokenizer,
    ds: Dataset,
    *,
    samples: int = 8,
    temperature: float = 1.0,
    max_new_tokens: int = 256,
    batch_size: int = 16,
    seed: int = 0,
) -> list[dict]:
    """Pass rate (correct samples / ``samples``) of ``model`` on each row of ``ds`` (prompt, answer)."""
    from prefix_rft.eval.heldout import sample_scores

    records = [{"prompt": p, "answer": a} for p, a in zip(ds["prompt"], ds["answer"])]
    scores = sample_scores(
        model, tokenizer, records, samples=samples, temperature=temperature,
        max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed,
    )  # fmt: skip
    return [
        {"problem": problem_key(r["prompt"]), "pass_rate": sum(s) / samples} for r, s in zip(records, scores)
    ]


def main(argv: list[str] | None = None) -> None:
    """``python -m prefix_rft.data.subsets``: measure pass rates of a model on the training data."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="hub id, local dir or builtin:<preset>")
    parser.add_argument("--out", required=True, help="output JSONL of {problem, pass_rate}")
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument(
        "overrides", nargs="*", help="Hydra overrides for the data, e.g. data.synthetic.num_train=200"
    )
    args = parser.parse_args(argv)

    from prefix_rft.config.compose import compose_config
    from prefix_rft.data.sources import load_train_dataset
    from prefix_rft.models.load import load_model, load_tokenizer, resolve_model_path

    cfg = compose_config([f"model.name_or_path={args.model}", "output_dir=unused", *args.overrides])
    path = resolve_model_path(cfg.model.name_or_path)
    tokenizer = load_tokenizer(cfg.model, path)
    rows = measure_pass_rates(
        load_model(cfg.model, path),
        tokenizer,
        load_train_dataset(cfg.data, apply_pass_rates=False),
        samples=args.samples,
        temperature=args.temperature,
        max_new_tokens=args.max_new_tokens,
    )
    Path(args.out).write_text("".join(json.dumps(r) + "\n" for r in rows))
    hard = sum(r["pass_rate"] == 0 for r in rows)
    print(f"wrote {len(rows)} pass rates to {args.out}; {hard} problems never solved")


if __name__ == "__main__":
    main()
