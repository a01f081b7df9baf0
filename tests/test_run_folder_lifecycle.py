"""A run folder's life through ``prefix-rft-train`` (and ``prefix-rft-eval``): a resume keeps the folder's
settings and refuses overrides that change the run, default folders are unique and a live run's folder is
locked, a refusal leaves no half-made folder, Ctrl-C says how to resume, a damaged checkpoint is named
with the newest intact one."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_bad_input import TINY, console, one_error_line
from test_run_folder import SMALL, step_lines


def _refused(code: int, err: str, *needles: str) -> str:
    return one_error_line(code, err, "refused:", *needles)


def test_resume_keeps_the_folders_settings_and_names_damaged_checkpoints(
    train_cli, eval_cli, model_cache, tmp_path
):
    run = tmp_path / "run"
    # resume_from_checkpoint=latest in a folder without checkpoints: said, and the run starts fresh
    code, out, err = train_cli(*SMALL, f"hydra.run.dir={run}", "resume_from_checkpoint=latest")
    assert code == 0, err
    assert f"{run} holds no checkpoint yet; the run starts fresh" in out
    config = (run / "config.yaml").read_bytes()
    metrics = (run / "metrics.json").read_bytes()

    # overrides that change what the run is: refused, naming each key with both values; nothing rewritten
    for args, named in [
        (["algorithm=rft"], "algorithm.name (prefix_rft -> rft)"),
        (["model=qwen2.5-math-1.5b"], "model.name_or_path (builtin:tiny-warm -> Qwen/Qwen2.5-Math-1.5B)"),
        (["seed=7", "trainer.learning_rate=0.001"], "seed (42 -> 7), trainer.learning_rate (3e-05 -> 0.001)"),
        (["data.synthetic.num_train=32"], "data.synthetic.num_train (16 -> 32)"),
        (["scheduler=linear"], "scheduler.name (cosine -> linear)"),
    ]:
        code, _, err = train_cli(f"hydra.run.dir={run}", "resume_from_checkpoint=latest", *args)
        line = _refused(code, err, named, "keeps the settings in its config.yaml", "hydra.run.dir=DIR")
        assert "algorithm.num_prefixed" not in line  # another algorithm: its name says enough
        assert (run / "config.yaml").read_bytes() == config and (run / "metrics.json").read_bytes() == metrics

    # the default job's values are not the run's: without trainer.max_steps nothing is extended to 120
    code, _, err = train_cli(f"hydra.run.dir={run}", "resume_from_checkpoint=latest")
    _refused(
        code, err, "already finished at step 2 (checkpoint-2) and trainer.max_steps=2", "trainer.max_steps=N"
    )

    # extending is allowed and said; every other value comes from the folder (8 rollouts a step, not 64)
    code, out, err = train_cli(f"hydra.run.dir={run}", "resume_from_checkpoint=latest", "trainer.max_steps=3")
    assert code == 0, err
    assert "with the settings of its config.yaml, changed: trainer.max_steps 2 -> 3" in out
    assert json.loads((run / "metrics.json").read_text())["global_step"] == 3
    saved = (run / "config.yaml").read_text()
    assert "per_device_train_batch_size: 8" in saved and "name: prefix_rft" in saved
    assert "max_steps: 3" in saved
    history = [json.loads(line) for line in (run / "log_history.jsonl").read_text().splitlines()]
    assert [row["step"] for row in history if "reward" in row] == [1, 2, 3]
    assert step_lines((run / "train.log").read_text(), "step 3/3") == 1

    # a damaged checkpoint (a truncated model.safetensors) is named, with the newest intact checkpoint
    damaged = run / "checkpoint-3" / "model.safetensors"
    data = damaged.read_bytes()
    damaged.write_bytes(data[: len(data) // 2])
    code, _, err = train_cli(f"hydra.run.dir={run}", "resume_from_checkpoint=latest", "trainer.max_steps=4")
    _refused(
        code,
        err,
        f"checkpoint {run / 'checkpoint-3'} is damaged (model.safetensors: truncated (",
        f"the newest intact checkpoint is {run / 'checkpoint-2'}",
    )
    code, _, err = eval_cli(
        f"model_path={run / 'checkpoint-3'}", "synthetic.num=2", f"output_dir={tmp_path / 'eval'}"
    )
    one_error_line(
        code,
        err,
        f"model_path={run / 'checkpoint-3'} is damaged (model.safetensors: truncated",
        f"the newest intact checkpoint of its run is {run / 'checkpoint-2'}",
    )
    # a damaged trainer state is named too (another file); save_total_limit=2 removed checkpoint-1
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-3"]
    (run / "checkpoint-2" / "trainer_state.json").write_text('{"global_step": 2, "log_hist')
    code, _, err = train_cli(
        f"hydra.run.dir={run}", f"resume_from_checkpoint={run / 'checkpoint-2'}", "trainer.max_steps=4"
    )
    _refused(
        code,
        err,
        "checkpoint-2 is damaged (trainer_state.json: unreadable",
        "no older intact checkpoint is left",
    )


def test_default_run_folders_are_unique(tmp_path, monkeypatch):
    """Two commands started in the same second get two folders (the name is claimed by creating it)."""
    import datetime as real

    from prefix_rft.training import folder_claim

    class Frozen(real.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls(2026, 1, 2, 3, 4, 5)

    monkeypatch.setattr(folder_claim, "datetime", Frozen)
    monkeypatch.delenv(folder_claim.RUN_TIME_ENV, raising=False)
    parent = str(tmp_path / "outputs" / "rft")
    made = []
    for _ in range(3):
        folder_claim.register_run_dir_resolver(new_command=True)
        made.append(folder_claim.unique_run_dir(parent))
        assert folder_claim.unique_run_dir(parent) == made[-1]  # one folder per command
        assert folder_claim.created_by_this_command(made[-1])
    assert [Path(p).name for p in made] == [
        "2026-01-02_03-04-05",
        "2026-01-02_03-04-05_2",
        "2026-01-02_03-04-05_3",
    ]


def test_default_folder_of_a_refused_run_is_removed(train_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = train_cli("trainer.learning_rate=-1", *TINY)
    one_error_line(code, err, "trainer.learning_rate=-1.0 is not valid")
    assert not [p for p in (tmp_path / "outputs").rglob("*") if p.is_file()]
    assert not [p for p in (tmp_path / "outputs").rglob("20*")]  # no run folder left


@pytest.mark.parametrize(
    "args, message",
    [
        (["trainer.per_device_train_batch_size=6", "trainer.num_generations=4"], "TRL's GRPOConfig rejects"),
        (["data=local", "data.path=/nonexistent/problems.jsonl"], "data.path=/nonexistent/problems.jsonl"),
        (["model.name_or_path=/nonexistent/model"], "model.name_or_path=/nonexistent/model does not exist"),
    ],
)
def test_refused_run_leaves_no_new_folder_and_keeps_an_old_one(train_cli, tmp_path, args, message):
    new = tmp_path / "new"
    code, _, err = train_cli(*TINY, *args, f"hydra.run.dir={new}")
    one_error_line(code, err, message)
    assert not new.exists()
    # a folder that was there before keeps its files (and its train.log records the refusal's log lines)
    old = tmp_path / "old"
    old.mkdir()
    (old / "notes.txt").write_text("mine")
    code, _, err = train_cli(*TINY, *args, f"hydra.run.dir={old}")
    one_error_line(code, err, message)
    assert (old / "notes.txt").read_text() == "mine"


def test_a_live_runs_folder_is_locked(train_cli, tmp_path):
    from prefix_rft.training.folder_claim import hold_run_folder

    run = tmp_path / "run"
    with hold_run_folder(run):
        code, _, err = train_cli(*SMALL, f"hydra.run.dir={run}")
        _refused(code, err, f"run folder {run} is in use by a run that is still going (pid {os.getpid()})")
        assert not (run / "config.yaml").exists()
    # the lock goes with its process, even one killed with SIGKILL
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from prefix_rft.training.folder_claim import "
            "hold_run_folder\nwith hold_run_folder(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(60)",
            str(run),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(Exception, match="in use by a run that is still going"):
        with hold_run_folder(run):
            pass
    holder.kill()
    holder.wait()
    with hold_run_folder(run):
        pass


def _sigint_as_in_a_terminal() -> None:
    # A job started in the background by a non-interactive shell (as CI may start this suite) inherits
    # SIGINT ignored, and Python then installs no KeyboardInterrupt handler; a terminal's foreground job
    # has the default disposition, which is what these tests simulate.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_says_where_training_stopped_and_how_to_resume(model_cache, tmp_path):
    run = tmp_path / "run"
    args = [*SMALL, "trainer.max_steps=500", "trainer.save_steps=1", "heldout_eval.enabled=false"]
    env = {k: v for k, v in os.environ.items() if k not in ("PREFIX_RFT_DEBUG", "HYDRA_FULL_ERROR")}
    proc = subprocess.Popen(
        [*console("prefix-rft-train"), *args, f"hydra.run.dir={run}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # its own process group, as a terminal's foreground job
        preexec_fn=_sigint_as_in_a_terminal,
    )
    deadline = time.time() + 240
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "step 2/500" in line or time.time() > deadline:
            break
    assert any("step 2/500" in line for line in lines), "".join(lines)
    # wait for checkpoint-2 to be complete, then Ctrl-C: SIGINT to the whole process group (the grader's
    # worker processes too), as the terminal sends it
    while not (run / "checkpoint-2" / "trainer_state.json").exists() and time.time() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in out + err and "KeyboardInterrupt" not in out + err
    errors = [line for line in err.splitlines() if line.startswith("prefix-rft-")]
    assert len(errors) == 1, err
    line = errors[0]
    assert line.startswith("prefix-rft-train: interrupted: training stopped after step ")
    assert "/500 of the rl stage; last checkpoint: " + str(run / "checkpoint-") in line
    assert f"resume with: prefix-rft-train hydra.run.dir={run} resume_from_checkpoint=latest" in line
    named = Path(line.split("last checkpoint: ")[1].split(";")[0])
    assert named.is_dir() and named == sorted(run.glob("checkpoint-*"), key=lambda p: int(p.name[11:]))[-1]
    shutil.rmtree(run)


def test_ctrl_c_of_an_evaluation_says_how_to_resume(tiny_model_dir, tmp_path):
    out = tmp_path / "eval"
    args = [
        f"model_path={tiny_model_dir}",
        "synthetic.num=400",
        "samples=2",
        "batch_size=4",
        "max_new_tokens=16",
        "progress=false",
        f"output_dir={out}",
    ]
    proc = subprocess.Popen(
        [*console("prefix-rft-eval"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        start_new_session=True,
        preexec_fn=_sigint_as_in_a_terminal,
    )
    samples = out / "samples.jsonl"
    deadline = time.time() + 240
    while (not samples.exists() or samples.stat().st_size == 0) and time.time() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)
    stdout, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in stdout + err
    errors = [line for line in err.splitlines() if line.startswith("prefix-rft-")]
    assert errors == [
        f"prefix-rft-eval: interrupted: the samples written so far are kept in {out}; resume with the same "
        f"command and output_dir={out}"
    ]
    assert json.loads(samples.read_text().splitlines()[0])["benchmark"] == "synthetic"
