"""Bad input through the real commands: every mistake ends with one line that names the key or file and
what was expected, a non-zero exit status and no traceback (unless PREFIX_RFT_DEBUG=1 asks for one).

Most run ``prefix-rft-train`` / ``prefix-rft-eval`` in this process (their Hydra mains, with the
overrides a user would type); the errors happen before any model is loaded, so each takes about a
second. The console scripts themselves are run as subprocesses where the process boundary matters.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

TINY = ["model.name_or_path=builtin:tiny-warm", "heldout_eval.enabled=false"]


def one_error_line(code: int, err: str, *needles: str) -> str:
    """The stderr of a refused command: exit status 2, exactly one line, no traceback, naming ``needles``."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert "Traceback" not in err
    errors = [line for line in lines if line.startswith("prefix-rft-")]
    assert len(errors) == 1, err
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def local_data(tmp_path, name: str, content: bytes) -> list[str]:
    path = tmp_path / name
    path.write_bytes(content)
    return ["data=local", f"data.path={path}", f"hydra.run.dir={tmp_path / 'run'}", *TINY]


ROW = {
    "problem": "Tom has 2 apples and buys 3 more. How many?",
    "answer": "5",
    "solution": "2+3=5 \\boxed{5}",
}


# ----------------------------------------------------------------------------- data files (item 4)


def test_empty_data_file(train_cli, tmp_path):
    code, _, err = train_cli(*local_data(tmp_path, "empty.jsonl", b""))
    one_error_line(code, err, "data.path=", "empty.jsonl is empty")
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_non_utf8_data_file_names_file_and_line(train_cli, tmp_path):
    content = (json.dumps(ROW) + "\n").encode() + b'{"problem": "caf\xe9", "answer": "1", "solution": "x"}\n'
    code, _, err = train_cli(*local_data(tmp_path, "latin1.jsonl", content))
    one_error_line(code, err, "latin1.jsonl: line 2 is not UTF-8", "0xe9")


def test_malformed_jsonl_names_line_and_skip_drops_it(train_cli, tmp_path):
    content = "\n".join([json.dumps(ROW), '{"problem": "broken', "[1, 2]"]).encode() + b"\n"
    args = local_data(tmp_path, "bad.jsonl", content)
    code, _, err = train_cli(*args)
    one_error_line(code, err, "bad.jsonl: line 2 is not a JSON object", "data.on_bad_row=skip")
    # skip: both malformed lines are dropped (and counted); the one good row is then too few for a step
    # of 64 rollouts / 8 per prompt = 8 prompts
    code, out, err = train_cli(*args, "data.on_bad_row=skip")
    one_error_line(code, err, "1 usable training row(s)", "one RL step needs 8 prompts")
    assert "skipped 2 malformed lines of" in out
    assert not (tmp_path / "run").exists()  # refused before training: the new run folder is removed


def test_too_little_data_is_refused_before_training(train_cli, tmp_path):
    """One usable row (the other is empty and skipped) cannot fill one step: no 0-step 'success'."""
    content = (json.dumps(ROW) + "\n" + json.dumps({**ROW, "problem": ""}) + "\n").encode()
    code, _, err = train_cli(*local_data(tmp_path, "one.jsonl", content), "data.on_bad_row=skip")
    one_error_line(code, err, "1 usable training row(s)", "needs 8 prompts", "trainer.num_generations=8")
    assert not (tmp_path / "run" / "metrics.json").exists()
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_zero_step_training_is_an_error_not_a_finished_run(train_cli, tmp_path, monkeypatch):
    """The guard behind the data check: if TRL still trains 0 steps (here the data check is switched off
    and one row cannot fill a batch), the run fails and saves nothing as finished."""
    import prefix_rft.pipeline

    monkeypatch.setattr(prefix_rft.pipeline, "check_enough_rows", lambda *args: None)
    code, _, err = train_cli(*local_data(tmp_path, "one.jsonl", (json.dumps(ROW) + "\n").encode()))
    one_error_line(code, err, "training error: the rl stage trained 0 optimizer steps", "1 training row(s)")
    assert not (tmp_path / "run" / "metrics.json").exists()
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_csv_and_parquet_read_errors_name_the_file(train_cli, tmp_path):
    code, _, err = train_cli(*local_data(tmp_path, "x.parquet", b"not a parquet file"))
    one_error_line(code, err, "data.path=", "x.parquet: cannot be read as .parquet")
    code, _, err = train_cli(*local_data(tmp_path, "x.csv", b"problem,answer\n\xff\xfe,1\n"))
    one_error_line(code, err, "x.csv: line 2 is not UTF-8")


