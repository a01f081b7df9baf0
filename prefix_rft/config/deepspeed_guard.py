"""Refuse DeepSpeed set-ups that silently lose gradients: ZeRO-1/2 with optimizer offload before 0.19.0.

DeepSpeed's ZeRO-1/2 optimizer with ``offload_optimizer`` (device ``cpu`` or ``nvme``) copied only the first
micro-batch's gradients to the CPU optimizer under gradient accumulation (introduced in PR #6550, first
released in 0.15.2; fixed by PR #7967, merged 2026-04-11), and kept only the last of several
``backward()`` calls per step with ``gradient_accumulation_steps=1`` (fixed by PR #7981, merged
2026-04-22). The first release holding both fixes is 0.19.0 (git tag v0.19.0, 2026-05-06). arXiv
2604.23747 traces weak SFT baselines in the mixed-policy literature to the first bug. ZeRO-3 with offload
and ZeRO-1/2 without offload are not affected.

The configuration can come from three places, all read here without importing DeepSpeed:

* a DeepSpeed config (``trainer.deepspeed``: a dict or a JSON file), keys ``zero_optimization.stage`` and
  ``zero_optimization.offload_optimizer.device`` (or the old ``zero_optimization.cpu_offload: true``);
* an accelerate config file or dict (``deepspeed_config: {zero_stage, offload_optimizer_device}``, or
  ``deepspeed_config_file`` pointing to a DeepSpeed JSON);
* the environment ``accelerate launch`` gives each process (``ACCELERATE_USE_DEEPSPEED``,
  ``ACCELERATE_DEEPSPEED_ZERO_STAGE``, ``ACCELERATE_DEEPSPEED_OFFLOAD_OPTIMIZER_DEVICE``,
  ``ACCELERATE_DEEPSPEED_CONFIG_FILE``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from prefix_rft.launch_env import launched_with

# The first DeepSpeed release that contains both PR #7967 and PR #7981.
FIXED_RELEASE = "0.19.0"
AFFECTED_STAGES = (1, 2)
OFFLOAD_DEVICES = ("cpu", "nvme")


class UnsafeDeepSpeedError(ValueError):
    """The DeepSpeed set-up would silently drop gradients; the message says how to fix it."""


@dataclass(frozen=True)
class OffloadSetting:
    """The two settings the bug depends on, and where they were read."""

    zero_stage: int | None
    offload_optimizer_device: str | None
    source: str

    @property
    def affected(self) -> bool:
        """ZeRO-1/2 with the optimizer offloaded: the configuration the old releases mishandle."""
        return self.zero_stage in AFFECTED_STAGES and self.offload_optimizer_device in OFFLOAD_DEVICES


def _load(config: Mapping[str, Any] | str | os.PathLike, what: str) -> tuple[Mapping[str, Any], str]:
    if isinstance(config, Mapping):
        return config, what
    path = Path(config)
    if not path.is_file():
        raise UnsafeDeepSpeedError(
            f"{what} {path} does not exist; expected a DeepSpeed JSON or accelerate YAML"
        )
    text = path.read_text()
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except (ValueError, ImportError) as err:
        raise UnsafeDeepSpeedError(f"{what} {path} could not be read: {err}") from None
    if not isinstance(data, Mapping):
        raise UnsafeDeepSpeedError(f"{what} {path} holds no mapping of settings")
    return data, str(path)


def _stage(value: Any, key: str, source: str) -> int | None:
    if value is None or value == "auto":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise UnsafeDeepSpeedError(f"{key}={value!r} in {source} is not a ZeRO stage (0-3)") from None


def _device(value: Any) -> str | None:
    return None if value is None else str(value).lower()


def offload_setting(
    config: Mapping[str, Any] | str | os.PathLike, what: str = "DeepSpeed config"
) -> OffloadSetting:
    """Read the ZeRO stage and optimizer-offload device from a DeepSpeed or accelerate config (dict or file)."""
    data, source = _load(config, what)
    if "deepspeed_config" in data or "distributed_type" in data:  # an accelerate config
        ds = data.get("deepspeed_config") or {}
        if ds.get("deepspeed_config_file"):
            file = Path(ds["deepspeed_config_file"])
            # Relative to the working directory, else to the accelerate config's own folder.
            if not file.is_absolute() and not file.is_file() and not isinstance(config, Mapping):
                file = Path(source).parent / file
            return offload_setting(file, "deepspeed_config_file")
        return OffloadSetting(
            _stage(ds.get("zero_stage"), "deepspeed_config.zero_stage", source),
            _device(ds.get("offload_optimizer_device")),
            source,
        )
    zero = data.get("zero_optimization") or {}
    offload = zero.get("offload_optimizer")
    device = _device(offload.get("device")) if isinstance(offload, Mapping) else None
    if device is None and zero.get("cpu_offload") is True:  # DeepSpeed's older spelling
        device = "cpu"
    return OffloadSetting(_stage(zero.get("stage"), "zero_optimization.stage", source), device, source)


def environment_setting(env: Mapping[str, str] | None = None) -> OffloadSetting | None:
    """The setting ``accelerate launch`` passed to this process, or None when it did not use DeepSpeed."""
    env = os.environ if env is None else env
    if not launched_with("DEEPSPEED", env):
        return None
    config_file = env.get("ACCELERATE_DEEPSPEED_CONFIG_FILE")
    if config_file and config_file.lower() != "none":
        return offload_setting(config_file, "ACCELERATE_DEEPSPEED_CONFIG_FILE")
    return OffloadSetting(
        _stage(env.get("ACCELERATE_DEEPSPEED_ZERO_STAGE"), "ACCELERATE_DEEPSPEED_ZERO_STAGE", "environment"),
        _device(env.get("ACCELERATE_DEEPSPEED_OFFLOAD_OPTIMIZER_DEVICE")),
        "accelerate launch environment",
    )


def installed_deepspeed_version() -> str | None:
    """The installed ``deepspeed`` distribution's version, or None when it is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("deepspeed")
    except PackageNotFoundError:
        return None


