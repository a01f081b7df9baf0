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
from pathlib import Path

from omegaconf import DictConfig

from prefix_rft.config.command_line import parse_flags
from prefix_rft.plugins import load_plugins, plain_plugins_overrides, plugins_on_command_line


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


def run_config_dir(argv: list[str]) -> Path | None:
    """The run folder named by ``--config-dir RUN [--config-name config]`` when it holds a run's saved
    config (see :func:`prefix_rft.pipeline.save_resolved_config`), else None.

    Hydra searches ``conf/`` before an added ``--config-dir``, so ``--config-name config`` would find
    the default job's config; a run folder is therefore made the primary config directory instead.
    """
    from prefix_rft.pipeline import RUN_CONFIG_MARK

    def value(*flags: str) -> str | None:
        for i, arg in enumerate(argv):
            for flag in flags:
                if arg == flag and i + 1 < len(argv):
                    return argv[i + 1]
                if arg.startswith(flag + "="):
                    return arg.split("=", 1)[1]
        return None

    folder, name = value("--config-dir", "-cd"), value("--config-name", "-cn")
    if folder is None or name not in (None, "config", "config.yaml"):
        return None
    saved = Path(folder) / "config.yaml"
    try:
        with open(saved, encoding="utf-8") as f:
            first = f.readline()
    except OSError:
        return None
    return Path(folder).resolve() if first.startswith(RUN_CONFIG_MARK) else None


def quiet_library_noise() -> None:
    """Keep the console to the run's own lines: no weight-loading bars, no deprecation notices that the
    libraries raise about settings of their own (they say nothing about the run)."""
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    warnings.filterwarnings(
        "ignore", message=r".*(gradient_checkpointing|is_gradient_checkpointing).* is deprecated"
    )
    warnings.filterwarnings("ignore", message=r".*'pin_memory' argument is set as true but no accelerator")


def main() -> None:
    """Console entry point (``prefix-rft-train``); Hydra parses the command line."""
    from prefix_rft.cli.help import help_page
    from prefix_rft.config.compose import conf_dir
    from prefix_rft.errors import report_user_errors

    # '+plugins=' as 'plugins=' (the key exists); Hydra reads sys.argv itself, so it is rewritten there.
    sys.argv[1:] = argv = plain_plugins_overrides(sys.argv[1:])
    with report_user_errors("prefix-rft-train"):
        # Outside algorithms register before anything lists or composes the algorithms.
        load_plugins(command_line_plugins(argv))

    page = help_page(argv, conf_dir())  # --help, --help algorithm=NAME, --help-scheduler NAME, ...
    if page is not None:
        print(page)
        return
    if "--help-trainer" in argv:
        from prefix_rft.config.trainer_args import trl_field_help

        names = argv[argv.index("--help-trainer") + 1 :]
        if not names:
            print("usage: prefix-rft-train --help-trainer FIELD [FIELD ...]  (e.g. epsilon)", file=sys.stderr)
            raise SystemExit(2)
        for name in names:
            try:
                print(f"trainer.{name}: {trl_field_help(name.removeprefix('trainer.'))}")
            except KeyError as err:
                print(f"prefix-rft-train: {err.args[0]}", file=sys.stderr)
                raise SystemExit(2) from None
        return

    import hydra

    from prefix_rft.config.command_line import check_command_line, job_view
    from prefix_rft.config.schema import register_configs
    from prefix_rft.pipeline import run_training
    from prefix_rft.training.folder_claim import note_folder_state, register_run_dir_resolver

    # The cached schema: composing (and --cfg job) does not import TRL; the run checks the live one.
    register_configs(cached=True)
    register_run_dir_resolver(new_command=True)
    share_run_time()
    config_path = run_config_dir(argv) or conf_dir()
    # A typo (unknown option, key or value) is one line and exit 2, before Hydra runs anything.
    flags, composed = check_command_line(argv, config_path, "config", "prefix-rft-train")
    if composed is not None and flags.cfg == "job" and not flags.package and not flags.resolve:
        print(job_view(composed), end="")
        return
    # Whether a folder named on the command line is new: a run refused at start-up removes only such.
    note_folder_state(named_run_dir(flags.overrides))

    def task(cfg: DictConfig) -> None:
        from hydra.core.hydra_config import HydraConfig

        quiet_library_noise()
        if int(os.environ.get("RANK", "0")) > 0:
            # One log: the other processes of a multi-process launch only report problems.
            logging.getLogger().setLevel(logging.WARNING)
        overrides = list(HydraConfig.get().overrides.task)
        # A config, data or model mistake is the user's to fix: one clear line, no traceback.
        with report_user_errors("prefix-rft-train"):
            run_training(cfg, overrides)

    hydra.main(config_path=str(config_path), config_name="config", version_base="1.3")(task)()


def command_line_plugins(argv: list[str]) -> list[str]:
    """The plugin modules this command needs: those a run folder's config.yaml lists (the folder of
    ``--config-dir RUN`` or of ``hydra.run.dir=RUN``, so that a resume imports them again), then those
    named by ``plugins=[...]`` on the command line."""
    overrides = parse_flags(argv).overrides
    modules: list[str] = []
    for folder in (run_config_dir(argv), named_run_dir(overrides)):
        modules += [m for m in saved_plugins(folder) if m not in modules]
    return modules + [m for m in plugins_on_command_line(overrides) if m not in modules]


def saved_plugins(folder: str | Path | None) -> list[str]:
    """The ``plugins`` of the run config saved in ``folder`` (empty when there is none)."""
    if folder is None:
        return []
    import yaml

    from prefix_rft.pipeline import RUN_CONFIG_MARK

    try:
        text = (Path(folder) / "config.yaml").read_text(encoding="utf-8")
        saved = yaml.safe_load(text) if text.startswith(RUN_CONFIG_MARK) else None
    except (OSError, yaml.YAMLError):
        return []  # an unreadable config is reported where the run reads it
    listed = saved.get("plugins") if isinstance(saved, dict) else None
    return [str(m) for m in listed] if isinstance(listed, list) else []


def named_run_dir(overrides: list[str]) -> str | None:
    """The folder ``hydra.run.dir=DIR`` names on the command line (the last one wins), else None."""
    folder = None
    for override in overrides:
        if override.startswith("hydra.run.dir="):
            folder = override.split("=", 1)[1]
    return folder


if __name__ == "__main__":
    main()
