"""An algorithm from outside the package, reachable from the CLI: a toy distribution installed with pip into
a temporary folder, loaded by the ``plugins`` key or by its entry point (prefix_rft/plugins.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from test_cli import cli, small_run_overrides

from prefix_rft.plugins import ENTRY_POINT_GROUP, plain_plugins_overrides, plugins_on_command_line

# The user's module: a config with one knob, a GRPOTrainer subclass that uses it, one registry call.
TOY_MODULE = '''
"""A user's algorithm: GRPO with its loss scaled by algorithm.{knob}."""

import dataclasses
from pathlib import Path

from trl import GRPOTrainer

from prefix_rft.algorithms import register_algorithm
from prefix_rft.trainers.algorithm_config import AlgorithmConfig, knob


@dataclasses.dataclass
class ToyConfig(AlgorithmConfig):
    {knob}: float = knob(1.0, "Factor on GRPO's loss.")

    def trainer_kwargs(self, *args, **kwargs):
        return {{"toy_knobs": self}}


class ToyTrainer(GRPOTrainer):
    def __init__(self, *args, toy_knobs, **kwargs):
        super().__init__(*args, **kwargs)
        self.toy_knobs = toy_knobs
        # What the trainer received, for the test to read.
        Path(self.args.output_dir, "toy_knob.json").write_text(str(toy_knobs.{knob}))

    def _compute_loss(self, model, inputs):
        return self.toy_knobs.{knob} * super()._compute_loss(model, inputs)


