"""Each algorithm's config holds its own knobs; only the algorithms that draw prefix ratios take a scheduler.

The trainers share one base (:class:`~prefix_rft.trainers.base.DrGRPOTrainer`); prefix sampling is a part
(:mod:`prefix_rft.trainers.prefix_sampling`) that only Prefix-RFT, LUFFY, SRFT and prefix-in-prompt use."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from prefix_rft.algorithms import ALGORITHMS, get_algorithm
from prefix_rft.config.compose import compose_config
from prefix_rft.config.knob_notices import ignored_knobs, scheduler_knobs_read
from prefix_rft.trainers.base import DrGRPOConfig, DrGRPOTrainer
from prefix_rft.trainers.prefix_sampling import HybridRolloutConfig, ScheduledPrefixConfig, ScheduledPrefixes

RL_ENTRIES = [name for name, entry in ALGORITHMS.items() if entry.trainer is not None]


def own_knobs(name: str) -> set[str]:
    return {f.name for f in dataclasses.fields(get_algorithm(name).config)}


@pytest.mark.parametrize("name", RL_ENTRIES)
def test_a_trainer_takes_a_scheduler_exactly_when_its_config_uses_one(name):
    entry = ALGORITHMS[name]
    takes = issubclass(entry.trainer, ScheduledPrefixes)
    assert entry.config.uses_scheduler == takes
    assert issubclass(entry.config, ScheduledPrefixConfig) == takes
    # Every project trainer is built on the shared base; TRL's own GRPOTrainer (rft) is the only other.
    if entry.config is not get_algorithm("rft").config:
        assert issubclass(entry.trainer, DrGRPOTrainer) and issubclass(entry.config, DrGRPOConfig)


def test_prefix_knobs_belong_to_the_algorithms_that_sample_prefixes_only():
    hybrid = {f.name for f in dataclasses.fields(HybridRolloutConfig)}
    for name in ("chord", "rl_sft_loss", "hpt", "relift", "prefix_in_prompt"):
        assert not own_knobs(name) & (hybrid - {"min_prefix_tokens"}), name
    assert own_knobs("chord") == {
        "sft_micro_batch_size",
        "mu_peak",
        "mu_valley",
        "mu_warmup_steps",
        "mu_decay_steps",
        "phi_weighting",
    }
    assert hybrid <= own_knobs("prefix_rft") and hybrid <= own_knobs("luffy") and hybrid <= own_knobs("srft")


def test_a_prefix_knob_given_to_chord_is_reported_as_ignored():
    cfg = compose_config(["algorithm=chord", "algorithm.keep_fraction=0.5", "output_dir=/tmp/unused"])
    assert ignored_knobs(cfg, ["algorithm=chord", "algorithm.keep_fraction=0.5"]) == [
        "algorithm.keep_fraction"
    ]


@pytest.mark.parametrize(
    ("name", "reads"),
    [("rft", False), ("chord", False), ("hpt", False), ("prefix_rft", True), ("prefix_in_prompt", True)],
)
def test_scheduler_keys_are_read_only_by_algorithms_that_draw_prefix_ratios(name, reads):
    overrides = [f"algorithm={name}", "scheduler.decay_steps=7"]
    cfg = compose_config([*overrides, "output_dir=/tmp/unused"])
    assert ("decay_steps" in scheduler_knobs_read(cfg)) == reads
    assert ("scheduler.decay_steps" in ignored_knobs(cfg, overrides)) == (not reads)


@pytest.mark.parametrize("name", ["chord", "prefix_rft"])
def test_the_run_builds_a_scheduler_only_when_the_algorithm_uses_one(
    name, tiny_model_dir, monkeypatch, caplog
):
    """The start-up checks and the pipeline's trainer builder on the tiny model: a scheduler is built once
    for Prefix-RFT (the trainer gets the object the checks built), never for CHORD, whose trainer would
    refuse one."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import prefix_rft.config.build as build
    import prefix_rft.prefix.schedulers as schedulers
    from prefix_rft.config.validate import validate_train_config
    from prefix_rft.data.sources import load_train_dataset

    built = []
    real = schedulers.scheduler_from_config
    monkeypatch.setattr(schedulers, "scheduler_from_config", lambda c: built.append(c.name) or real(c))
    monkeypatch.setattr(build, "_BUILT_SCHEDULERS", {})
    cfg = compose_config(
        [f"algorithm={name}", "model=tiny", f"model.name_or_path={tiny_model_dir}", "output_dir=/tmp/unused"]
    )
    validate_train_config(cfg)
    with caplog.at_level(logging.WARNING):
        trainer = build.build_rl_trainer(
            cfg,
            AutoModelForCausalLM.from_pretrained(tiny_model_dir),
            AutoTokenizer.from_pretrained(tiny_model_dir),
            load_train_dataset(cfg.data),
        )
    assert built == (["cosine"] if name == "prefix_rft" else [])
    assert hasattr(trainer, "prefix_scheduler") == (name == "prefix_rft")
    if name == "prefix_rft":
        assert trainer.prefix_scheduler is build.build_prefix_scheduler(cfg)  # checkpointed as itself
        assert trainer.prefix_scheduler.state_dict()["decay_steps"] == cfg.scheduler.decay_steps
