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
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from prefix_rft.config.resolved import resolved_config
from prefix_rft.training.run_folder import STAGE_DONE, resolve_resume

logger = logging.getLogger("prefix_rft.train")

__all__ = ["STAGE_DONE", "Stage", "plan_stages", "resolve_resume", "run_training", "save_resolved_config"]


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


# The first line of a run's config.yaml: how prefix-rft-train recognises a run folder given as --config-dir.
RUN_CONFIG_MARK = "# prefix-rft-train run config"


def save_resolved_config(cfg: DictConfig, out_dir: Path) -> Path:
    """Write ``config.yaml`` (resolved) next to the checkpoints, as a config ``prefix-rft-train`` can run
    again: ``--config-dir <run> --config-name config``. Its run folder is Hydra's (``hydra.run.dir``,
    this folder unless overridden) as in ``conf/config.yaml``, so ``hydra.run.dir=DIR`` picks another."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data = resolved_config(cfg)
    folder = os.path.abspath(data["output_dir"])
    data["output_dir"] = "${hydra:runtime.output_dir}"
    runnable = {
        "defaults": ["train_schema", "_self_"],
        "hydra": {"run": {"dir": folder}, "job": {"chdir": False}},
        **data,
    }
    header = [
        f"{RUN_CONFIG_MARK}: the settings of the run in {folder}. Rerun or extend it from its folder:",
        f"#   prefix-rft-train --config-dir {folder} --config-name config resume_from_checkpoint=latest trainer.max_steps=N",
        "# (hydra.run.dir=DIR instead runs the same settings into a new folder)",
    ]
    path = out_dir / "config.yaml"
    path.write_text("\n".join(header) + "\n" + OmegaConf.to_yaml(OmegaConf.create(runnable)))
    return path


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


def check_enough_rows(cfg: DictConfig, kinds: tuple[str, ...], rows: int) -> None:
    """Refuse data too small for one optimizer step (TRL would train 0 steps and call it done).

    An RL step samples ``generation_batch_size / num_generations`` distinct prompts and drops an
    incomplete batch; an SFT step needs one row.
    """
    from prefix_rft.config.trainer_args import TrainerValues
    from prefix_rft.errors import DataError

    if "rl" not in kinds:
        return
    t = TrainerValues(cfg.trainer)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    batch = t.generation_batch_size
    how = "trainer.generation_batch_size"
    if batch is None:
        per_generation = t.steps_per_generation or t.gradient_accumulation_steps
        batch = t.per_device_train_batch_size * world * per_generation
        how = (
            f"trainer.per_device_train_batch_size={t.per_device_train_batch_size} x {world} process(es) x "
            f"{'trainer.steps_per_generation' if t.steps_per_generation else 'trainer.gradient_accumulation_steps'}"
            f"={per_generation}"
        )
    needed = batch // t.num_generations
    if rows < needed:
        raise DataError(
            f"{rows} usable training row(s) from {cfg.data.path or cfg.data.source}, but one RL step needs "
            f"{needed} prompts ({how} / trainer.num_generations={t.num_generations}); add data or lower "
            "the batch size"
        )


def run_stage(
    cfg: DictConfig, stage: Stage, model, tokenizer, train_dataset, main_process: bool, progress=None
):
    """Train one stage into its folder, resuming from its own checkpoints; returns (trainer, train output).
    ``progress`` (a :class:`_RunProgress`) is told when training starts and which trainer runs."""
    from prefix_rft.config.build import STAGE_BUILDERS
    from prefix_rft.errors import TrainingError
    from prefix_rft.models.model_card import install_model_card
    from prefix_rft.training.progress import install_progress_log
    from prefix_rft.training.run_folder import resume_request

    stage_cfg = cfg.copy()
    stage_cfg.output_dir = str(stage.output_dir)
    trainer = STAGE_BUILDERS[stage.kind](stage_cfg, model, tokenizer, train_dataset)
    install_progress_log(trainer)
    install_model_card(trainer, cfg.model.name_or_path, cfg.algorithm.name, stage.kind)
    resume = resolve_resume(resume_request(cfg), stage.output_dir)
    if progress is not None:
        progress.started, progress.kind, progress.trainer = True, stage.kind, trainer
    output = trainer.train(resume_from_checkpoint=resume)
    if progress is not None:
        progress.trainer = None
    if trainer.state.global_step == 0:
        # Nothing was trained (e.g. every batch was dropped): never save the start model as a result.
        raise TrainingError(
            f"the {stage.kind} stage trained 0 optimizer steps (trainer.max_steps="
            f"{trainer.args.max_steps}, {len(train_dataset)} training row(s)); nothing was saved as finished"
        )
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


def run_training(cfg: DictConfig, overrides: list[str] | None = None) -> dict[str, Any]:
    """Validate, load, evaluate, train the algorithm's stages, save, evaluate again; returns the summary.

    ``overrides``: the command-line overrides ``cfg`` was composed with (``prefix-rft-train`` passes
    Hydra's); they tell what the user set, for the notices about ignored knobs and for a resume, which
    keeps the run folder's saved settings and refuses overrides that change them. None: unknown, every
    value counts as set.

    The run folder is locked for the run; a refusal before training starts removes a folder this
    command created. Ctrl-C ends in a :class:`~prefix_rft.errors.Interrupted` that says where
    training stopped, the last checkpoint and the command that resumes.
    """
    from prefix_rft.config.resume_config import config_for_resume
    from prefix_rft.config.validate import (
        check_environment,
        check_schema,
        check_trl_configs,
        validate_train_config,
    )
    from prefix_rft.errors import Interrupted, PrefixRFTError
    from prefix_rft.training.folder_claim import created_by_this_command, hold_run_folder
    from prefix_rft.training.progress import run_log
    from prefix_rft.training.run_folder import resume_request

    out_dir = Path(cfg.output_dir)
    created = created_by_this_command(out_dir) or not out_dir.exists()
    main_process = _is_main_process()
    progress = _RunProgress()
    try:
        check_schema(cfg)  # a typo is named as such, before the resume compares values
        resume = resume_request(cfg)
        with hold_run_folder(out_dir, main_process):
            if resume is not None:
                cfg = config_for_resume(cfg, out_dir, overrides)
            validate_train_config(cfg, overrides)  # before anything heavy is loaded
            check_environment(cfg)
            check_trl_configs(cfg)
            with run_log(out_dir, main_process):
                return _train(cfg, out_dir, progress)
    except KeyboardInterrupt:
        raise Interrupted(interrupted_message(cfg, out_dir, progress)) from None
    except PrefixRFTError:
        if created and not progress.started and main_process:
            _discard_folder(out_dir)
        raise


@dataclass
class _RunProgress:
    """How far a run got: whether a stage began training, and the trainer of the current stage."""

    started: bool = False
    kind: str = ""
    trainer: Any = None


def _discard_folder(out_dir: Path) -> None:
    """Remove a run folder this command created and a refusal left without any result."""
    import shutil

    from prefix_rft.training.run_folder import METRICS, checkpoints

    if out_dir.is_dir() and not checkpoints(out_dir) and not (out_dir / METRICS).exists():
        shutil.rmtree(out_dir, ignore_errors=True)


def interrupted_message(cfg: DictConfig, out_dir: Path, progress: _RunProgress) -> str:
    """Where an interrupted run stopped, its last checkpoint, and the command that resumes it."""
    from prefix_rft.config.algorithm_args import algorithm_from_config
    from prefix_rft.training.run_folder import checkpoints

    try:
        stages = plan_stages(algorithm_from_config(cfg)[0].stages, out_dir)
    except Exception:  # the config itself was not valid yet: only the run folder is known
        stages = [Stage("rl", out_dir)]
    saved = [p for s in stages for p in checkpoints(s.output_dir)]
    if progress.trainer is not None:
        state = progress.trainer.state
        where = (
            f"training stopped after step {state.global_step}/{state.max_steps} of the {progress.kind} stage"
        )
    elif progress.started:
        where = "stopped after training, before the run finished"
    else:
        where = "stopped before training started"
    last = f"last checkpoint: {saved[-1]}" if saved else "no checkpoint saved yet (a resume starts over)"
    return f"{where}; {last}; resume with: prefix-rft-train hydra.run.dir={out_dir} resume_from_checkpoint=latest"


def _train(cfg: DictConfig, out_dir: Path, run_progress: _RunProgress) -> dict[str, Any]:
    """The run itself, in its steps: folder and resume checks, inputs, held-out before, stages, held-out
    after, summary."""
    from transformers import set_seed

    from prefix_rft.config.algorithm_args import algorithm_from_config

    run_started = time.perf_counter()
    entry, _ = algorithm_from_config(cfg)
    stages = plan_stages(entry.stages, out_dir)
    _check_folder_and_resume(cfg, out_dir, stages)
    main_process = _is_main_process()
    if main_process:
        save_resolved_config(cfg, out_dir)
    set_seed(cfg.seed)
    inputs = _load_inputs(cfg, entry.stages)
    heldout = _HeldOut(cfg, inputs.tokenizer, main_process)
    before = heldout.before(inputs.model, out_dir)
    result = _run_stages(cfg, out_dir, stages, inputs, main_process, run_progress)
    after = heldout.evaluate(result.trainer.model, "after training")
    if cfg.peft.enabled and cfg.peft.merge_on_save and main_process:
        from prefix_rft.models.load import save_merged_model
        from prefix_rft.training.progress import logger as progress

        merged = save_merged_model(result.trainer.model, inputs.tokenizer, out_dir / "merged")
        progress.info("merged model: %s", merged)
    summary = _summary(cfg, entry.name, out_dir, result, before, after, run_started)
    if main_process:
        _write_summary(out_dir, summary, result, heldout, before, after)
    return summary


def _check_folder_and_resume(cfg: DictConfig, out_dir: Path, stages: list[Stage]) -> None:
    """Refuse a run folder that holds another run, a finished run, or a damaged checkpoint to resume from,
    before anything is loaded; say when a resume finds nothing to resume."""
    from prefix_rft.config.trainer_args import set_trainer_args
    from prefix_rft.models.load import check_model_path
    from prefix_rft.training.run_folder import check_not_finished, check_run_folder, resume_request

    resume = resume_request(cfg)
    check_run_folder(out_dir, [s.output_dir for s in stages], resume)
    if resume is not None:
        # Each stage's checkpoint, resolved once: a checkpoint path that is not one, or a damaged
        # checkpoint, fails here, not after loading.
        resumed = [resolve_resume(resume, s.output_dir) for s in stages]
        sft_steps = stages[-1].kind == "sft" and "max_steps" in set_trainer_args(cfg.sft_trainer)
        group = "sft_trainer" if sft_steps else "trainer"
        check_not_finished(
            out_dir, resumed[-1], int(set_trainer_args(cfg[group]).get("max_steps", -1)), f"{group}.max_steps"
        )
        if all(r is None for r in resumed) and not any((s.output_dir / STAGE_DONE).is_file() for s in stages):
            logger.info(
                "resume_from_checkpoint=%s: %s holds no checkpoint yet; the run starts fresh", resume, out_dir
            )
    check_model_path(cfg.model.name_or_path)


@dataclass
class _Inputs:
    """What every stage trains with: tokenizer, training rows, the starting model and its quantization."""

    tokenizer: Any
    train_dataset: Any
    model: Any
    quantization: Any


def _load_inputs(cfg: DictConfig, kinds: tuple[str, ...]) -> _Inputs:
    """Tokenizer, training rows (long prompts dropped, enough rows checked) and the starting model."""
    from prefix_rft.config.build import build_quantization_config
    from prefix_rft.config.lengths import prompt_length_limit
    from prefix_rft.data.gold_check import gold_style
    from prefix_rft.data.sources import drop_long_prompts, load_train_dataset
    from prefix_rft.models.load import load_model, load_tokenizer, resolve_model_path, with_config_overrides

    # One checkpoint directory for trainer and vLLM, with model.config_overrides written into its config.
    model_path = with_config_overrides(cfg.model, resolve_model_path(cfg.model.name_or_path))
    tokenizer = load_tokenizer(cfg.model, model_path)
    train_dataset = load_train_dataset(cfg.data, gold_style=gold_style(cfg.reward.funcs))
    train_dataset = drop_long_prompts(train_dataset, tokenizer, prompt_length_limit(cfg), cfg.data.on_bad_row)
    check_enough_rows(cfg, kinds, len(train_dataset))
    quantization = build_quantization_config(cfg)
    model = load_model(cfg.model, model_path, quantization_config=quantization)
    return _Inputs(tokenizer, train_dataset, model, quantization)


class _HeldOut:
    """The held-out evaluation of a run (``heldout_eval.*``), on the main process only."""

    def __init__(self, cfg: DictConfig, tokenizer, main_process: bool):
        from prefix_rft.data.sources import heldout_records

        self.cfg, self.tokenizer, self.main_process = cfg, tokenizer, main_process
        self.records = heldout_records(cfg.data) if cfg.heldout_eval.enabled else []

    def evaluate(self, model, label: str) -> dict[str, float]:
        """Accuracy of ``model`` on the held-out records (empty when disabled or not the main process)."""
        from prefix_rft.eval.heldout import heldout_accuracy

        if not self.records or not self.main_process:
            return {}
        ev = self.cfg.heldout_eval
        return heldout_accuracy(
            model,
            self.tokenizer,
            self.records,
            label=label,
            samples=ev.samples,
            greedy=ev.greedy,
            temperature=ev.temperature,
            max_new_tokens=ev.max_new_tokens,
            batch_size=ev.batch_size,
            seed=self.cfg.seed,
        )

    def before(self, model, out_dir: Path) -> dict[str, float]:
        """The starting model's accuracy, measured once and kept in the run folder: a resumed run reports
        the value of its first start (``model`` is still the starting model; training loads checkpoints)."""
        from prefix_rft.training.run_folder import load_heldout_before, save_heldout_before

        cfg = self.cfg
        measured_with = OmegaConf.to_container(
            OmegaConf.create(
                {
                    "model": cfg.model.name_or_path,
                    "seed": cfg.seed,
                    "heldout_eval": cfg.heldout_eval,
                    "data": {k: cfg.data[k] for k in ("synthetic", "prompt_template", "system_prompt")},
                }
            ),
            resolve=True,
        )
        before = load_heldout_before(out_dir, measured_with) if self.main_process else {}
        if before is None:
            before = self.evaluate(model, "before training")
            if before:
                save_heldout_before(out_dir, before, measured_with)
        return before

    def report(self, before: dict[str, float], after: dict[str, float]) -> list[str]:
        """The before -> after lines of the progress log."""
        from prefix_rft.eval.heldout import report_lines

        ev = self.cfg.heldout_eval
        return report_lines(before, after, len(self.records), ev.samples, ev.temperature)


@dataclass
class _StagesResult:
    """The last stage's trainer and train output; every earlier stage's summary; each stage's cost."""

    trainer: Any
    train_output: Any
    summaries: list[dict[str, Any]]
    costs: list[dict[str, Any]]
    # Training time of this invocation: the rest of its wall time is overhead (loading, evaluation, saving).
    train_seconds: float


def _run_stages(
    cfg: DictConfig,
    out_dir: Path,
    stages: list[Stage],
    inputs: _Inputs,
    main_process: bool,
    run_progress: _RunProgress,
) -> _StagesResult:
    """Train the stages in order, each from the previous one's model; a finished stage is loaded, not rerun."""
    from prefix_rft.models.load import load_model

    model = inputs.model
    summaries: list[dict[str, Any]] = []
    costs: list[dict[str, Any]] = []
    train_seconds = 0.0
    for stage in stages[:-1]:
        if (stage.output_dir / STAGE_DONE).is_file():
            logger.info("%s stage already complete in %s; loading its model", stage.kind, stage.output_dir)
        else:
            trainer, output = run_stage(
                cfg, stage, model, inputs.tokenizer, inputs.train_dataset, main_process, run_progress
            )
            _finish_intermediate(cfg, stage, trainer, output, inputs.tokenizer, main_process)
            train_seconds += _session_seconds(trainer)
            del trainer
        done = json.loads((stage.output_dir / STAGE_DONE).read_text())
        costs.append(done.pop("cost", None) or stage_cost_record_missing(stage.kind))
        summaries.append({"stage": stage.kind, "output_dir": str(stage.output_dir), **done})
        model = load_model(cfg.model, done["model_dir"], quantization_config=inputs.quantization)
    last = stages[-1]
    trainer, train_output = run_stage(
        cfg, last, model, inputs.tokenizer, inputs.train_dataset, main_process, run_progress
    )
    costs.append(stage_cost_record(trainer, last.kind))
    train_seconds += _session_seconds(trainer)
    if len(stages) > 1:
        summaries.append(
            {
                "stage": last.kind,
                "output_dir": str(last.output_dir),
                "global_step": trainer.state.global_step,
                "train_runtime_s": train_output.metrics.get("train_runtime"),
            }
        )
        trainer.save_model(
            str(last.output_dir.parent)
        )  # the final model also sits at the top of the run folder
    return _StagesResult(trainer, train_output, summaries, costs, train_seconds)


def _summary(
    cfg, name: str, out_dir: Path, result: _StagesResult, before, after, run_started
) -> dict[str, Any]:
    """``metrics.json``: what ran, the held-out accuracy before and after, each stage, and the cost."""
    from prefix_rft.cost.estimate import cost_block

    trainer = result.trainer
    summary: dict[str, Any] = {
        "algorithm": name,
        "model": cfg.model.name_or_path,
        "output_dir": str(out_dir),
        "global_step": trainer.state.global_step,
        "train_runtime_s": result.train_output.metrics.get("train_runtime"),
        "heldout_before": before,
        "heldout_after": after,
    }
    if result.summaries:
        summary["stages"] = result.summaries
    overhead = time.perf_counter() - run_started - result.train_seconds
    summary["cost"] = cost_block(result.costs, overhead, _num_gpus(trainer))
    return summary


def _write_summary(out_dir: Path, summary, result: _StagesResult, heldout: _HeldOut, before, after) -> None:
    """Write ``metrics.json`` (and, for a staged run, the last stage's log on top); print the report."""
    from prefix_rft.training.progress import logger as progress

    (out_dir / "metrics.json").write_text(json.dumps(summary, indent=2))
    if (
        result.summaries
    ):  # a single stage wrote its log in out_dir already; staged runs get the last one's on top
        _write_log_history(result.trainer, out_dir / "log_history.jsonl")
    if before or after:
        for line in heldout.report(before, after):
            progress.info(line)
    progress.info("run folder: %s", out_dir)
