"""A resumed run keeps the settings it was started with: the folder's ``config.yaml`` is the config.

``prefix-rft-train hydra.run.dir=RUN resume_from_checkpoint=latest`` composes the default job, whose
values need not be the run's (another algorithm, ``trainer.max_steps=120`` where the run had 2). So a
resume takes every value from ``RUN/config.yaml``, and compares what the command line sets with it:

* a key the command line sets to the run's own value is fine;
* one that extends or re-paces the run (:data:`EXTENDING_KEYS`, e.g. ``trainer.max_steps``) is applied
  and announced;
* any other difference (algorithm, model, data, seed, learning rate, ...) would make the checkpoint
  continue as a different run than its folder says: refused, naming the keys and both values.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from prefix_rft.config.overrides import overridden_keys
from prefix_rft.config.resolved import resolved_config
from prefix_rft.errors import RunFolderError
from prefix_rft.training.run_folder import resume_request

logger = logging.getLogger("prefix_rft.train")

# Keys a resume may change: how long the run goes on, how often it saves and logs, and the held-out
# measurement at its end. None of them changes what the checkpoints already hold.
EXTENDING_KEYS = (
    "trainer.max_steps",
    "sft_trainer.max_steps",
    "trainer.num_train_epochs",
    "sft_trainer.num_train_epochs",
    "trainer.save_steps",
    "sft_trainer.save_steps",
    "trainer.save_total_limit",
    "sft_trainer.save_total_limit",
    "trainer.logging_steps",
    "sft_trainer.logging_steps",
    "trainer.report_to",
    "sft_trainer.report_to",
    "heldout_eval",
)
# Not settings of the run: where it is and how this command starts it.
NOT_COMPARED = (
    "output_dir",
    "resume_from_checkpoint",
    "trainer.resume_from_checkpoint",
    "sft_trainer.resume_from_checkpoint",
)
_ABSENT = "<unset>"


def _under(key: str, prefixes: tuple[str, ...] | set[str]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a.b": leaf}`` of nested dicts; lists and empty dicts are leaves."""
    if isinstance(data, dict) and data:
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: data}


def _shown(value: Any) -> str:
    return str(value) if len(str(value)) <= 40 else str(value)[:37] + "..."


def _set_path(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    for part in parts[:-1]:
        data = data.setdefault(part, {})
    if value is _ABSENT:
        data.pop(parts[-1], None)
    else:
        data[parts[-1]] = value


def config_for_resume(cfg: DictConfig, out_dir: Path, overrides: list[str] | None) -> DictConfig:
    """The config to resume ``out_dir`` with: its saved ``config.yaml``, plus the extensions the command
    line asks for. ``overrides`` are the command line's (None: unknown, every value of ``cfg`` counts as
    asked for). A folder without a saved config returns ``cfg`` unchanged (nothing to compare with)."""
    from prefix_rft.config.schema import train_config_class
    from prefix_rft.plugins import import_plugins

    saved_path = out_dir / "config.yaml"
    if not saved_path.is_file():
        return cfg
    try:
        saved = yaml.safe_load(saved_path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise RunFolderError(f"cannot read {saved_path} to resume the run: {err}") from err
    saved = {k: v for k, v in saved.items() if k not in ("defaults", "hydra")}
    # The run's own algorithms may come from plugins: registered before its config meets the schema.
    import_plugins(saved.get("plugins") or [])
    asked = overridden_keys(overrides) if overrides is not None else None
    if asked is not None and any(key.split(".")[0] not in cfg for key in asked):
        # A group that sets keys elsewhere (scale=...) may change anything: every value counts as asked for.
        asked = None
    old, new = flatten(saved), flatten(resolved_config(cfg))
    changed: dict[str, tuple[Any, Any]] = {}
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key, _ABSENT), new.get(key, _ABSENT)
        if before == after or _under(key, NOT_COMPARED):
            continue
        if asked is None or _under(key, asked):
            changed[key] = (before, after)
    refused = {k: v for k, v in changed.items() if not _under(k, EXTENDING_KEYS)}
    if refused:
        # The names that say what a run is come first (algorithm.name before its knobs).
        keys = sorted(refused, key=lambda k: (not k.endswith(("name", "name_or_path")), k))
        # Another algorithm (scheduler, ...) differs in all its knobs: its name says enough.
        renamed = {k.rsplit(".", 1)[0] for k in keys if k.endswith(".name")}
        keys = [k for k in keys if k.endswith(".name") or k.rsplit(".", 1)[0] not in renamed]
        shown = ", ".join(f"{k} ({_shown(refused[k][0])} -> {_shown(refused[k][1])})" for k in keys[:6])
        more = f" and {len(keys) - 6} more" if len(keys) > 6 else ""
        raise RunFolderError(
            f"resuming {out_dir} keeps the settings in its config.yaml, and this command changes what the "
            f"run is: {shown}{more}; drop those overrides to resume (trainer.max_steps=N extends it), or "
            "start a new run in another folder (hydra.run.dir=DIR)"
        )
    for key, (_, after) in changed.items():
        _set_path(saved, key, after)
    saved["output_dir"] = str(cfg.output_dir)
    saved["resume_from_checkpoint"] = resume_request(cfg)  # either spelling, as one value
    try:
        resumed = OmegaConf.merge(OmegaConf.structured(train_config_class()), saved)
    except OmegaConfBaseException as err:
        raise RunFolderError(f"{saved_path} does not match this version's config schema: {err}") from err
    if changed:
        logger.info(
            "resuming %s with the settings of its config.yaml, changed: %s",
            out_dir,
            ", ".join(f"{k} {_shown(b)} -> {_shown(a)}" for k, (b, a) in changed.items()),
        )
    else:
        logger.info("resuming %s with the settings of its config.yaml", out_dir)
    return resumed
