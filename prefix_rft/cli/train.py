"""``prefix-rft-train``: one Hydra entry point for every RL algorithm.

prefix-rft-train                                   # Prefix-RFT, tiny model, synthetic task, CPU
prefix-rft-train algorithm=rft trainer.learning_rate=1e-6
prefix-rft-train -m algorithm=rft,prefix_rft       # a sweep, one run folder each
accelerate launch --config_file recipes/accelerate_configs/ddp.yaml -m prefix_rft.cli.train ...
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

logger = logging.getLogger("prefix_rft.train")


def resolved_config(cfg: DictConfig) -> dict[str, Any]:
    """The config as plain data with every interpolation resolved and unset trainer fields dropped."""
    from prefix_rft.config.trainer_args import set_trainer_args

    data = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    data["trainer"] = set_trainer_args(cfg.trainer)
    return data


def save_resolved_config(cfg: DictConfig, out_dir: Path) -> Path:
    """Write ``config.yaml`` (resolved) next to the checkpoints."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "config.yaml"
    path.write_text(OmegaConf.to_yaml(OmegaConf.create(resolved_config(cfg))))
    return path


def resolve_resume(value: str | None, out_dir: Path) -> str | None:
    """``latest`` -> newest checkpoint in the run folder (None if there is none yet); a path is checked."""
    if value is None:
        return None
    if value == "latest":
        from transformers.trainer_utils import get_last_checkpoint

        return get_last_checkpoint(str(out_dir)) if out_dir.is_dir() else None
    if not Path(value).is_dir():
        raise FileNotFoundError(f"resume_from_checkpoint={value} is not a checkpoint directory")
    return value


def _is_main_process() -> bool:
    from accelerate import PartialState

    return PartialState().is_main_process


STAGE_DONE = "stage_complete.json"


def _write_log_history(trainer, path: Path) -> None:
    with open(path, "w") as f:
        for row in trainer.state.log_history:
            f.write(json.dumps(row) + "\n")


def _with_output_dir(cfg: DictConfig, out_dir: Path) -> DictConfig:
    """A copy of ``cfg`` whose trainers write to ``out_dir`` (one subfolder per stage)."""
    stage = cfg.copy()
    stage.output_dir = str(out_dir)
    return stage


def _run_stage(
    cfg: DictConfig, kind: str, model, tokenizer, train_dataset, out_dir: Path, main_process: bool
):
    """Train one stage (``sft`` or ``rl``) into ``out_dir``, resuming from its own checkpoints."""
    from prefix_rft.config.build import build_rl_trainer, build_sft_trainer

    stage_cfg = _with_output_dir(cfg, out_dir)
    build = build_sft_trainer if kind == "sft" else build_rl_trainer
    trainer = build(stage_cfg, model, tokenizer, train_dataset)
    resume = resolve_resume(cfg.resume_from_checkpoint, out_dir)
    output = trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(str(out_dir))
    if main_process:
        _write_log_history(trainer, out_dir / "log_history.jsonl")
    return trainer, output