def is_fixed_release(deepspeed_version: str) -> bool:
    """Whether a DeepSpeed version holds both fixes. Pre-releases and dev builds of 0.19.0 count as older:
    nothing says a given one was cut after the fixes."""
    try:
        return Version(deepspeed_version) >= Version(FIXED_RELEASE)
    except InvalidVersion:
        raise UnsafeDeepSpeedError(
            f"DeepSpeed version {deepspeed_version!r} cannot be compared with {FIXED_RELEASE}"
        ) from None


def check_offload_setting(setting: OffloadSetting | None, deepspeed_version: str | None = None) -> None:
    """Raise :class:`UnsafeDeepSpeedError` for ZeRO-1/2 with optimizer offload under DeepSpeed < 0.19.0.

    ``deepspeed_version`` defaults to the installed one; with DeepSpeed not installed nothing is checked
    (such a run cannot start DeepSpeed anyway).
    """
    if setting is None or not setting.affected:
        return
    deepspeed_version = deepspeed_version or installed_deepspeed_version()
    if deepspeed_version is None or is_fixed_release(deepspeed_version):
        return
    raise UnsafeDeepSpeedError(
        f"DeepSpeed {deepspeed_version} with ZeRO-{setting.zero_stage} and "
        f"offload_optimizer device={setting.offload_optimizer_device} ({setting.source}) drops the gradients "
        f"of all micro-batches but one (DeepSpeed PRs #7967, #7981): upgrade with "
        f"pip install 'deepspeed>={FIXED_RELEASE}', or set the optimizer offload device to none"
    )


def check_deepspeed_config(
    config: Mapping[str, Any] | str | os.PathLike | None, deepspeed_version: str | None = None
) -> None:
    """Check a DeepSpeed config (``trainer.deepspeed``) or an accelerate config; None checks nothing."""
    if config is not None:
        check_offload_setting(offload_setting(config), deepspeed_version)


def check_environment(env: Mapping[str, str] | None = None, deepspeed_version: str | None = None) -> None:
    """Check the DeepSpeed set-up that ``accelerate launch`` gave this process (a no-op without it)."""
    check_offload_setting(environment_setting(env), deepspeed_version)
