"""``prefix-rft-manifest``: the settings of a recipe that differ from its paper (:mod:`prefix_rft.fidelity`).

prefix-rft-manifest qwen2.5-math-7b/luffy            # the differences, each with its source
prefix-rft-manifest qwen2.5-math-7b/luffy --all      # every compared setting
prefix-rft-manifest qwen2.5-math-7b/sft_then_rft_strong     # vs arXiv 2604.23747
prefix-rft-manifest qwen2.5-math-7b/sft_then_rft --reference 2604.23747
prefix-rft-manifest qwen2.5-math-7b/rft trainer.temperature=0.7 --strict   # exit 1: unexplained
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from prefix_rft.fidelity import format_manifest, manifest
from prefix_rft.paper_settings import REFERENCES


def main(argv: Sequence[str] | None = None) -> int:
    """``prefix-rft-manifest`` / ``python -m prefix_rft.cli.manifest``."""
    parser = argparse.ArgumentParser(
        prog="prefix-rft-manifest", description="Settings of a recipe that differ from its paper."
    )
    parser.add_argument("recipe", help="<model>/<name> under recipes/, or the path of a recipe YAML")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. trainer.temperature=0.7")
    parser.add_argument(
        "--all", action="store_true", help="show every compared setting, not only differences"
    )
    parser.add_argument("--reference", choices=sorted(REFERENCES), help="compare with this paper instead")
    parser.add_argument("--num-processes", type=int, help="GPUs (default: the recipe's documented command)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a difference is unexplained")
    args = parser.parse_args(argv)
    try:
        label, rows = manifest(args.recipe, args.overrides, args.reference, args.num_processes)
    except (FileNotFoundError, KeyError) as err:
        print(f"error: {err.args[0] if err.args else err}", file=sys.stderr)
        return 2
    except Exception as err:  # Hydra/OmegaConf: a bad override or recipe; one line, no traceback
        from hydra.errors import HydraException
        from omegaconf.errors import OmegaConfBaseException

        if not isinstance(err, (HydraException, OmegaConfBaseException)):
            raise
        print(f"error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2
    print(format_manifest(args.recipe, label, rows, args.all))
    return 1 if args.strict and any(r.unexplained for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
