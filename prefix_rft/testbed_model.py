"""The testbed model: build it (``builtin:tiny-warm``) from its recipe, or measure a model's skill profile.

    python -m prefix_rft.testbed_model --out /tmp/tiny-warm      # ~16-20 min on 2 CPU cores
    python -m prefix_rft.testbed_model --model tiny-fork --out /tmp/tiny-fork  # tiny-warm continued
    python -m prefix_rft.testbed_model --profile-only <model dir> # accuracy by number of steps

The build is deterministic on one machine with one torch thread (``OMP_NUM_THREADS=1``): it prints the
weights' sha256, to compare with the shipped one in ``PROFILE.json``. The profile is greedy and sampled
(T=1, the RL temperature) accuracy plus process metrics on fixed held-out problems of each level.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

PROFILE_LEVELS = (1, 2, 3, 4)
# Fixed profile sets, far from the seeds of warm start (10_000), training (0) and held-out (1) problems.
PROFILE_SEED = 20_000


def weights_sha256(model_dir: str | Path) -> str:
    """sha256 of ``model.safetensors`` in ``model_dir``."""
    return hashlib.sha256((Path(model_dir) / "model.safetensors").read_bytes()).hexdigest()


def build_testbed(out: str | Path) -> Path:
    """Build the tokenizer and model of :data:`~prefix_rft.models.tiny.TESTBED_RECIPE` into ``out``."""
    from prefix_rft.models.tiny import TESTBED_RECIPE, build_tiny_model, build_tiny_tokenizer
    from prefix_rft.models.warm_start import warm_start

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tiny_tokenizer()
    model = build_tiny_model(tokenizer, **TESTBED_RECIPE["architecture"])
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return warm_start(out, out, **TESTBED_RECIPE["warm_start"])


def build_fork_testbed(
    out: str | Path, checkpoint_every: int = 0, max_steps: int | None = None, base: str | Path | None = None
) -> Path:
    """Build ``builtin:tiny-fork`` from :data:`~prefix_rft.models.tiny.FORK_RECIPE` into ``out``.

    It continues the shipped ``tiny-warm`` (or ``base``). ``checkpoint_every`` > 0 also saves the model every
    that many steps under ``out/checkpoints`` (the recipe's learning rate is constant, so each is the model
    of a shorter run); ``max_steps`` overrides the recipe's length (to measure candidates past it).
    """
    from prefix_rft.models.tiny import FORK_RECIPE, ensure_tiny_model
    from prefix_rft.models.warm_start import warm_start

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    kwargs = dict(FORK_RECIPE["warm_start"])
    if max_steps is not None:
        kwargs["max_steps_train"] = max_steps
    source = Path(base) if base is not None else ensure_tiny_model(FORK_RECIPE["base"])
    return warm_start(
        source,
        out,
        checkpoint_every=checkpoint_every,
        checkpoint_dir=out / "checkpoints" if checkpoint_every > 0 else None,
        **kwargs,
    )


def profile_records(num_per_level: int, levels=PROFILE_LEVELS) -> list[dict]:
    """The fixed profile problems: ``num_per_level`` of each level, prompt template ``plain``."""
    from prefix_rft.data.prompts import build_prompt
    from prefix_rft.data.synthetic import generate_problems

    records = []
    for k in levels:
        for r in generate_problems(num_per_level, seed=PROFILE_SEED + k, min_steps=k, max_steps=k):
            records.append({"prompt": build_prompt(r["problem"], "plain"), **r})
    return records


def measure_profile(model_dir: str | Path, num_per_level: int = 200, samples: int = 4) -> dict:
    """Greedy and T=1 accuracy (avg@``samples``) and process metrics of the model, by level."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from prefix_rft.eval.heldout import heldout_accuracy

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    profile: dict = {"num_per_level": num_per_level, "samples": samples}
    for k in PROFILE_LEVELS:
        records = profile_records(num_per_level, levels=(k,))
        m = heldout_accuracy(
            model,
            tokenizer,
            records,
            samples=samples,
            greedy=True,
            temperature=1.0,
            max_new_tokens=64,
            batch_size=64,
        )
        profile[f"steps_{k}"] = {
            key: round(value, 4)
            for key, value in m.items()
            if not key.endswith("per_problem") and "accuracy/steps_" not in key
        }
    return profile


def main(argv: list[str] | None = None) -> None:
    """Command line: build (``--out``) and/or measure (``--profile-only``) the testbed model."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="folder to build the testbed model into")
    p.add_argument("--profile-only", help="measure the profile of this model folder; build nothing")
    p.add_argument("--num-per-level", type=int, default=200, help="profile problems per level")
    p.add_argument(
        "--model",
        choices=("tiny-warm", "tiny-fork"),
        default="tiny-warm",
        help="which testbed model to build",
    )
    p.add_argument(
        "--checkpoint-every", type=int, default=0, help="tiny-fork: also save the model every N steps"
    )
    p.add_argument("--max-steps", type=int, default=None, help="tiny-fork: train this many steps instead")
    args = p.parse_args(argv)
    if not args.out and not args.profile_only:
        p.error("give --out (build) or --profile-only (measure)")
    target = Path(args.profile_only or args.out)
    result: dict = {}
    if not args.profile_only:
        started = time.time()
        if args.model == "tiny-fork":
            build_fork_testbed(target, args.checkpoint_every, args.max_steps)
        else:
            build_testbed(target)
        result["build_seconds"] = round(time.time() - started, 1)
    result["sha256"] = weights_sha256(target)
    result["profile"] = measure_profile(target, args.num_per_level)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
