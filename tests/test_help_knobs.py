"""``prefix-rft-train --help algorithm=NAME`` / ``--help scheduler=NAME`` (and ``--help-algorithm NAME`` /
``--help-scheduler NAME``): one algorithm's knobs or one schedule's keys, with type, default and help, through
the real console script."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys


def train(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("prefix-rft-train", path=os.path.dirname(sys.executable))
    command = [exe] if exe else [sys.executable, "-m", "prefix_rft.cli.train"]
    return subprocess.run(command + list(args), capture_output=True, text=True, timeout=300)


def test_help_algorithm_prints_each_knob_with_type_default_and_help():
    proc = train("--help", "algorithm=chord")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == (
        "algorithm=chord: CHORD's knobs: the schedule of the global coefficient mu and the token weighting phi."
    )
    assert (
        lines[1] == "  stages: rl; RL trainer: ChordTrainer; config: ChordConfig (prefix_rft.trainers.chord)"
    )
    i = lines.index("  mu_peak: float = 0.5")
    assert lines[i + 1] == (
        "      Largest mu, reached after the warm-up (official example config: 0.5; CHORD-mu: 0.9; CHORD-phi: 0.1)."
    )
    assert "  phi_weighting: bool = True" in lines and "  mu_decay_steps: int = 400" in lines
    # Knobs a part of the config declares are listed under it, with the value this algorithm gives them.
    assert lines.index(" ChordConfig:") < lines.index(" from SupervisedTermConfig:")
    assert lines.index("  sft_micro_batch_size: int = 4") > lines.index(" from SupervisedTermConfig:")
    # CHORD samples no prefixes: none of Prefix-RFT's knobs is one of its own.
    assert "  num_prefixed: " not in proc.stdout and "  prefix_update: " not in proc.stdout
    # Only this algorithm's knobs, not the whole generated group.
    assert "  gate: " not in proc.stdout and "  sft_coef: " not in proc.stdout


def test_help_algorithm_flag_form_and_an_algorithm_without_knobs():
    luffy = train("--help-algorithm", "luffy")
    assert luffy.returncode == 0 and luffy.stdout.startswith("algorithm=luffy: LUFFY:")
    assert "  off_policy_loss: str = 'shaped'" in luffy.stdout.splitlines()  # LUFFY's own default
    # What its YAML preset selects besides the knobs: the full-demonstration schedule.
    assert (
        luffy.stdout.splitlines()[2]
        == "  conf/algorithm/luffy.yaml also selects: presets/dr_grpo, scheduler=full"
    )
    rft = train("--help", "algorithm=rft")
    assert rft.returncode == 0 and "No knobs of its own. Registered algorithms: chord," in rft.stdout


def test_help_scheduler_prints_the_keys_its_schedule_reads_with_this_option_s_values():
    proc = train("--help-scheduler", "cosine_half")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "scheduler=cosine_half (conf/scheduler/cosine_half.yaml):"
    assert "Schedule 'cosine' (CosineScheduler): low_t follows a half cosine" in proc.stdout
    i = lines.index("  high: float = 0.5")  # the option's value, not the schema default 0.95
    assert lines[i + 1] == "      Upper bound of the prefix ratio (paper: 0.95)."
    assert "  low_start: float = 0.5" in lines and "  decay_steps: int = 500" in lines
    assert "Not read by this schedule: scheduler.low, scheduler.value." in lines
    full = train("--help", "scheduler=full")
    assert full.returncode == 0 and "  value: float = 1.0" in full.stdout.splitlines()


def test_an_unknown_name_is_one_line_and_exit_2():
    proc = train("--help", "scheduler=nope")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == (
        "prefix-rft-train: scheduler='nope' is not an option; expected one of "
        "['constant', 'cosine', 'cosine_half', 'full', 'linear', 'uniform']"
    )
    algo = train("--help-algorithm", "nope")
    assert algo.returncode == 2 and "Traceback" not in algo.stderr
    assert algo.stderr.strip().startswith(
        "prefix-rft-train: algorithm.name='nope' is not a registered algorithm; expected one of ['chord',"
    )