def run_training(cfg: DictConfig) -> dict[str, Any]:
    """Validate, load, evaluate, train (one stage, or SFT then RL), save, evaluate again; returns the summary."""
    from transformers import set_seed

    from prefix_rft.config.build import build_quantization_config
    from prefix_rft.config.validate import validate_train_config
    from prefix_rft.data.sources import drop_long_prompts, heldout_records, load_train_dataset
    from prefix_rft.eval.heldout import heldout_accuracy
    from prefix_rft.models.load import (
        load_model,
        load_tokenizer,
        resolve_model_path,
        save_merged_model,
        with_config_overrides,
    )

    validate_train_config(cfg)  # before anything heavy is loaded
    out_dir = Path(cfg.output_dir)
    main_process = _is_main_process()
    if main_process:
        save_resolved_config(cfg, out_dir)
    set_seed(cfg.seed)

    # One checkpoint directory for trainer and vLLM, with model.config_overrides written into its config.
    model_path = with_config_overrides(cfg.model, resolve_model_path(cfg.model.name_or_path))
    tokenizer = load_tokenizer(cfg.model, model_path)
    train_dataset = load_train_dataset(cfg.data)
    train_dataset = drop_long_prompts(
        train_dataset, tokenizer, cfg.data.max_prompt_length, cfg.data.on_bad_row
    )
    model = load_model(cfg.model, model_path, quantization_config=build_quantization_config(cfg))

    ev = cfg.heldout_eval
    heldout = heldout_records(cfg.data) if ev.enabled else []

    def evaluate(m) -> dict[str, float]:
        if not heldout or not main_process:
            return {}
        return heldout_accuracy(
            m,
            tokenizer,
            heldout,
            samples=ev.samples,
            temperature=ev.temperature,
            max_new_tokens=ev.max_new_tokens,
            batch_size=ev.batch_size,
            seed=cfg.seed,
        )

    algo = cfg.algorithm
    fresh = (
        resolve_resume(cfg.resume_from_checkpoint, out_dir) is None and not (out_dir / "stage1_sft").is_dir()
    )
    before = evaluate(model) if fresh else {}
    stages: list[dict[str, Any]] = []
    if algo.sft_first:
        sft_dir = out_dir / "stage1_sft"
        if (sft_dir / STAGE_DONE).is_file():
            logger.info("SFT stage already complete in %s; loading its model", sft_dir)
        else:
            sft_trainer, sft_out = _run_stage(
                cfg, "sft", model, tokenizer, train_dataset, sft_dir, main_process
            )
            model_dir = sft_dir
            if cfg.peft.enabled:
                # RL starts from the SFT model: fold the adapter in (RL then adds a fresh adapter).
                model_dir = sft_dir / "merged"
                if main_process:
                    save_merged_model(sft_trainer.model, tokenizer, model_dir)
            if main_process:
                done = {
                    "global_step": sft_trainer.state.global_step,
                    "train_runtime_s": sft_out.metrics.get("train_runtime"),
                    "model_dir": str(model_dir),
                }
                (sft_dir / STAGE_DONE).write_text(json.dumps(done))
            sft_trainer.accelerator.wait_for_everyone()
            del sft_trainer
        done = json.loads((sft_dir / STAGE_DONE).read_text())
        stages.append({"stage": "sft", "output_dir": str(sft_dir), **done})
        model = load_model(cfg.model, done["model_dir"], quantization_config=build_quantization_config(cfg))
        rl_dir = out_dir / "stage2_rl"
        trainer, train_output = _run_stage(cfg, "rl", model, tokenizer, train_dataset, rl_dir, main_process)
        stages.append(
            {
                "stage": "rl",
                "output_dir": str(rl_dir),
                "global_step": trainer.state.global_step,
                "train_runtime_s": train_output.metrics.get("train_runtime"),
            }
        )
        trainer.save_model(str(out_dir))  # the final model also sits at the top of the run folder
    else:
        kind = "sft" if algo.trainer == "sft" else "rl"
        trainer, train_output = _run_stage(cfg, kind, model, tokenizer, train_dataset, out_dir, main_process)
    after = evaluate(trainer.model)
    if cfg.peft.enabled and cfg.peft.merge_on_save and main_process:
        print(f"merged model: {save_merged_model(trainer.model, tokenizer, out_dir / 'merged')}")

    summary = {
        "algorithm": algo.name,
        "model": cfg.model.name_or_path,
        "output_dir": str(out_dir),
        "global_step": trainer.state.global_step,
        "train_runtime_s": train_output.metrics.get("train_runtime"),
        "heldout_before": before,
        "heldout_after": after,
    }
    if stages:
        summary["stages"] = stages
    if main_process:
        (out_dir / "metrics.json").write_text(json.dumps(summary, indent=2))
        if stages:  # a single stage wrote its log in out_dir already; staged runs get the RL stage's on top
            _write_log_history(trainer, out_dir / "log_history.jsonl")
        if before or after:
            print(
                f"held-out accuracy ({len(heldout)} problems, avg@{ev.samples}): "
                f"before {before.get('accuracy', float('nan')):.3f} -> after {after.get('accuracy', float('nan')):.3f}"
            )
        print(f"run folder: {out_dir}")
    return summary


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
    from prefix_rft.config.validate import ConfigError

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
