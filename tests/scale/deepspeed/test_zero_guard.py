"""The DeepSpeed guard in the scale lane: with the real accelerate launcher and the real DeepSpeed installed,
ZeRO-1/2 with optimizer offload is refused when DeepSpeed is older than 0.19.0, and allowed with the
installed release (>= 0.19.0, as the lane installs).

The environment is the one ``accelerate launch`` itself prepares for its processes from a recipe with the
optimizer offloaded (accelerate's own argument parser and DeepSpeed environment builder), so a change in the
variables accelerate passes would show here. Faking the version is the only way to see the refusal: the
lane cannot install a release with the bug.
"""

from __future__ import annotations

import pytest
import yaml
from accelerate.commands import launch as launch_module
from accelerate.commands.launch import launch_command_parser
from accelerate.utils.launch import prepare_deepspeed_cmd_env
from ds_harness import RECIPES
from packaging.version import Version

from prefix_rft.config import deepspeed_guard
from prefix_rft.config.deepspeed_guard import UnsafeDeepSpeedError, check_environment, environment_setting


def launcher_env(tmp_path, monkeypatch, stage: int, offload: str) -> dict[str, str]:
    """The environment accelerate launch gives each process for recipes/accelerate_configs/zero<stage>.yaml
    with ``offload_optimizer_device`` set to ``offload``: accelerate's ``launch_command`` runs up to the point
    where it would start the processes."""
    recipe = yaml.safe_load((RECIPES / f"zero{max(stage, 2)}.yaml").read_text())
    recipe["deepspeed_config"]["zero_stage"] = stage
    recipe["deepspeed_config"]["offload_optimizer_device"] = offload
    path = tmp_path / f"zero{stage}-{offload}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    args = launch_command_parser().parse_args(
        ["--config_file", str(path), "--num_processes", "2", "--mixed_precision", "no", "train.py"]
    )
    captured = {}
    monkeypatch.setattr(
        launch_module, "deepspeed_launcher", lambda a: captured.update(prepare_deepspeed_cmd_env(a)[1])
    )
    launch_module.launch_command(args)
    assert captured, "accelerate launch did not take its DeepSpeed path"
    return captured


def test_the_lane_installs_a_fixed_deepspeed():
    installed = deepspeed_guard.installed_deepspeed_version()
    assert installed is not None and Version(installed) >= Version(deepspeed_guard.FIXED_RELEASE)


@pytest.mark.parametrize("stage", [1, 2])
def test_zero12_offload_is_refused_below_0_19_and_allowed_with_the_installed_release(
    tmp_path, monkeypatch, stage
):
    env = launcher_env(tmp_path, monkeypatch, stage, "cpu")
    setting = environment_setting(env)
    assert (setting.zero_stage, setting.offload_optimizer_device) == (stage, "cpu")
    with pytest.raises(UnsafeDeepSpeedError, match=rf"DeepSpeed 0\.18\.9 with ZeRO-{stage} .*device=cpu"):
        check_environment(env, deepspeed_version="0.18.9")
    check_environment(env)  # the installed release holds the fixes


@pytest.mark.parametrize(("stage", "offload"), [(2, "none"), (3, "cpu")])
def test_unaffected_setups_pass_even_below_0_19(tmp_path, monkeypatch, stage, offload):
    check_environment(launcher_env(tmp_path, monkeypatch, stage, offload), deepspeed_version="0.18.9")
