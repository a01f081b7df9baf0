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


def test_shipped_tiny_fork_matches_its_profile_and_has_an_uncertain_fork():
    """builtin:tiny-fork is the file PROFILE.json describes (sha256), its greedy accuracy on 60 profile problems
    per level is within 3 standard errors of the recorded one, and at the 4-step fork (first token of the fourth
    equation) p(demonstration token) is in the range the model was built for, with entropy_top keeping it."""
    from fakes import greedy_accuracy_by_level

    from benchmarks import decision_tokens as dt
    from prefix_rft.models.load import resolve_model_path
    from prefix_rft.models.tiny import SHIPPED_DIRS
    from prefix_rft.testbed_model import weights_sha256

    folder = SHIPPED_DIRS["tiny-fork"]
    recorded = json.loads((folder / "PROFILE.json").read_text())
    path = Path(resolve_model_path("builtin:tiny-fork"))
    assert path == folder and weights_sha256(path) == recorded["sha256"]
    greedy_accuracy_by_level(path, recorded)
    probe = dt.probe_testbed("builtin:tiny-fork", 4, 60, steps=4)
    fork = probe["summary"]["eq4"]
    assert 0.05 <= fork["mean_p_demo"] <= 0.5, fork
    assert fork["kept_full_prefix"] > 0.9  # the uncertain fork is what entropy_top selects
