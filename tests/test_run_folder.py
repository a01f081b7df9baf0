"""A run folder across reruns, through ``prefix-rft-train`` (its Hydra main, in this process): resuming by
either spelling, refusing to overwrite, the held-out 'before' kept, train.log, rerunning from the folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from prefix_rft.errors import RunFolderError
from prefix_rft.training.run_folder import STAGE_DONE, check_run_folder

SMALL = [
    "model.name_or_path=builtin:tiny-warm",
    "trainer.max_steps=2",
    "trainer.save_steps=1",
    "trainer.per_device_train_batch_size=8",
    "trainer.num_generations=4",
    "trainer.max_completion_length=32",
    "data.synthetic.num_train=16",
    "data.synthetic.num_eval=8",
    "heldout_eval.samples=1",
    "heldout_eval.max_new_tokens=32",
]


def step_lines(log: str, prefix: str) -> int:
    return sum(f"[prefix_rft.progress][INFO] - {prefix}" in line for line in log.splitlines())


def test_resume_refuse_rerun_and_extend_a_run_folder(train_cli, model_cache, tmp_path):
    run = tmp_path / "run"
    code, out, err = train_cli(*SMALL, f"hydra.run.dir={run}")
    assert code == 0, err
    first = json.loads((run / "metrics.json").read_text())
    assert first["global_step"] == 2 and 0.0 <= first["heldout_before"]["accuracy"] <= 1.0
    log = (run / "train.log").read_text()
    # the per-step progress and the held-out line reach the run's log file
    assert step_lines(log, "step 1/2 | reward ") == 1 and step_lines(log, "step 2/2 | reward ") == 1
    assert "held-out accuracy (8 problems, avg@1, T=1): before" in log and "-> after" in log
    assert "???" not in (run / "config.yaml").read_text()
    stamp = (run / "checkpoint-2" / "model.safetensors").stat().st_mtime_ns

    # the same command again: refused with the way to resume, nothing overwritten
    code, _, err = train_cli(*SMALL, f"hydra.run.dir={run}")
    assert code == 2 and "Traceback" not in err
    assert f"run folder {run} already holds a run (checkpoint-1, checkpoint-2, metrics.json)" in err
    assert "resume_from_checkpoint=latest" in err and "hydra.run.dir=DIR" in err
    assert (run / "checkpoint-2" / "model.safetensors").stat().st_mtime_ns == stamp

    # TRL's spelling resumes from checkpoint-2; 'before' is read back from the run folder (a marker
    # value proves it is not measured again) and nothing prints nan
    marker = {"accuracy": 0.123}
    stored = json.loads((run / "heldout_before.json").read_text())
    assert stored["heldout_before"] == first["heldout_before"]
    (run / "heldout_before.json").write_text(json.dumps({**stored, "heldout_before": marker}))
    code, out, err = train_cli(
        *SMALL, f"hydra.run.dir={run}", "trainer.resume_from_checkpoint=latest", "trainer.max_steps=3"
    )
    assert code == 0, err
    resumed = json.loads((run / "metrics.json").read_text())
    assert resumed["global_step"] == 3 and resumed["heldout_before"] == marker
    log = (run / "train.log").read_text()
    assert (
        step_lines(log, "step 3/3 | reward ") == 1 and step_lines(log, "step 1/3") == 0
    )  # resumed, not restarted
    assert "before 0.123 -> after" in log and "nan" not in log + out + err
    assert (run / "checkpoint-2" / "model.safetensors").stat().st_mtime_ns == stamp

    # the run's saved config, from its folder: extend it by one more step
    code, _, err = train_cli(
        "--config-dir",
        str(run),
        "--config-name",
        "config",
        "resume_from_checkpoint=latest",
        "trainer.max_steps=4",
    )
    assert code == 0, err
    assert json.loads((run / "metrics.json").read_text())["global_step"] == 4
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["trainer"]["max_steps"] == 4 and saved["hydra"]["run"]["dir"] == str(run)
    assert saved["resume_from_checkpoint"] is None  # how it was started is not a setting of the run

    # ... or the same settings into a new folder
    other = tmp_path / "other"
    code, _, err = train_cli("--config-dir", str(run), "--config-name", "config", f"hydra.run.dir={other}")
    assert code == 0, err
    again = json.loads((other / "metrics.json").read_text())
    assert again["global_step"] == 4 and again["output_dir"] == str(other)


def test_readme_local_data_command_works_with_the_default_model(train_cli, model_cache, tmp_path):
    """`data=local data.path=... data.problem_column=...` as the README writes it (the default tiny model's
    512-token window: the prompt limit follows from it)."""
    rows = [
        {
            "question": f"Sam has {i} pens and gets {i + 1} more. How many pens?",
            "final": str(2 * i + 1),
            "solution": f"{i}+{i + 1}={2 * i + 1}. \\boxed{{{2 * i + 1}}}",
        }
        for i in range(1, 9)
    ]
    data = tmp_path / "my_problems.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = tmp_path / "run"
    code, _, err = train_cli(
        "data=local",
        f"data.path={data}",
        "data.problem_column=question",
        "data.answer_column=final",
        "trainer.max_steps=2",
        f"hydra.run.dir={run}",
    )
    assert code == 0, err
    assert json.loads((run / "metrics.json").read_text())["global_step"] == 2


def _folder(tmp_path: Path, *paths: str) -> Path:
    for p in paths:
        (tmp_path / p).parent.mkdir(parents=True, exist_ok=True)
        if p.endswith("/"):
            (tmp_path / p).mkdir(parents=True, exist_ok=True)
        else:
            (tmp_path / p).write_text("{}")
    return tmp_path


def test_run_folder_guard_covers_stages(tmp_path):
    stages = [tmp_path / "stage1_sft", tmp_path / "stage2_rl"]
    check_run_folder(tmp_path, stages, None)  # empty: a fresh run
    _folder(tmp_path, "config.yaml", "train.log")
    check_run_folder(tmp_path, stages, None)  # killed before its first checkpoint: nothing to lose
    _folder(tmp_path, f"stage1_sft/{STAGE_DONE}", "stage1_sft/checkpoint-5/")
    with pytest.raises(RunFolderError, match=r"stage1_sft/checkpoint-5, stage1_sft/stage_complete.json"):
        check_run_folder(tmp_path, stages, None)
    check_run_folder(tmp_path, stages, "latest")
    _folder(tmp_path, "metrics.json")  # finished, but stage 2 kept no checkpoint: resuming would retrain it
    with pytest.raises(RunFolderError, match="no checkpoint to resume from"):
        check_run_folder(tmp_path, stages, "latest")
    _folder(tmp_path, "stage2_rl/checkpoint-10/")
    check_run_folder(tmp_path, stages, "latest")


def test_heldout_before_is_reused_only_for_the_same_measurement(tmp_path):
    from prefix_rft.training.run_folder import load_heldout_before, save_heldout_before

    settings = {"model": "builtin:tiny-warm", "heldout_eval": {"samples": 4}}
    assert load_heldout_before(tmp_path, settings) is None
    save_heldout_before(tmp_path, {"accuracy": 0.25}, settings)
    assert load_heldout_before(tmp_path, settings) == {"accuracy": 0.25}
    assert load_heldout_before(tmp_path, {**settings, "heldout_eval": {"samples": 8}}) is None


def test_latest_skips_a_checkpoint_a_kill_left_half_written(tmp_path, caplog):
    from prefix_rft.training.run_folder import resolve_resume

    assert resolve_resume("latest", tmp_path) is None
    _folder(tmp_path, "checkpoint-2/trainer_state.json", "checkpoint-10/trainer_state.json")
    _folder(tmp_path, "checkpoint-12/global_step12/", "checkpoint-12/model.safetensors")  # killed mid-save
    assert resolve_resume("latest", tmp_path) == str(tmp_path / "checkpoint-10")
    assert "skipping" in caplog.text and "checkpoint-12" in caplog.text
    only_partial = tmp_path / "fresh"
    _folder(only_partial, "checkpoint-1/model.safetensors")
    assert resolve_resume("latest", only_partial) is None  # nothing complete: starts from the beginning