register_algorithm("{name}", ToyConfig, ToyTrainer)
'''


def install_toy(root: Path, dist: str, module: str, name: str, knob_name: str, entry_point: bool) -> Path:
    """Write the toy distribution's sources and ``pip install`` it (offline, no dependencies) into a
    folder of its own; returns that folder (to put on PYTHONPATH)."""
    src, site = root / f"{dist}-src", root / f"{dist}-site"
    src.mkdir()
    (src / f"{module}.py").write_text(TOY_MODULE.format(knob=knob_name, name=name))
    entry = f'\n[project.entry-points."{ENTRY_POINT_GROUP}"]\n{name} = "{module}"\n' if entry_point else ""
    (src / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""\
            [build-system]
            requires = ["setuptools"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "{dist}"
            version = "0.1"

            [tool.setuptools]
            py-modules = ["{module}"]
            """
        )
        + entry
    )
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q"]
    proc = subprocess.run(
        pip + ["--disable-pip-version-check", "--target", str(site), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return site


def run_cli(args: list[str], site: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """The real console command, with ``site`` on its import path (PREFIX_RFT_CACHE: the session's)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run(cli() + args, capture_output=True, text=True, env=env, timeout=timeout)


def toy_run_overrides() -> list[str]:
    """test_cli's short run, without its sweep folder and the knobs of other algorithms."""
    return [o for o in small_run_overrides() if not o.startswith(("hydra.sweep", "algorithm."))]


@pytest.fixture(scope="module")
def warm_model_dir(model_cache) -> Path:
    from prefix_rft.models.tiny import ensure_tiny_model

    return ensure_tiny_model("tiny-warm", cache_dir=model_cache)


@pytest.fixture(scope="module")
def toy_site(tmp_path_factory) -> Path:
    """``toy_algos`` (algorithm ``mine``, knob ``toy_scale``), loaded only through ``plugins``."""
    return install_toy(tmp_path_factory.mktemp("toy"), "toy-algos", "toy_algos", "mine", "toy_scale", False)


@pytest.fixture(scope="module")
def toy_ep_site(tmp_path_factory) -> Path:
    """``toy_ep_algos`` (algorithm ``mine_ep``, knob ``toy_ep_scale``), declared as an entry point."""
    root = tmp_path_factory.mktemp("toy_ep")
    return install_toy(root, "toy-ep-algos", "toy_ep_algos", "mine_ep", "toy_ep_scale", True)


def test_plugins_are_read_from_the_command_line_before_composing():
    assert plugins_on_command_line(["algorithm=mine", "+plugins=[a.b,c]", "trainer.max_steps=2"]) == [
        "a.b",
        "c",
    ]
    assert plugins_on_command_line(["plugins=a.b", "++plugins=[d]"]) == ["a.b", "d"]
    assert plugins_on_command_line(["plugins=[a],[b]"]) == ["a", "b"]  # a sweep: every module is imported
    assert plugins_on_command_line(["trainer.plugins=[x]", "~plugins", "plugins_extra=1"]) == []
    assert plain_plugins_overrides(["+plugins=[a]", "++plugins=[b]", "+trainer.x=1"]) == [
        "plugins=[a]",
        "plugins=[b]",
        "+trainer.x=1",
    ]


def test_a_plugin_algorithm_trains_from_the_cli_and_resumes(toy_site, warm_model_dir, tmp_path):
    """``+plugins=[toy_algos] algorithm=mine algorithm.toy_scale=3``: the knob reaches the trainer, the
    weights move, config.yaml keeps ``plugins``, and a resume without the key imports it again."""
    run = tmp_path / "run"
    args = ["+plugins=[toy_algos]", "algorithm=mine", "algorithm.toy_scale=3.0", f"hydra.run.dir={run}"]
    proc = run_cli(args + toy_run_overrides(), toy_site)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["plugins"] == ["toy_algos"]
    assert config["algorithm"] == {"name": "mine", "toy_scale": 3.0}
    assert (run / "toy_knob.json").read_text() == "3.0"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["algorithm"] == "mine" and metrics["global_step"] == 2
    start, final = (
        load_file(str(warm_model_dir / "model.safetensors")),
        load_file(str(run / "model.safetensors")),
    )
    assert any(not torch.equal(final[k], start[k]) for k in start)

    # The resume names neither the plugin nor the algorithm: both come from the run's config.yaml.
    resume = [f"hydra.run.dir={run}", "resume_from_checkpoint=latest", "trainer.max_steps=3"]
    proc = run_cli(
        resume + [o for o in toy_run_overrides() if not o.startswith("trainer.max_steps")], toy_site
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["algorithm"] == "mine" and metrics["global_step"] == 3


def test_plugin_mistakes_are_one_line(toy_site, model_cache, tmp_path):
    """A plugin's knob is in the schema even when a cached schema exists (here: just written without the
    plugin), so a typo gets the did-you-mean line; a module that does not import names ``plugins``."""
    warm = run_cli(["algorithm=rft", "--cfg", "job"], toy_site, timeout=300)
    assert warm.returncode == 0, warm.stderr[-3000:]
    assert list((model_cache / "schema").glob("train-*.json"))

    shown = run_cli(
        ["plugins=[toy_algos]", "algorithm=mine", "algorithm.toy_scale=2", "--cfg", "job"], toy_site
    )
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert "toy_scale: 2" in shown.stdout and "plugins:\n- toy_algos" in shown.stdout

    typo = run_cli(
        ["plugins=[toy_algos]", "algorithm=mine", "algorithm.toy_scal=2", f"hydra.run.dir={tmp_path}"],
        toy_site,
    )
    assert typo.returncode == 2
    assert len(typo.stderr.strip().splitlines()) == 1, typo.stderr
    assert "algorithm.toy_scal is not a config key; did you mean algorithm.toy_scale?" in typo.stderr

    missing = run_cli(["plugins=[toy_algoz]", "algorithm=mine", "--cfg", "job"], toy_site)
    assert missing.returncode == 2
    assert missing.stderr.strip() == (
        "prefix-rft-train: config error: plugins: cannot import the module 'toy_algoz': "
        "ModuleNotFoundError: No module named 'toy_algoz'"
    )


def test_an_entry_point_algorithm_needs_no_plugins_key(toy_ep_site, warm_model_dir, tmp_path):
    run = tmp_path / "run"
    args = ["algorithm=mine_ep", "algorithm.toy_ep_scale=0.5", "trainer.max_steps=1", f"hydra.run.dir={run}"]
    proc = run_cli(
        args + [o for o in toy_run_overrides() if not o.startswith("trainer.max_steps")], toy_ep_site
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["plugins"] == [] and config["algorithm"] == {"name": "mine_ep", "toy_ep_scale": 0.5}
    assert (run / "toy_knob.json").read_text() == "0.5"
    assert json.loads((run / "metrics.json").read_text())["global_step"] == 1


def test_an_entry_point_that_does_not_import_is_one_line(tmp_path):
    """A distribution whose entry point names a missing module (its metadata written by hand)."""
    info = tmp_path / "broken_algos-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-algos\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nbroken = no_such_module_xyz\n")
    proc = run_cli(["algorithm=rft", "--cfg", "job"], tmp_path, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "prefix-rft-train: config error: entry point broken = no_such_module_xyz (broken-algos) of group "
        "prefix_rft.algorithms cannot be imported: ModuleNotFoundError: No module named 'no_such_module_xyz'; "
        "fix or uninstall broken-algos"
    ]
