"""``prefix-rft-train``: one Hydra entry point for every RL algorithm.

prefix-rft-train                                   # Prefix-RFT, tiny model, synthetic task, CPU
prefix-rft-train algorithm=rft trainer.learning_rate=1e-6
prefix-rft-train -m algorithm=rft,prefix_rft       # a sweep, one run folder each
accelerate launch --config_file recipes/accelerate_configs/ddp.yaml -m prefix_rft.cli.train ...
"""

from __future__ import annotations

import json
import logging
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


def run_training(cfg: DictConfig) -> dict[str, Any]:
    """Validate, load, evaluate, train, save and evaluate again; returns the run summary."""
    from transformers import set_seed

    from prefix_rft.config.build import build_rl_trainer
    from prefix_rft.config.validate import validate_train_config
    from prefix_rft.data.sources import drop_long_prompts, heldout_records, load_train_dataset
    from prefix_rft.eval.heldout import heldout_accuracy
    from prefix_rft.models.load import load_model, load_tokenizer, resolve_model_path

    validate_train_config(cfg)  # before anything heavy is loaded
    out_dir = Path(cfg.output_dir)
    main_process = _is_main_process()
    if main_process:
        save_resolved_config(cfg, out_dir)
    set_seed(cfg.seed)

    model_path = resolve_model_path(cfg.model.name_or_path)
    tokenizer = load_tokenizer(cfg.model, model_path)
    train_dataset = load_train_dataset(cfg.data)
    train_dataset = drop_long_prompts(
        train_dataset, tokenizer, cfg.data.max_prompt_length, cfg.data.on_bad_row
    )
    model = load_model(cfg.model, model_path)

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

    resume = resolve_resume(cfg.resume_from_checkpoint, out_dir)
    before = evaluate(model) if resume is None else {}
    trainer = build_rl_trainer(cfg, model, tokenizer, train_dataset)
    train_output = trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(str(out_dir))
    after = evaluate(trainer.model)

    summary = {
        "algorithm": cfg.algorithm.name,
        "model": cfg.model.name_or_path,
        "output_dir": str(out_dir),
        "global_step": trainer.state.global_step,
        "train_runtime_s": train_output.metrics.get("train_runtime"),
        "heldout_before": before,
        "heldout_after": after,
    }
    if main_process:
        (out_dir / "metrics.json").write_text(json.dumps(summary, indent=2))
        with open(out_dir / "log_history.jsonl", "w") as f:
            for row in trainer.state.log_history:
                f.write(json.dumps(row) + "\n")
        if before or after:
            print(
                f"held-out accuracy ({len(heldout)} problems, avg@{ev.samples}): "
                f"before {before.get('accuracy', float('nan')):.3f} -> after {after.get('accuracy', float('nan')):.3f}"
            )
        print(f"run folder: {out_dir}")
    return summary


def main() -> None:
    """Console entry point (``prefix-rft-train``); Hydra parses the command line."""
    import hydra

    from prefix_rft.config.compose import conf_dir
    from prefix_rft.config.schema import register_configs
    from prefix_rft.config.validate import ConfigError

    register_configs()

    def task(cfg: DictConfig) -> None:
        try:
            run_training(cfg)
        except ConfigError as err:
            # A config mistake is the user's to fix: one clear line, no traceback.
            print(f"prefix-rft-train: config error: {err}", file=sys.stderr)
            raise SystemExit(2) from None

    hydra.main(config_path=str(conf_dir()), config_name="config", version_base="1.3")(task)()


if __name__ == "__main__":
    main()
