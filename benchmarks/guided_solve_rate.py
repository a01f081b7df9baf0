"""How much a demonstration prefix in the prompt helps the base model: its solve rate on 4-step problems when
it continues the first ``r`` of each worked solution (the rollouts of ``prefix_in_prompt`` and POPE).

python -m benchmarks.guided_solve_rate            # 200 problems x 8 samples, r in 0, 1/16 ... 0.95
python -m benchmarks.guided_solve_rate --quick    # 8 problems x 2 samples, 3 ratios (the test suite's)

Reads the comparison's results: a prefix can only guide where the skill the model lacks lies inside it.
Same model, template, temperature (1.0) and token budget (prefix + continuation <= 64) as the comparison's
training rollouts; prefixes cut in token space as the trainer cuts them; the reward sees prefix + continuation.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import format_table, machine_info, output_dir, pyplot, save_figure, write_json
from benchmarks.testbed import BASE_OVERRIDES, MODEL

NAME = "guided_solve_rate"
RATIOS = (0.0, 0.0625, 0.125, 0.1875, 0.25, 0.5, 0.75, 0.95)


def solve_rates(problems: int, samples: int, ratios, steps: int = 4, seed: int = 0) -> list[dict[str, Any]]:
    """Per ratio: mean solve rate over ``problems`` x ``samples`` and the share of problems solved at least once."""
    from prefix_rft.config.compose import compose_config
    from prefix_rft.data.columns import first_demonstration
    from prefix_rft.data.sources import load_train_dataset
    from prefix_rft.eval.heldout import sample_scores
    from prefix_rft.models.load import load_model, load_tokenizer, resolve_model_path
    from prefix_rft.prefix.sampling import prompt_prefix_length

    cfg = compose_config(
        [
            f"model.name_or_path={MODEL}",
            "output_dir=unused",
            *BASE_OVERRIDES,
            f"data.synthetic.train_min_steps={steps}",
            f"data.synthetic.train_max_steps={steps}",
            f"data.synthetic.num_train={problems}",
            f"data.synthetic.seed={seed + 1000}",  # not the comparison's training problems
        ]
    )
    ds = load_train_dataset(cfg.data, apply_pass_rates=False)
    path = resolve_model_path(cfg.model.name_or_path)
    model, tok = load_model(cfg.model, path), load_tokenizer(cfg.model, path)
    budget = int(cfg.trainer.max_completion_length)
    demos = [
        tok(text=first_demonstration(d), add_special_tokens=False)["input_ids"] for d in ds["demonstration"]
    ]
    rows = []
    for ratio in ratios:
        records = [
            {
                "prompt": p,
                "answer": a,
                "prefix_ids": ids[: prompt_prefix_length(ratio, len(ids), budget)] if ratio > 0 else [],
            }
            for p, a, ids in zip(ds["prompt"], ds["answer"], demos)
        ]
        scores = sample_scores(
            model,
            tok,
            records,
            samples=samples,
            temperature=1.0,
            max_new_tokens=budget,
            batch_size=16,
            seed=seed,
        )
        flat = [x for s in scores for x in s]
        rows.append(
            {
                "ratio": ratio,
                "prefix_tokens": sum(len(r["prefix_ids"]) for r in records) / len(records),
                "solve_rate": sum(flat) / len(flat),
                "solved_once": sum(any(s) for s in scores) / len(scores),
            }
        )
    return rows


def plot(rows: list[dict[str, Any]], path: Path) -> Path:
    """Solve rate and solved-at-least-once against the prefix ratio."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ratios = [r["ratio"] for r in rows]
    ax.plot(ratios, [r["solve_rate"] for r in rows], "o-", label="solve rate (T=1)")
    ax.plot(ratios, [r["solved_once"] for r in rows], "s--", label="solved at least once")
    ax.set_xlabel("demonstration prefix in the prompt (fraction of its tokens)")
    ax.set_ylabel("4-step problems")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="upper left")
    return save_figure(fig, path)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Measure, print the table, write ``guided_solve_rate.json`` and ``.png``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="8 problems x 2 samples, ratios 0, 0.5, 0.95")
    p.add_argument("--problems", type=int, default=None, help="4-step problems (default 200)")
    p.add_argument("--samples", type=int, default=None, help="samples per problem and ratio (default 8)")
    p.add_argument("--out", default=None, help=f"output folder (default benchmarks/results/{NAME}/)")
    ns = p.parse_args(argv)
    problems = ns.problems or (8 if ns.quick else 200)
    samples = ns.samples or (2 if ns.quick else 8)
    ratios = (0.0, 0.5, 0.95) if ns.quick else RATIOS
    started = time.time()
    rows = solve_rates(problems, samples, ratios)
    text = format_table(
        ["prefix ratio", "prefix tokens", "solve rate", "solved at least once"],
        [
            [r["ratio"], f"{r['prefix_tokens']:.1f}", f"{r['solve_rate']:.3f}", f"{r['solved_once']:.3f}"]
            for r in rows
        ],
    )
    result = {
        "options": {"problems": problems, "samples": samples, "model": MODEL, "steps": 4},
        "rows": rows,
        "table": text,
        "machine": machine_info(),
        "wall_s": time.time() - started,
    }
    out = output_dir(NAME, ns.out, ns.quick)
    write_json(out / f"{NAME}.json", result)
    plot(rows, out / f"{NAME}.png")
    print(
        f"{MODEL} on {problems} 4-step problems x {samples} samples, T=1, prefix + continuation <= 64 tokens\n"
    )
    print(text)
    print(f"\nwall {result['wall_s']:.0f}s; results in {out}")
    return result


if __name__ == "__main__":
    main()
