"""The library entry point of training: a composed config in, a trained model and a summary out.

``run_training(cfg)`` validates the config, loads tokenizer, data and model, measures the held-out
accuracy, runs the algorithm's stages in order, saves, and measures again. The stages are data (the
registry entry's ``stages``: ``("rl",)``, ``("sft",)``, ``("sft", "rl")``): each stage trains the
previous stage's final model into its own folder and resumes from its own checkpoints; a finished
stage is skipped on a rerun. ``prefix-rft-train`` and the benchmark scripts call this function::

    from prefix_rft.config.compose import compose_config
    from prefix_rft.pipeline import run_training

    summary = run_training(compose_config(["algorithm=rft", "output_dir=outputs/my-run"]))
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

logger = logging.getLogger("prefix_rft.train")

# Written into a stage folder when the stage has finished (a rerun loads its model instead).
STAGE_DONE = "stage_complete.json"


@dataclass(frozen=True)
class Stage:
    """One stage of a run: what it trains (``sft`` or ``rl``) and where it writes."""

    kind: str
    output_dir: Path


def plan_stages(stages: tuple[str, ...], out_dir: Path) -> list[Stage]:
    """A single stage writes into the run folder; several get ``stage<i>_<kind>`` subfolders."""
    if len(stages) == 1:
        return [Stage(stages[0], out_dir)]
    return [Stage(kind, out_dir / f"stage{i}_{kind}") for i, kind in enumerate(stages, 1)]


def resolved_config(cfg: DictConfig) -> dict[str, Any]:
    """The config as plain data with every interpolation resolved, unset trainer fields dropped and the
    algorithm's knobs as the run used them."""
    from prefix_rft.config.algorithm_args import resolved_algorithm
    from prefix_rft.config.trainer_args import set_trainer_args

    data = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    data["algorithm"] = resolved_algorithm(cfg)
    data["trainer"] = set_trainer_args(cfg.trainer)
    data["sft_trainer"] = set_trainer_args(cfg.sft_trainer)
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


def _write_log_history(trainer, path: Path) -> None:
    with open(path, "w") as f:
        for row in trainer.state.log_history:
            f.write(json.dumps(row) + "\n")


def stage_cost_record(trainer, kind: str) -> dict[str, Any]:
    """The cost record of a trained stage (prefix_rft.cost.estimate), from the trainer's counters."""
    from prefix_rft.cost.counters import CostCounters, cost_state
    from prefix_rft.cost.estimate import stage_cost
    from prefix_rft.cost.trainers import num_parameters

    state = cost_state(trainer)
    if state is None:
        logger.warning("the %s trainer counts no cost (no CostState callback): its counts are 0", kind)
    counters = state.counters if state is not None else CostCounters()
    return stage_cost(kind, counters, num_parameters(trainer.model), _num_gpus(trainer))


def _num_gpus(trainer) -> int:
    return trainer.accelerator.num_processes if trainer.accelerator.device.type == "cuda" else 0


def _session_seconds(trainer) -> float:
    from prefix_rft.cost.counters import cost_state

    state = cost_state(trainer)
    return state.session_seconds if state is not None else 0.0


def stage_cost_record_missing(kind: str) -> dict[str, Any]:
    """A zero cost record for a stage finished before cost accounting existed (its marker has no cost)."""
    from prefix_rft.cost.counters import CostCounters
    from prefix_rft.cost.estimate import stage_cost

    logger.warning("the finished %s stage recorded no cost; it counts as 0", kind)
    return stage_cost(kind, CostCounters(), 0, 0)


def run_stage(cfg: DictConfig, stage: Stage, model, tokenizer, train_dataset, main_process: bool):
    """Train one stage into its folder, resuming from its own checkpoints; returns (trainer, train output)."""
    from prefix_rft.config.build import STAGE_BUILDERS

    stage_cfg = cfg.copy()
    stage_cfg.output_dir = str(stage.output_dir)
    trainer = STAGE_BUILDERS[stage.kind](stage_cfg, model, tokenizer, train_dataset)
    resume = resolve_resume(cfg.resume_from_checkpoint, stage.output_dir)
    output = trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(str(stage.output_dir))
    if main_process:
        _write_log_history(trainer, stage.output_dir / "log_history.jsonl")
    return trainer, output


def _finish_intermediate(cfg: DictConfig, stage: Stage, trainer, output, tokenizer, main_process: bool):
    """Mark a stage that another stage follows as done, with the folder its successor starts from."""
    model_dir = stage.output_dir
    if cfg.peft.enabled:
        # The next stage starts from this model: fold the adapter in (the next stage adds a fresh one).
        from prefix_rft.models.load import save_merged_model

        model_dir = stage.output_dir / "merged"
        if main_process:
            save_merged_model(trainer.model, tokenizer, model_dir)
    if main_process:
        done = {
            "global_step": trainer.state.global_step,
            "train_runtime_s": output.metrics.get("train_runtime"),
            "model_dir": str(model_dir),
            "cost": stage_cost_record(trainer, stage.kind),
        }
        (stage.output_dir / STAGE_DONE).write_text(json.dumps(done))
    trainer.accelerator.wait_for_everyone()


