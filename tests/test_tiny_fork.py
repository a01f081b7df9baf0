"""builtin:tiny-fork: its recipe's checkpoints are shorter runs of the same recipe, and the shipped weights are
the ones PROFILE.json describes, with the uncertain fork the model was built for."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def test_constant_lr_checkpoint_is_the_shorter_run(tmp_path, tiny_model_dir, monkeypatch):
    """With a constant learning rate, the checkpoint at step 2 of a 4-step warm start has exactly the weights
    of a 2-step warm start (what lets one run measure every candidate length of tiny-fork's recipe)."""
    from prefix_rft.models.warm_start import warm_start
    from prefix_rft.testbed_model import weights_sha256

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    kwargs = dict(
        mixture={1: 0.5, 2: 0.5},
        num_problems=32,
        lr=1e-3,
        warmup_steps=1,
        batch_size=4,
        seed=3,
        lr_scheduler_type="constant_with_warmup",
    )
    long = warm_start(
        tiny_model_dir,
        tmp_path / "long",
        max_steps_train=4,
        checkpoint_every=2,
        checkpoint_dir=tmp_path / "ckpts",
        **kwargs,
    )
    short = warm_start(tiny_model_dir, tmp_path / "short", max_steps_train=2, **kwargs)
    assert weights_sha256(tmp_path / "ckpts" / "checkpoint-2") == weights_sha256(short)
    assert weights_sha256(long) != weights_sha256(short)  # the longer run did move on
    with pytest.raises(ValueError, match="checkpoint_dir"):
        warm_start(tiny_model_dir, tmp_path / "x", max_steps_train=1, checkpoint_every=1, **kwargs)
