"""The DeepSpeed guard: ZeRO-1/2 with optimizer offload is refused before 0.19.0 (no DeepSpeed needed)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from prefix_rft.config.deepspeed_guard import (
    FIXED_RELEASE,
    UnsafeDeepSpeedError,
    check_deepspeed_config,
    check_environment,
    environment_setting,
    is_fixed_release,
    offload_setting,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


def ds_config(stage, device=None) -> dict:
    zero = {"stage": stage}
    if device is not None:
        zero["offload_optimizer"] = {"device": device, "pin_memory": True}
    return {"train_micro_batch_size_per_gpu": "auto", "zero_optimization": zero}


@pytest.mark.parametrize("stage", [1, 2])
@pytest.mark.parametrize("device", ["cpu", "nvme", "CPU"])
@pytest.mark.parametrize("version", ["0.18.9", "0.15.2", "0.19.0rc1", "0.19.0.dev0", "0.18.9+cu124"])
def test_old_release_with_zero12_optimizer_offload_is_refused_with_the_fix(stage, device, version):
    with pytest.raises(UnsafeDeepSpeedError) as err:
        check_deepspeed_config(ds_config(stage, device), deepspeed_version=version)
    message = str(err.value)
    assert "\n" not in message
    assert f"DeepSpeed {version} with ZeRO-{stage}" in message
    assert f"device={device.lower()}" in message
    assert f"pip install 'deepspeed>={FIXED_RELEASE}'" in message


@pytest.mark.parametrize(
    ("config", "version"),
    [
        (ds_config(2, "cpu"), "0.19.0"),  # the first fixed release
        (ds_config(2, "cpu"), "0.19.8"),
        (ds_config(1, "nvme"), "1.0.0"),
        (ds_config(3, "cpu"), "0.18.9"),  # ZeRO-3 with offload: not affected
        (ds_config(2, "none"), "0.18.9"),  # no offload
        (ds_config(2), "0.18.9"),
        (ds_config(0, "cpu"), "0.18.9"),
        ({"bf16": {"enabled": True}}, "0.18.9"),  # no ZeRO section at all
    ],
)
def test_safe_settings_pass(config, version):
    check_deepspeed_config(config, deepspeed_version=version)


def test_the_old_cpu_offload_spelling_and_json_files(tmp_path):
    path = tmp_path / "ds.json"
    path.write_text(json.dumps({"zero_optimization": {"stage": 2, "cpu_offload": True}}))
    setting = offload_setting(path)
    assert (setting.zero_stage, setting.offload_optimizer_device, setting.source) == (2, "cpu", str(path))
    with pytest.raises(UnsafeDeepSpeedError, match=r"ds\.json"):
        check_deepspeed_config(str(path), deepspeed_version="0.17.0")


def test_accelerate_configs_inline_and_through_a_deepspeed_file(tmp_path):
    accel = {
        "distributed_type": "DEEPSPEED",
        "deepspeed_config": {
            "zero_stage": 2,
            "offload_optimizer_device": "cpu",
            "offload_param_device": "none",
        },
    }
    (tmp_path / "zero2_offload.yaml").write_text(yaml.safe_dump(accel))
    with pytest.raises(UnsafeDeepSpeedError, match="ZeRO-2"):
        check_deepspeed_config(tmp_path / "zero2_offload.yaml", deepspeed_version="0.18.9")
    check_deepspeed_config(tmp_path / "zero2_offload.yaml", deepspeed_version="0.19.0")

    # deepspeed_config_file, relative to the accelerate config's folder
    (tmp_path / "ds.json").write_text(json.dumps(ds_config(1, "cpu")))
    with_file = {"distributed_type": "DEEPSPEED", "deepspeed_config": {"deepspeed_config_file": "ds.json"}}
    (tmp_path / "with_file.yaml").write_text(yaml.safe_dump(with_file))
    assert offload_setting(tmp_path / "with_file.yaml").zero_stage == 1
    with pytest.raises(UnsafeDeepSpeedError, match="ZeRO-1"):
        check_deepspeed_config(tmp_path / "with_file.yaml", deepspeed_version="0.16.0")


def test_the_shipped_accelerate_configs_are_safe_under_an_old_release():
    """zero2/zero3 do not offload, and zero3_offload is ZeRO-3: none of them is refused."""
    configs = sorted((REPO_ROOT / "recipes" / "accelerate_configs").glob("*.yaml"))
    assert configs
    for path in configs:
        check_deepspeed_config(path, deepspeed_version="0.18.9")
    assert offload_setting(REPO_ROOT / "recipes/accelerate_configs/zero3_offload.yaml").zero_stage == 3


def test_the_accelerate_launch_environment():
    env = {
        "ACCELERATE_USE_DEEPSPEED": "true",
        "ACCELERATE_DEEPSPEED_ZERO_STAGE": "2",
        "ACCELERATE_DEEPSPEED_OFFLOAD_OPTIMIZER_DEVICE": "cpu",
    }
    with pytest.raises(UnsafeDeepSpeedError, match="accelerate launch environment"):
        check_environment(env, deepspeed_version="0.18.9")
    check_environment(env, deepspeed_version="0.19.0")
    check_environment({**env, "ACCELERATE_USE_DEEPSPEED": "false"}, deepspeed_version="0.18.9")
    assert environment_setting({}) is None


def test_bad_input_is_one_line_naming_the_key():
    with pytest.raises(UnsafeDeepSpeedError, match=r"zero_optimization\.stage='two'"):
        offload_setting({"zero_optimization": {"stage": "two"}})
    with pytest.raises(UnsafeDeepSpeedError, match="does not exist"):
        offload_setting("/nonexistent/ds.json")
    with pytest.raises(UnsafeDeepSpeedError, match="cannot be compared"):
        is_fixed_release("not-a-version")


def test_deepspeed_not_installed_checks_nothing(monkeypatch):
    import prefix_rft.config.deepspeed_guard as guard

    monkeypatch.setattr(guard, "installed_deepspeed_version", lambda: None)
    check_deepspeed_config(ds_config(2, "cpu"))  # no DeepSpeed: the run cannot use it anyway
    monkeypatch.setattr(guard, "installed_deepspeed_version", lambda: "0.18.9")
    with pytest.raises(UnsafeDeepSpeedError, match="0.18.9"):
        check_deepspeed_config(ds_config(2, "cpu"))


def test_the_deepspeed_extra_is_pinned_to_the_fixed_release():
    text = (REPO_ROOT / "pyproject.toml").read_text()  # no tomllib: Python 3.10 is supported
    assert re.search(r'^deepspeed = \["deepspeed>=([0-9.]+)"\]$', text, re.M).group(1) == FIXED_RELEASE


# ----------------------------------------------------------------------------- at start-up, before any model


def write_ds_config(path: Path, stage: int, device: str | None) -> Path:
    path.write_text(json.dumps(ds_config(stage, device)))
    return path


def test_start_up_refuses_an_unsafe_deepspeed_config_before_loading_a_model(monkeypatch, tmp_path):
    import prefix_rft.config.deepspeed_guard as guard
    import prefix_rft.models.load as load
    from prefix_rft.config.compose import compose_config
    from prefix_rft.errors import ConfigError
    from prefix_rft.pipeline import run_training

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded before the DeepSpeed check")

    monkeypatch.setattr(load, "load_model", no_model)
    monkeypatch.setattr(load, "load_tokenizer", no_model)
    monkeypatch.setattr(guard, "installed_deepspeed_version", lambda: "0.18.9")
    unsafe = write_ds_config(tmp_path / "ds_offload.json", 2, "cpu")
    out = tmp_path / "run"
    for override in (f"trainer.deepspeed={unsafe}", f"sft_trainer.deepspeed={unsafe}"):
        cfg = compose_config(["algorithm=sft_then_rft", f"output_dir={out}", override])
        with pytest.raises(ConfigError) as err:
            run_training(cfg)
        message = str(err.value)
        assert "\n" not in message and message.startswith(override.split("=")[0] + ": DeepSpeed 0.18.9")
        assert str(unsafe) in message and f"deepspeed>={FIXED_RELEASE}" in message
    assert not out.exists()  # refused before the run folder was written

    # An inline dict under trainer.deepspeed, and the environment of `accelerate launch`.
    cfg = compose_config(
        [
            "algorithm=rft",
            f"output_dir={out}",
            "trainer.deepspeed={zero_optimization:{stage:1,cpu_offload:true}}",
        ]
    )
    with pytest.raises(ConfigError, match=r"^DeepSpeed 0\.18\.9 with ZeRO-1 .*\(trainer\.deepspeed\)"):
        run_training(cfg)
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "2")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_OFFLOAD_OPTIMIZER_DEVICE", "cpu")
    with pytest.raises(ConfigError, match="accelerate launch environment"):
        run_training(compose_config(["algorithm=rft", f"output_dir={out}"]))
    # The fixed release passes the same set-up (the check then gets as far as loading the model).
    monkeypatch.setattr(guard, "installed_deepspeed_version", lambda: FIXED_RELEASE)
    with pytest.raises(AssertionError, match="a model was loaded"):
        run_training(compose_config(["algorithm=rft", f"output_dir={out}"]))


def test_the_train_command_exits_2_with_one_line(tmp_path):
    """Through the installed command: DeepSpeed 0.18.9 "installed" (its package metadata only, on PYTHONPATH)."""
    import os
    import shutil
    import subprocess
    import sys

    site = tmp_path / "site"
    info = site / "deepspeed-0.18.9.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: deepspeed\nVersion: 0.18.9\n")
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    )
    exe = shutil.which("prefix-rft-train", path=os.path.dirname(sys.executable))
    cli = [exe] if exe else [sys.executable, "-m", "prefix_rft.cli.train"]
    unsafe = write_ds_config(tmp_path / "ds.json", 2, "cpu")
    proc = subprocess.run(
        [*cli, "algorithm=rft", f"trainer.deepspeed={unsafe}", f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith(
        "prefix-rft-train: config error: trainer.deepspeed: DeepSpeed 0.18.9 with ZeRO-2"
    )
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run" / "config.yaml").exists()


@pytest.mark.parametrize(
    ("value", "sharded"), [("true", True), ("TRUE", True), ("1", False), ("false", False)]
)
def test_every_start_up_check_reads_the_launch_flag_as_accelerate_does(monkeypatch, value, sharded):
    """accelerate uses DeepSpeed only for ACCELERATE_USE_DEEPSPEED=true (any case): the offload guard, the
    early TRL-config check and ReLIFT's refusal all follow it (the TRL check used to also take "1")."""
    from types import SimpleNamespace

    from prefix_rft.config.compose import compose_config
    from prefix_rft.config.validate import _uses_deepspeed
    from prefix_rft.launch_env import launched_with
    from prefix_rft.trainers.relift import sharded_training

    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", value)
    monkeypatch.delenv("ACCELERATE_USE_FSDP", raising=False)
    env = {"ACCELERATE_USE_DEEPSPEED": value, "ACCELERATE_DEEPSPEED_ZERO_STAGE": "2"}
    assert launched_with("DEEPSPEED") is sharded
    assert (environment_setting(env) is not None) is sharded
    assert _uses_deepspeed(compose_config(["output_dir=/tmp/unused"])) is sharded
    expected = "accelerate launch with a DeepSpeed config" if sharded else None
    assert sharded_training(SimpleNamespace(deepspeed=None, fsdp=None)) == expected
    with pytest.raises(ValueError, match="tool='ZERO'"):
        launched_with("ZERO")