def run_training(cfg: DictConfig) -> dict[str, Any]:
    """Validate, load, evaluate, train the algorithm's stages, save, evaluate again; returns the summary."""
    from transformers import set_seed

    from prefix_rft.config.algorithm_args import algorithm_from_config
    from prefix_rft.config.build import build_quantization_config
    from prefix_rft.config.validate import validate_train_config
    from prefix_rft.data.sources import drop_long_prompts, heldout_records, load_train_dataset
    from prefix_rft.eval.heldout import heldout_accuracy, report_lines
    from prefix_rft.models.load import (
        load_model,
        load_tokenizer,
        resolve_model_path,
        save_merged_model,
        with_config_overrides,
    )

    run_started = time.perf_counter()
    validate_train_config(cfg)  # before anything heavy is loaded
    entry, _ = algorithm_from_config(cfg)
    out_dir = Path(cfg.output_dir)
    stages = plan_stages(entry.stages, out_dir)
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
    quantization = build_quantization_config(cfg)
    model = load_model(cfg.model, model_path, quantization_config=quantization)

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
            greedy=ev.greedy,
            temperature=ev.temperature,
            max_new_tokens=ev.max_new_tokens,
            batch_size=ev.batch_size,
            seed=cfg.seed,
        )

    started = resolve_resume(cfg.resume_from_checkpoint, out_dir) is not None or any(
        s.output_dir != out_dir and s.output_dir.is_dir() for s in stages
    )
    before = {} if started else evaluate(model)
    summaries: list[dict[str, Any]] = []
    costs: list[dict[str, Any]] = []
    # Training time of this invocation: the rest of its wall time is overhead (loading, evaluation, saving).
    session_train_seconds = 0.0
    for stage in stages[:-1]:
        if (stage.output_dir / STAGE_DONE).is_file():
            logger.info("%s stage already complete in %s; loading its model", stage.kind, stage.output_dir)
        else:
            trainer, output = run_stage(cfg, stage, model, tokenizer, train_dataset, main_process)
            _finish_intermediate(cfg, stage, trainer, output, tokenizer, main_process)
            session_train_seconds += _session_seconds(trainer)
            del trainer
        done = json.loads((stage.output_dir / STAGE_DONE).read_text())
        costs.append(done.pop("cost", None) or stage_cost_record_missing(stage.kind))
        summaries.append({"stage": stage.kind, "output_dir": str(stage.output_dir), **done})
        model = load_model(cfg.model, done["model_dir"], quantization_config=quantization)
    last = stages[-1]
    trainer, train_output = run_stage(cfg, last, model, tokenizer, train_dataset, main_process)
    costs.append(stage_cost_record(trainer, last.kind))
    session_train_seconds += _session_seconds(trainer)
    if len(stages) > 1:
        summaries.append(
            {
                "stage": last.kind,
                "output_dir": str(last.output_dir),
                "global_step": trainer.state.global_step,
                "train_runtime_s": train_output.metrics.get("train_runtime"),
            }
        )
        trainer.save_model(str(out_dir))  # the final model also sits at the top of the run folder
    after = evaluate(trainer.model)
    if cfg.peft.enabled and cfg.peft.merge_on_save and main_process:
        print(f"merged model: {save_merged_model(trainer.model, tokenizer, out_dir / 'merged')}")

    summary = {
        "algorithm": entry.name,
        "model": cfg.model.name_or_path,
        "output_dir": str(out_dir),
        "global_step": trainer.state.global_step,
        "train_runtime_s": train_output.metrics.get("train_runtime"),
        "heldout_before": before,
        "heldout_after": after,
    }
    if summaries:
        summary["stages"] = summaries
    from prefix_rft.cost.estimate import cost_block

    overhead = time.perf_counter() - run_started - session_train_seconds
    summary["cost"] = cost_block(costs, overhead, _num_gpus(trainer))
    if main_process:
        (out_dir / "metrics.json").write_text(json.dumps(summary, indent=2))
        if (
            summaries
        ):  # a single stage wrote its log in out_dir already; staged runs get the last stage's on top
            _write_log_history(trainer, out_dir / "log_history.jsonl")
        if before or after:
            for line in report_lines(before, after, len(heldout), ev.samples, ev.temperature):
                print(line)
        print(f"run folder: {out_dir}")
    return summary