# ----------------------------------------------------------------------------- model and extras (item 4)


def test_nonexistent_model_path(train_cli, tmp_path):
    code, _, err = train_cli("model.name_or_path=/nonexistent/model", f"hydra.run.dir={tmp_path}")
    one_error_line(code, err, "model.name_or_path=/nonexistent/model does not exist", "hub id")
    code, _, err = train_cli("model.name_or_path=builtin:huge", f"hydra.run.dir={tmp_path}")
    one_error_line(code, err, "builtin:huge is not a built-in model", "builtin:tiny-warm")


@pytest.mark.parametrize(
    ("override", "module", "needles"),
    [
        ("peft=qlora", "bitsandbytes", ["peft=qlora", "pip install bitsandbytes"]),
        ("generation=vllm_colocate", "vllm", ["generation=vllm_colocate", "pip install -e '.[vllm]'"]),
        ("generation=vllm_server", "vllm", ["generation=vllm_server", "pip install -e '.[vllm]'"]),
    ],
)
def test_missing_optional_extra_gives_the_pip_command(
    train_cli, tmp_path, monkeypatch, override, module, needles
):
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed (import raises ImportError)
    code, _, err = train_cli(override, f"hydra.run.dir={tmp_path}", *TINY)
    one_error_line(code, err, "missing package", *needles)


# ----------------------------------------------------------------------------- budget (item 2)


@pytest.mark.parametrize("steps", ["-5", "0", "-2"])
def test_non_positive_max_steps_is_refused(train_cli, tmp_path, steps):
    code, _, err = train_cli(f"trainer.max_steps={steps}", f"hydra.run.dir={tmp_path}", *TINY)
    one_error_line(code, err, f"trainer.max_steps={steps}", "-1 to train trainer.num_train_epochs epochs")


def test_max_steps_minus_one_needs_epochs(train_cli, tmp_path):
    code, _, err = train_cli(
        "trainer.max_steps=-1", "trainer.num_train_epochs=0", f"hydra.run.dir={tmp_path}", *TINY
    )
    one_error_line(code, err, "trainer.max_steps=-1", "num_train_epochs")
    code, _, err = train_cli("sft_trainer.max_steps=0", "algorithm=sft", f"hydra.run.dir={tmp_path}", *TINY)
    one_error_line(code, err, "sft_trainer.max_steps=0")


# ----------------------------------------------------------------------------- algorithm names (item 5)


def test_internal_preset_is_not_an_algorithm(train_cli, tmp_path):
    code, out, err = train_cli("--help")
    assert code == 0 and "_dr_grpo" not in out and "presets" not in out
    code, _, err = train_cli("algorithm=_dr_grpo", f"hydra.run.dir={tmp_path}")
    # an unknown option of the group: one line with the valid ones; nothing is trained
    line = one_error_line(code, err, "algorithm=_dr_grpo is not an option of algorithm", "prefix_rft, relift")
    assert "_dr_grpo," not in line and not (tmp_path / "config.yaml").exists()


# ----------------------------------------------------------------------------- scheduler (item 11)


def test_rising_scheduler_is_refused_unless_asked_for(train_cli, tmp_path, caplog):
    rising = ["scheduler.low_start=0.2", "scheduler.low_end=0.9"]
    code, _, err = train_cli(*rising, f"hydra.run.dir={tmp_path}", *TINY)
    one_error_line(
        code, err, "scheduler.low_start=0.2 < scheduler.low_end=0.9", "scheduler.allow_rising=true"
    )

    from prefix_rft.config.compose import compose_config
    from prefix_rft.config.validate import validate_train_config

    cfg = compose_config([*rising, "scheduler.allow_rising=true", f"output_dir={tmp_path}"])
    with caplog.at_level("WARNING", logger="prefix_rft.config.validate"):
        validate_train_config(cfg)
    assert "rises over training (scheduler.allow_rising=true" in caplog.text


# ----------------------------------------------------------------------------- resume keys (item 1)


def test_two_different_resume_values_are_refused(train_cli, tmp_path):
    code, _, err = train_cli(
        "resume_from_checkpoint=latest",
        f"trainer.resume_from_checkpoint={tmp_path}",
        f"hydra.run.dir={tmp_path}",
    )
    one_error_line(code, err, "resume_from_checkpoint is set twice", "trainer.resume_from_checkpoint=")
    code, _, err = train_cli(
        f"resume_from_checkpoint={tmp_path / 'nope'}", f"hydra.run.dir={tmp_path}", *TINY
    )
    one_error_line(code, err, "resume_from_checkpoint=", "is not a checkpoint folder")


