"""Typos and values through ``prefix-rft-train`` / ``prefix-rft-eval``: Hydra's errors as one line with the
closest valid name, values checked before anything loads, notices only about knobs the user set, and
``--cfg job`` showing the run's settings."""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import time

import pytest
import yaml
from test_bad_input import TINY, console, one_error_line

# ----------------------------------------------------------------------------- Hydra's errors (item 6)


@pytest.mark.parametrize(
    "override, needles",
    [
        (
            "algorithm=prefixrft",
            ["algorithm=prefixrft is not an option of algorithm; did you mean prefix_rft?", "rft, "],
        ),
        ("model=qwen-7b", ["model=qwen-7b is not an option of model; did you mean qwen2.5-math-7b?", "tiny"]),
        ("scheduler=cosin", ["did you mean cosine?", "options: constant, cosine"]),
        ("peft=lroa", ["peft=lroa is not an option of peft; did you mean lora?", "none, qlora"]),
        ("trainer.learning_rate=abc", ["trainer.learning_rate=abc is not valid", "converted to Float"]),
        ("heldout_eval.samples=many", ["heldout_eval.samples=many is not valid", "Integer"]),
        ("foo=1", ["foo is not a config key", "top-level keys: model, data, algorithm"]),
        (
            "trainer.learing_rate=1e-5",
            ["trainer.learing_rate is not a config key; did you mean trainer.learning_rate?"],
        ),
        ("data.sourse=hub", ["did you mean data.source?", "keys of data: name, source"]),
        ("scheduler.lowstart=0.3", ["did you mean scheduler.low_start?"]),
        ("trainer.max_steps=[1", ["cannot read the override 'trainer.max_steps=[1'"]),
    ],
)
def test_hydra_errors_are_one_line_with_the_closest_name(train_cli, tmp_path, override, needles):
    code, out, err = train_cli(override, f"hydra.run.dir={tmp_path / 'run'}")
    line = one_error_line(code, err, "prefix-rft-train: config error: ", *needles)
    assert "+trainer" not in line and "HYDRA_FULL_ERROR" not in err + out
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "override, needles",
    [
        ("sample=3", ["sample is not a config key; did you mean samples?"]),
        ("max_new_tokens=lots", ["max_new_tokens=lots is not valid", "Integer"]),
        ("benchmark=[math500]", ["did you mean benchmarks?"]),
        ("synthetic.nmu=3", ["synthetic.nmu is not a config key; did you mean synthetic.num?"]),
    ],
)
def test_eval_hydra_errors_are_one_line_too(eval_cli, tmp_path, override, needles):
    code, _, err = eval_cli(override, f"output_dir={tmp_path / 'eval'}")
    one_error_line(code, err, "prefix-rft-eval: config error: ", *needles)
    assert not (tmp_path / "eval").exists()


