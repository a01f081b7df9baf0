"""Two-process Prefix-RFT run for tests/test_distributed.py (launched with torchrun, gloo on CPU).

Usage: python -m torch.distributed.run --nproc_per_node 2 tests/dist/two_process_prefix_rft.py OUT_DIR MODEL_DIR

Builds the trainer with build_rl_trainer on the tiny model, trains a few steps, and writes
``OUT_DIR/thresholds_rank<r>.json``: per loss call, the entropy keep-threshold the process used (the return
value of ``PrefixRFTTrainer._global_threshold``), the prefix-token entropies it held and the threshold
those alone would give.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from prefix_rft.config.build import build_rl_trainer
from prefix_rft.config.compose import compose_config
from prefix_rft.config.validate import validate_train_config
from prefix_rft.cost.counters import cost_state
from prefix_rft.data.sources import load_train_dataset
from prefix_rft.losses import top_fraction_threshold
from prefix_rft.models.load import load_model, load_tokenizer
from prefix_rft.trainers.prefix_rft import PrefixRFTTrainer

STEPS = 2


def record_thresholds(records: list[dict]) -> None:
    """Wrap ``_global_threshold`` so every call appends what it returned (and the local-only value)."""
    original = PrefixRFTTrainer._global_threshold

    def wrapped(self, values: torch.Tensor, largest: bool):
        threshold = original(self, values, largest)
        local = top_fraction_threshold(values.float(), self.algorithm.keep_fraction, largest=largest)
        records.append(
            {
                "step": self.state.global_step,
                "num_local_prefix_tokens": int(values.numel()),
                "entropies": values.float().tolist(),
                "keep_fraction": self.algorithm.keep_fraction,
                "largest": largest,
                "threshold": None if threshold is None else float(threshold),
                "local_threshold": None if local is None else float(local),
            }
        )
        return threshold

    PrefixRFTTrainer._global_threshold = wrapped


def main(out_dir: Path, model_dir: str) -> None:
    cfg = compose_config(
        [
            "algorithm=prefix_rft",
            f"model.name_or_path={model_dir}",
            f"output_dir={out_dir / 'run'}",
            "data.synthetic.num_train=32",
            f"trainer.max_steps={STEPS}",
            # 4 rows per process = one group of 4 with one hybrid rollout on each process.
            "trainer.per_device_train_batch_size=4",
            "trainer.num_generations=4",
            "trainer.max_completion_length=24",
            "+trainer.save_strategy=no",
            "+trainer.use_cpu=true",
            # A fixed ratio keeps the prefixes several tokens long on both processes.
            "scheduler=uniform",
            "scheduler.low=0.4",
            "scheduler.high=0.8",
        ]
    )
    validate_train_config(cfg)
    records: list[dict] = []
    record_thresholds(records)
    tokenizer = load_tokenizer(cfg.model)
    trainer = build_rl_trainer(cfg, load_model(cfg.model), tokenizer, load_train_dataset(cfg.data))
    trainer.train()
    rank = trainer.accelerator.process_index
    result = {
        "rank": rank,
        "world_size": trainer.accelerator.num_processes,
        "global_step": trainer.state.global_step,
        "calls": records,
        "cost": cost_state(trainer).counters.as_dict(),
    }
    (out_dir / f"thresholds_rank{rank}.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