# ----------------------------------------------------------------------------- evaluation (item 4)


def test_eval_on_empty_or_non_utf8_benchmark_file(eval_cli, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"\n")
    code, _, err = eval_cli(f"benchmarks=[{empty}]", f"output_dir={tmp_path / 'e1'}")
    one_error_line(code, err, f"benchmark file {empty} is empty")
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"problem": "1+1?", "answer": "2"}\n{"problem": "\xe9t\xe9", "answer": "3"}\n')
    code, _, err = eval_cli(f"benchmarks=[{latin}]", f"output_dir={tmp_path / 'e2'}")
    one_error_line(code, err, "latin.jsonl: line 2 is not UTF-8")
    parquet = tmp_path / "bad.parquet"
    parquet.write_bytes(b"nope")
    code, _, err = eval_cli("benchmarks=[]", f"data_file={parquet}", f"output_dir={tmp_path / 'e3'}")
    one_error_line(code, err, f"data_file={parquet}", "not a LUFFY evaluation parquet")


def test_eval_nonexistent_model_and_missing_vllm(eval_cli, tmp_path, monkeypatch):
    code, _, err = eval_cli(
        "model_path=/nonexistent/model", "synthetic.num=2", f"output_dir={tmp_path / 'a'}"
    )
    one_error_line(code, err, "model_path=/nonexistent/model does not exist")
    monkeypatch.setitem(sys.modules, "vllm", None)
    code, _, err = eval_cli("backend=vllm", "synthetic.num=2", f"output_dir={tmp_path / 'b'}")
    one_error_line(code, err, "backend=vllm needs the vllm package", "pip install -e '.[vllm]'")


# ----------------------------------------------------------------------------- the console scripts


def console(name: str) -> list[str]:
    exe = shutil.which(name, path=os.path.dirname(sys.executable))
    module = {"prefix-rft-train": "prefix_rft.cli.train", "prefix-rft-eval": "prefix_rft.cli.evaluate"}[name]
    return [exe] if exe else [sys.executable, "-m", module]


def test_console_script_prints_one_line_and_debug_flag_shows_traceback(tmp_path, train_cli, monkeypatch):
    data = tmp_path / "empty.jsonl"
    data.write_bytes(b"")
    args = ["data=local", f"data.path={data}", f"hydra.run.dir={tmp_path / 'run'}"]
    env = {k: v for k, v in os.environ.items() if k not in ("PREFIX_RFT_DEBUG", "HYDRA_FULL_ERROR")}
    proc = subprocess.run(
        console("prefix-rft-train") + args, capture_output=True, text=True, env=env, timeout=300
    )
    one_error_line(proc.returncode, proc.stderr, "data error: data.path=", "is empty")
    monkeypatch.setenv("PREFIX_RFT_DEBUG", "1")
    code, _, err = train_cli(*args)
    assert code != 0 and "Traceback" in err and "DataError" in err


def test_settings_trl_rejects_are_one_line(train_cli, tmp_path):
    """TRL's own checks of its config (here: a batch that is not a whole number of groups)."""
    code, _, err = train_cli(
        "trainer.per_device_train_batch_size=6",
        "trainer.num_generations=4",
        f"hydra.run.dir={tmp_path}",
        *TINY,
    )
    one_error_line(
        code, err, "TRL's GRPOConfig rejects the trainer.* settings", "divisible by num_generations"
    )


def test_pass_rates_nonexistent_model(monkeypatch, capsys):
    from prefix_rft.cli.pass_rates import main

    with pytest.raises(SystemExit) as exc:
        main(["--model", "/nonexistent/model", "--out", "unused.jsonl"])
    one_error_line(exc.value.code, capsys.readouterr().err, "--model=/nonexistent/model does not exist")


@pytest.mark.parametrize(
    "ratios, expected",
    [("0.1,1.5", "every ratio must lie in (0, 1)"), ("0.1,a", "expected comma-separated numbers")],
)
def test_pass_rates_bad_prefix_ratios(capsys, ratios, expected):
    from prefix_rft.cli.pass_rates import main

    with pytest.raises(SystemExit) as exc:
        main(["--model", "builtin:tiny-warm", "--out", "unused.jsonl", "--prefix-ratios", ratios])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "--prefix-ratios" in err and expected in err


def test_internal_names_cannot_be_registered():
    from prefix_rft.algorithms import register_algorithm

    with pytest.raises(ValueError, match="reserved for internal presets"):
        register_algorithm("_dr_grpo")