@pytest.mark.parametrize("name", ["prefix-rft-train", "prefix-rft-eval"])
def test_console_scripts_report_a_typo_in_one_line_and_exit_2(name):
    proc = subprocess.run(
        [*console(name), "temperatur=0.5" if name == "prefix-rft-eval" else "algorithm=lufy"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    line = one_error_line(proc.returncode, proc.stderr, "did you mean")
    assert ("temperature" if name == "prefix-rft-eval" else "luffy") in line
    assert proc.stdout == ""


# ----------------------------------------------------------------------------- values (item 7)


@pytest.fixture
def no_model_loading(monkeypatch):
    """Any model or data loading fails the test: the values must be refused before."""
    import prefix_rft.data.sources as sources
    import prefix_rft.models.load as load

    def forbidden(*args, **kwargs):
        raise AssertionError("loaded something before the config was checked")

    for module, name in [(load, "load_model"), (load, "load_tokenizer"), (sources, "load_train_dataset")]:
        monkeypatch.setattr(module, name, forbidden)


@pytest.mark.parametrize(
    "overrides, needles",
    [
        (["trainer.learning_rate=-1"], ["trainer.learning_rate=-1.0 is not valid; expected a number >= 0"]),
        (["trainer.max_completion_length=0"], ["trainer.max_completion_length=0 is not valid", ">= 1"]),
        (["trainer.per_device_train_batch_size=0"], ["trainer.per_device_train_batch_size=0 is not valid"]),
        (["seed=-1"], ["seed=-1 is not valid; expected a whole number in [0, 2**32)"]),
        (
            ["trainer.num_generations=1", "trainer.per_device_train_batch_size=8"],
            ["trainer.num_generations=1"],
        ),
        (["trainer.adam_beta2=1.5"], ["trainer.adam_beta2=1.5 is not valid; expected a number in [0, 1)"]),
        (["heldout_eval.samples=0"], ["heldout_eval.samples=0 is not valid"]),
        (
            ["algorithm=sft", "sft_trainer.learning_rate=-0.1"],
            ["sft_trainer.learning_rate=-0.1 is not valid"],
        ),
        (
            ["trainer.per_device_train_batch_size=6", "trainer.num_generations=4"],
            ["TRL's GRPOConfig rejects"],
        ),
        (
            ["algorithm=sft", "sft_trainer.lr_scheduler_type=sideways"],
            ["TRL's SFTConfig rejects", "sideways"],
        ),
    ],
)
def test_values_are_checked_before_anything_loads(train_cli, tmp_path, no_model_loading, overrides, needles):
    started = time.perf_counter()
    code, _, err = train_cli(*TINY, *overrides, f"hydra.run.dir={tmp_path / 'run'}")
    one_error_line(code, err, "config error: ", *needles)
    assert time.perf_counter() - started < 60  # no model, no data: seconds (shared cores)
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- ignored knobs (item 8)


def notices(train_cli, tmp_path, *overrides: str) -> list[str]:
    """The 'ignored settings' lines of a run stopped right after the config checks (its data is missing)."""
    missing = ["data=local", f"data.path={tmp_path / 'missing.jsonl'}"]
    code, out, err = train_cli(*TINY, *missing, *overrides, f"hydra.run.dir={tmp_path / 'run'}")
    one_error_line(code, err, "missing.jsonl")
    return [line for line in out.splitlines() if "ignored settings" in line]


def test_default_job_reports_no_ignored_knobs(train_cli, tmp_path):
    """scale=cpu sets ReLIFT's buffer for every algorithm: not the user's doing, not reported."""
    assert notices(train_cli, tmp_path) == []
    assert notices(train_cli, tmp_path, "algorithm=rft") == []


def test_scheduler_knobs_the_scheduler_does_not_read_are_reported(train_cli, tmp_path):
    (line,) = notices(
        train_cli, tmp_path, "scheduler=uniform", "scheduler.low_start=0.3", "scheduler.low=0.1"
    )
    assert "scheduler=uniform (it reads high, low) does not read scheduler.low_start=0.3" in line
    assert "scheduler.low=" not in line
    (line,) = notices(
        train_cli, tmp_path, "scheduler=constant", "scheduler.high=0.9", "scheduler.decay_steps=9"
    )
    assert (
        "scheduler=constant (it reads value) does not read scheduler.decay_steps=9, scheduler.high=0.9"
        in line
    )


def test_knobs_of_other_algorithms_are_reported_only_when_the_user_set_them(train_cli, tmp_path):
    (line,) = notices(train_cli, tmp_path, "algorithm=rft", "algorithm.num_prefixed=2", "scheduler.high=0.5")
    assert "algorithm=rft does not read algorithm.num_prefixed=2" in line
    assert "sft_buffer_size" not in line  # set by scale=cpu, not by the user
    assert (
        "algorithm=rft (it has no hybrid rollouts, so no prefix scheduler) does not read scheduler.high=0.5"
        in line
    )
    assert notices(train_cli, tmp_path, "algorithm=relift", "algorithm.sft_buffer_size=4") == []


def test_library_use_reports_the_algorithm_knobs_set(caplog):
    """Called as a library (overrides unknown), the algorithm knobs set anywhere are reported."""
    from prefix_rft.config.compose import compose_config
    from prefix_rft.config.validate import validate_train_config

    cfg = compose_config(["algorithm=rft", "algorithm.num_prefixed=1", "output_dir=/tmp/unused"])
    with caplog.at_level(logging.INFO, logger="prefix_rft.config.validate"):
        validate_train_config(cfg)
    assert "algorithm=rft does not read algorithm.num_prefixed=1, algorithm.sft_buffer_size=8" in caplog.text


# ----------------------------------------------------------------------------- --cfg job (item 9)


@pytest.mark.parametrize("algorithm", ["prefix_rft", "rft", "relift"])
def test_cfg_job_shows_the_chosen_algorithms_knobs_with_values(train_cli, algorithm):
    from prefix_rft.algorithms import get_algorithm

    code, out, err = train_cli("--cfg", "job", f"algorithm={algorithm}", "trainer.learning_rate=2e-5")
    assert code == 0, err
    assert "???" not in out
    shown = yaml.safe_load(out)
    knobs = {f.name for f in dataclasses.fields(get_algorithm(algorithm).config)}
    assert set(shown["algorithm"]) == {"name"} | knobs
    assert shown["algorithm"]["name"] == algorithm
    assert shown["trainer"]["learning_rate"] == 2e-5 and shown["trainer"]["max_steps"] == 120
    assert len(out.splitlines()) < 160
    if algorithm == "relift":
        assert shown["algorithm"]["sft_buffer_size"] == 8  # scale=cpu's value, which relift reads
