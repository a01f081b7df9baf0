"""The console/train.log progress line: exact text on hand-made log events."""

from __future__ import annotations

import logging

from prefix_rft.training.progress import ConsoleFormatter, format_progress


def test_progress_line_of_a_prefix_rft_step():
    logs = {
        "loss": 0.0192,
        "reward": 0.578125,
        "rewards/on_policy_mean": 0.5179,
        "rewards/hybrid_mean": 1.0,
        "prefix/ratio_mean": 0.8356,
        "prefix/hybrid_fraction": 0.125,
        "step_time": 2.3141,
        "entropy": 0.06,
    }
    assert format_progress(logs, 40, 120, 9.9) == (
        "step 40/120 | reward 0.578 (on-policy 0.518, hybrid 1.000) | prefix ratio 0.84 | loss 0.0192 | 2.31 s/step"
    )


def test_progress_line_of_rft_sft_and_the_end():
    # RFT: no hybrids, so no split and no ratio; TRL's step_time wins over the callback's own timing
    assert format_progress({"reward": 0.5, "loss": -0.01, "step_time": 1.0}, 3, 10, 2.0) == (
        "step 3/10 | reward 0.500 | loss -0.01 | 1.00 s/step"
    )
    # SFT: no reward, no step_time: the callback's timing
    assert (
        format_progress({"loss": 0.25, "learning_rate": 1e-4}, 5, 10, 0.5)
        == "step 5/10 | loss 0.25 | 0.50 s/step"
    )
    assert format_progress({"loss": 0.25}, 1, 10, None) == "step 1/10 | loss 0.25"
    assert (
        format_progress({"train_runtime": 61.7, "train_loss": 0.1}, 10, 10, None) == "done: 10 steps in 62 s"
    )
    # a prefix ratio is shown only when hybrids were in the batch
    logs = {"reward": 0.5, "prefix/ratio_mean": 0.0, "prefix/hybrid_fraction": 0.0}
    assert format_progress(logs, 1, 1, None) == "step 1/1 | reward 0.500"


def test_console_formatter_names_level_only_for_warnings():
    fmt = ConsoleFormatter()
    info = logging.LogRecord("prefix_rft.progress", logging.INFO, __file__, 1, "step 1/2", None, None)
    warn = logging.LogRecord("prefix_rft.data", logging.WARNING, __file__, 1, "skipping %d rows", (3,), None)
    assert fmt.format(info).endswith("] step 1/2") and fmt.format(info).startswith("[")
    assert fmt.format(warn).endswith("] WARNING prefix_rft.data: skipping 3 rows")
