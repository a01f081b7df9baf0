"""``prefix-rft-train``: one Hydra entry point for every RL algorithm.

prefix-rft-train                                   # Prefix-RFT, tiny model, synthetic task, CPU
prefix-rft-train algorithm=rft trainer.learning_rate=1e-6
prefix-rft-train -m algorithm=rft,prefix_rft       # a sweep, one run folder each
accelerate launch --config_file recipes/accelerate_configs/ddp.yaml -m prefix_rft.cli.train ...

The command line is parsed by Hydra; the run itself is :func:`prefix_rft.pipeline.run_training`.
"""

from __future__ import annotations

import logging
import os
import sys

from omegaconf import DictConfig


def share_run_time() -> None:
    """Under ``accelerate launch``/``torchrun`` every process runs Hydra, which names the run folder after the
    current time; process 0's timestamp is broadcast (``PREFIX_RFT_RUN_TIME``, read by conf/config.yaml)
    so that all processes write to one run folder."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or os.environ.get("PREFIX_RFT_RUN_TIME"):
        return
    from datetime import datetime

    import torch
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list

    # Initialises the process group. Without a GPU, accelerate only forms a multi-process (gloo) group when
    # asked for CPU; otherwise every process would silently train alone.
    PartialState(cpu=not torch.cuda.is_available())
    stamp = [datetime.now().strftime("%Y-%m-%d_%H-%M-%S")]
    broadcast_object_list(stamp, from_process=0)
    os.environ["PREFIX_RFT_RUN_TIME"] = stamp[0]


def main() -> None:
    """Console entry point (``prefix-rft-train``); Hydra parses the command line."""
    import hydra

    from prefix_rft.config.compose import conf_dir
    from prefix_rft.config.schema import register_configs
    from prefix_rft.errors import ConfigError
    from prefix_rft.pipeline import run_training

    register_configs()
    share_run_time()

    def task(cfg: DictConfig) -> None:
        if int(os.environ.get("RANK", "0")) > 0:
            # One log: the other processes of a multi-process launch only report problems.
            logging.getLogger().setLevel(logging.WARNING)
        try:
            run_training(cfg)
        except ConfigError as err:
            # A config mistake is the user's to fix: one clear line, no traceback.
            print(f"prefix-rft-train: config error: {err}", file=sys.stderr)
            raise SystemExit(2) from None

    hydra.main(config_path=str(conf_dir()), config_name="config", version_base="1.3")(task)()


if __name__ == "__main__":
    main()
