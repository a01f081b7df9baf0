"""Train ``prefix_rft`` 2 steps under ZeRO-3 with a colocated vLLM engine per process (for
test_zero_vllm.py).

Usage: accelerate launch --config_file zero3.yaml train_zero_vllm.py OUT_DIR MODEL

Each launched process applies the lane's shims before anything builds accelerate's state or an engine:
accelerate's CPU backend, the colocate weight sync (``reload_weights`` + re-pack of the tied output layer,
the vLLM tests' shim) and the vLLM tests' batch recorder, here writing one file per rank
(``engine_record.rank<i>.jsonl``). TRL gathers each ZeRO-3 shard for the sync (``_iter_named_params``).
Process 0 writes ``OUT_DIR/launch.json`` with the set-up both processes reported, or the error.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[2]
for path in (HERE, REPO_ROOT):  # ds_harness; tests.scale.shims and tests.scale.vllm
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from ds_harness import accelerate_cpu  # noqa: E402

# One group of 4 rows per process; the vLLM tests' completion budget and learning rate.
RUN = [
    "algorithm=prefix_rft",
    "generation=vllm_colocate",
    "data.synthetic.num_train=16",
    "data.synthetic.train_min_steps=2",
    "data.synthetic.train_max_steps=3",
    "heldout_eval.enabled=false",
    "trainer.max_steps=2",
    "trainer.per_device_train_batch_size=4",
    "trainer.num_generations=4",
    "trainer.max_completion_length=48",
    "trainer.learning_rate=3e-3",
    "trainer.logging_steps=1",
    "trainer.save_steps=1000",
]


def main(out_dir: Path, model: str) -> None:
    # CPU-sized in-process engines, as in the vLLM tests (conftest.py of tests/scale sets these for pytest).
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    accelerate_cpu.install()
    from accelerate.state import AcceleratorState, PartialState

    from tests.scale.shims import vllm_colocate
    from tests.scale.vllm import run_train

    rank = PartialState().process_index
    vllm_colocate.install(repack=True)
    run_train.RECORD = f"engine_record.rank{rank}.jsonl"  # read by the recorder at each write
    run_train.install_recorder()

    from prefix_rft.config.compose import compose_config
    from prefix_rft.pipeline import run_training

    record: dict = {}
    try:
        cfg = compose_config([f"model.name_or_path={model}", f"output_dir={out_dir}", *RUN])
        summary = run_training(cfg)
        state = PartialState()
        mine = {
            "rank": rank,
            "global_step": summary["global_step"],
            "num_processes": state.num_processes,
            "distributed_type": str(state.distributed_type),
            "backend": state.backend,
            "zero_stage": AcceleratorState().deepspeed_plugin.zero_stage,
        }
        record["ranks"] = _gather(mine, state.num_processes)
    except Exception as err:  # recorded for the test to report
        record["error"] = f"{type(err).__name__}: {err}"
        record["traceback"] = traceback.format_exc()[-4000:]
    if PartialState().is_main_process:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "launch.json").write_text(json.dumps(record, indent=2))


def _gather(mine: dict, world: int) -> list[dict]:
    """Every rank's report, on every rank (so process 0 writes what both saw, not only its own view)."""
    import torch.distributed as dist

    reports: list = [None] * world
    dist.all_gather_object(reports, mine)
    return reports


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
