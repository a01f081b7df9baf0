"""Train several algorithms one after another in one ``accelerate launch`` (for test_zero_algorithms.py).

Usage: accelerate launch --config_file CFG train_algorithms.py OUT_DIR MODEL ALGORITHM [ALGORITHM ...]

Each algorithm runs the project's pipeline (``run_training``, what ``prefix-rft-train`` calls) for 2 steps
into ``OUT_DIR/<algorithm>``; process 0 writes ``OUT_DIR/<algorithm>/launch.json`` with the distributed
set-up accelerate reported, or the error. One launch for all of them: starting two processes that import
torch, TRL and DeepSpeed costs far more on a CPU than 2 steps of the tiny model.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from ds_harness import accelerate_cpu  # noqa: E402

# Tiny batches: 2 processes x one group of 4 rows; completions long enough for the warm-started model to
# reach an answer sometimes (rewards vary, so RL moves the weights); a high learning rate so that 2 steps
# move the weights visibly in float32.
COMMON = [
    "data.synthetic.num_train=16",
    "heldout_eval.enabled=false",
    "trainer.max_steps=2",
    "trainer.per_device_train_batch_size=4",
    "trainer.num_generations=4",
    "trainer.max_completion_length=64",
    "trainer.learning_rate=1e-3",
    "trainer.logging_steps=1",
    "trainer.save_steps=1000",
    "sft_trainer.max_steps=2",
    "sft_trainer.per_device_train_batch_size=2",
    "sft_trainer.learning_rate=1e-3",
]


def main(out_dir: Path, model: str, algorithms: list[str]) -> None:
    # Before anything creates accelerate's PartialState: run_training asks it which process is the main one.
    accelerate_cpu.install()
    from accelerate.state import AcceleratorState, PartialState

    from prefix_rft.config.compose import compose_config
    from prefix_rft.pipeline import run_training

    for name in algorithms:
        folder = out_dir / name
        record: dict = {"algorithm": name}
        try:
            overrides = [f"algorithm={name}", f"model.name_or_path={model}", f"output_dir={folder}"]
            cfg = compose_config([*overrides, *COMMON])
            summary = run_training(cfg)
            state = PartialState()
            record.update(
                global_step=summary["global_step"],
                num_processes=state.num_processes,
                distributed_type=str(state.distributed_type),
                backend=state.backend,
                zero_stage=AcceleratorState().deepspeed_plugin.zero_stage,
            )
        except Exception as err:  # recorded for the test to report; the next algorithm still runs
            record["error"] = f"{type(err).__name__}: {err}"
            record["traceback"] = traceback.format_exc()[-4000:]
        if PartialState().is_main_process:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "launch.json").write_text(json.dumps(record, indent=2))
        PartialState().wait_for_everyone()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], sys.argv[3:])
