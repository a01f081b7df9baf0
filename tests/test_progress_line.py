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


def test_engine_logprob_gap_skips_unsampled_tokens_and_shows_in_the_line():
    from collections import defaultdict
    from types import SimpleNamespace

    import torch

    from prefix_rft.training.engine_gap import LOGPROB_GAP, logprob_gap_sums, record_logprob_gap

    nan = float("nan")
    trainer_logps = torch.tensor([[-1.0, -2.0, -3.0], [-0.5, -0.5, -9.0]])
    # row 0: a hybrid (first token a demonstration prefix: NaN engine log-prob); row 1: last token padding
    engine_logps = torch.tensor([[nan, -2.5, -2.0], [-0.25, -1.0, 0.0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    assert logprob_gap_sums(trainer_logps, engine_logps, mask) == (0.5 + 1.0 + 0.25 + 0.5, 4)

    class Accelerator:
        def reduce(self, t, reduction):
            assert reduction == "sum"
            return t * 2  # two identical processes

    trainer = SimpleNamespace(accelerator=Accelerator(), _metrics={"train": defaultdict(list)})
    output = {
        "old_per_token_logps": trainer_logps,
        "sampling_per_token_logps": engine_logps,
        "completion_mask": mask,
    }
    assert record_logprob_gap(trainer, output, "train") == 2.25 / 4
    assert trainer._metrics["train"][LOGPROB_GAP] == [2.25 / 4]
    # the transformers backend: no engine log-probs, no metric
    assert record_logprob_gap(trainer, {"completion_mask": mask}, "train") is None

    assert format_progress(
        {"reward": 0.5, "loss": 0.1, LOGPROB_GAP: 0.0031, "step_time": 1.0}, 2, 3, None
    ) == ("step 2/3 | reward 0.500 | loss 0.1 | logprob gap 0.0031 | 1.00 s/step")
    assert format_progress({"loss": 0.1, LOGPROB_GAP: 2.5e-7}, 2, 3, None) == (
        "step 2/3 | loss 0.1 | logprob gap 2.5e-07"
    )


def test_logprob_gap_is_installed_only_on_engine_trainers():
    from types import SimpleNamespace

    from prefix_rft.training.engine_gap import install_logprob_gap

    plain = SimpleNamespace(use_vllm=False, _generate_and_score_completions=lambda inputs: {})
    assert not install_logprob_gap(plain)
    calls = []
    engine = SimpleNamespace(
        use_vllm=True,
        model=SimpleNamespace(training=True),
        _generate_and_score_completions=lambda inputs: calls.append(inputs) or {"completion_mask": None},
    )
    assert install_logprob_gap(engine)
    assert engine._generate_and_score_completions([1]) == {"completion_mask": None}
    assert calls == [[1]]
