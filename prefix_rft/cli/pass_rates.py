"""``prefix-rft-pass-rates``: measure a model's pass rate on every training prompt (for the hard subset).

prefix-rft-pass-rates --model builtin:tiny-warm --out pass_rates.jsonl --samples 8
prefix-rft-train data.pass_rate_file=pass_rates.jsonl data.max_pass_rate=0.0

POPE (shortest demonstration prefix that makes each never-solved problem solvable, tried shortest first):
prefix-rft-pass-rates --model builtin:tiny-warm --out pope.jsonl --prefix-ratios 0.0625,0.125,0.1875,0.25
prefix-rft-train algorithm=prefix_in_prompt algorithm.guide=failed algorithm.prefix_ratio_file=pope.jsonl

The training data is the one ``prefix-rft-train`` would use with the same Hydra overrides (given last).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def check_output_file(out: Path, overwrite: bool) -> None:
    """Refuse, before any model is loaded, an ``--out`` that exists (without ``--overwrite``), is a folder,
    or whose folder does not exist."""
    from prefix_rft.errors import ConfigError, RunFolderError

    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; expected a .jsonl file to write")
    if not out.parent.is_dir():
        raise ConfigError(f"--out {out}: its folder {out.parent} does not exist")
    if out.exists() and not overwrite:
        with open(out, "rb") as f:
            lines = sum(1 for line in f if line.strip())
        raise RunFolderError(
            f"--out {out} already exists ({lines} lines); pass --overwrite to replace it, or choose another file"
        )


def main(argv: list[str] | None = None) -> None:
    """Console entry point: write one ``{problem, pass_rate}`` JSON line per training problem."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="hub id, local dir or builtin:<preset>")
    parser.add_argument("--out", required=True, help="output JSONL of {problem, pass_rate}")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace --out if it exists (refused without this flag)"
    )
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument(
        "--prefix-ratios",
        default="",
        help="comma-separated prefix ratios in (0, 1): also write each problem's shortest solving one "
        "(prefix_ratio; 0 = solved without, null = none solved it) for algorithm.prefix_ratio_file",
    )
    parser.add_argument(
        "overrides", nargs="*", help="Hydra overrides for the data, e.g. data.synthetic.num_train=200"
    )
    args = parser.parse_args(argv)
    try:
        ratios = [float(r) for r in args.prefix_ratios.split(",") if r.strip()]
    except ValueError:
        parser.error(f"--prefix-ratios: expected comma-separated numbers, got {args.prefix_ratios!r}")
    if any(not 0 < r < 1 for r in ratios):
        parser.error(f"--prefix-ratios: every ratio must lie in (0, 1), got {args.prefix_ratios!r}")

    from prefix_rft.config.compose import compose_config
    from prefix_rft.data.sources import load_train_dataset
    from prefix_rft.errors import report_user_errors
    from prefix_rft.eval.pass_rates import measure_pass_rates, prefix_ratio_counts
    from prefix_rft.models.load import check_model_path, load_model, load_tokenizer, resolve_model_path

    cfg = compose_config([f"model.name_or_path={args.model}", "output_dir=unused", *args.overrides])
    with report_user_errors("prefix-rft-pass-rates"):
        check_output_file(Path(args.out), args.overwrite)
        check_model_path(cfg.model.name_or_path, "--model")
        dataset = load_train_dataset(cfg.data, apply_pass_rates=False)
        path = resolve_model_path(cfg.model.name_or_path)
        rows = measure_pass_rates(
            load_model(cfg.model, path),
            load_tokenizer(cfg.model, path),
            dataset,
            samples=args.samples,
            temperature=args.temperature,
            max_new_tokens=args.max_new_tokens,
            prefix_ratios=ratios,
        )
    # Written beside the target and renamed: an interrupted write never leaves a half file under --out.
    out = Path(args.out)
    tmp = out.with_name(f".{out.name}.partial")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.replace(out)
    hard = sum(r["pass_rate"] == 0 for r in rows)
    print(f"wrote {len(rows)} pass rates to {args.out}; {hard} problems never solved")
    if ratios:
        counts = prefix_ratio_counts(rows, ratios)
        found = {r: counts[f"ratio_{r}"] for r in ratios}
        print(f"shortest solving prefix ratio: {found}; no ratio solved {counts['never_solved']}")


if __name__ == "__main__":
    main()
