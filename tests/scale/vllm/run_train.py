"""``prefix-rft-train`` under a vLLM backend on CPU, with the lane's shims and a batch recorder.

Run as a script (vLLM spawns workers, hence the ``__main__`` guard)::

    python tests/scale/vllm/run_train.py --shim colocate --record -- <overrides> [:: <overrides> ...]

Jobs separated by ``::`` run one after the other in this process (each may be a ``-m`` sweep), so they share
the imports and, in colocate mode, one engine.

The recorder writes one JSON line per training batch (after TRL scored it) with each row's prompt and
completion token ids, its completion-side prefix length, whether it is a whole demonstration, the engine's
and the trainer's log-probs of its tokens; and one line per engine request (prompt ids and max_tokens), so
the tests can check what was generated, not only what was trained.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))  # the repository root: tests.scale.shims


def _floats(t) -> list[float | None]:
    return [None if math.isnan(x) else round(float(x), 6) for x in t.tolist()]


RECORD = "engine_record.jsonl"  # in each run's folder


def install_recorder() -> None:
    """Record every training batch and every engine request into ``<run folder>/engine_record.jsonl``."""
    from trl import GRPOTrainer
    from trl.generation.vllm_client import VLLMClient
    from vllm import LLM

    current: dict[str, Path] = {}

    def write(kind: str, **fields) -> None:
        with (current["dir"] / RECORD).open("a") as out:
            out.write(json.dumps({"kind": kind, **fields}) + "\n")

    inner_init = GRPOTrainer.__init__

    def init(self, *args, **kwargs):
        inner_init(self, *args, **kwargs)
        current["dir"] = Path(self.args.output_dir)
        current["dir"].mkdir(parents=True, exist_ok=True)
        # The instance's own method, so the batch is recorded after every subclass added its columns.
        outer = self._generate_and_score_completions
        self._generate_and_score_completions = lambda inputs: batch(self, outer, inputs)

    GRPOTrainer.__init__ = init

    def batch(self, outer, inputs):
        output = outer(inputs)
        if not self.model.training:
            return output
        rows = []
        demo_ids = getattr(self, "_demo_ids", None)
        for i in range(output["completion_ids"].size(0)):
            p_mask = output["prompt_mask"][i].bool()
            c_mask = output["completion_mask"][i].bool()
            demo = inputs[i].get("demonstration")
            if isinstance(demo, (list, tuple)):
                demo = next((d for d in demo if d), None)
            row = {
                "prompt": output["prompt_ids"][i][p_mask].tolist(),
                "completion": output["completion_ids"][i][: int(c_mask.sum())].tolist(),
                "prefix_len": int(output["prefix_mask"][i].sum()) if "prefix_mask" in output else 0,
                "whole_demo": bool(output["demonstration_row"][i])
                if "demonstration_row" in output
                else False,
                "demo": list(demo_ids(demo)) if demo and demo_ids else None,
            }
            n = len(row["completion"])
            for key, name in (("sampling_per_token_logps", "engine"), ("old_per_token_logps", "trainer")):
                if output.get(key) is not None:
                    row[name] = _floats(output[key][i][:n])
            rows.append(row)
        write(
            "batch", step=self.state.global_step, max_completion_length=self.max_completion_length, rows=rows
        )
        return output

    inner_llm = LLM.generate

    def llm_generate(self, prompts, sampling_params=None, *args, **kwargs):
        params = sampling_params if isinstance(sampling_params, list) else [sampling_params] * len(prompts)
        write(
            "request",
            prompts=[p["prompt_token_ids"] if isinstance(p, dict) else None for p in prompts],
            max_tokens=[sp.max_tokens for sp in params],
        )
        return inner_llm(self, prompts, sampling_params, *args, **kwargs)

    LLM.generate = llm_generate

    inner_client = VLLMClient.generate

    def client_generate(self, prompts, *args, **kwargs):
        write(
            "request",
            prompts=list(prompts),
            max_tokens=[kwargs.get("max_tokens")] * len(prompts),
            n=kwargs.get("n", 1),
        )
        return inner_client(self, prompts, *args, **kwargs)

    VLLMClient.generate = client_generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shim", choices=("colocate", "colocate-stale", "server", "none"), required=True)
    parser.add_argument("--record", action="store_true", help=f"write {RECORD} into each run folder")
    parser.add_argument("--sync-dir", type=Path, help="server mode: where the trainer writes its weights")
    parser.add_argument("overrides", nargs="*", help="hydra overrides; '::' starts the next job")
    args = parser.parse_args()
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    # The colocated engine forms a one-process torch.distributed group: on a free port, not a shared default.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        os.environ["MASTER_PORT"] = str(sock.getsockname()[1])

    from tests.scale.shims import vllm_colocate, vllm_server

    if args.shim.startswith("colocate"):
        vllm_colocate.install(repack=args.shim == "colocate")
    elif args.shim == "server":
        vllm_server.install_trainer_side(args.sync_dir)
    if args.record:
        install_recorder()

    from hydra.core.global_hydra import GlobalHydra

    from prefix_rft.cli.train import main as train_main

    jobs: list[list[str]] = [[]]
    for item in args.overrides:
        if item == "::":
            jobs.append([])
        else:
            jobs[-1].append(item)
    for job in jobs:
        GlobalHydra.instance().clear()
        sys.argv = ["prefix-rft-train", *job]
        train_main()


if __name__ == "__main__":
    main()
