"""SFT -> RL configured the way the re-examination (arXiv 2604.23747) ran it, end to end on the tiny model:
an SFT stage sized by epochs (not by the RL step budget) with a cosine schedule to a floor and weight decay,
then RL with a token-level loss, asymmetric clipping and two optimizer updates per rollout batch."""

from __future__ import annotations

import json

import pytest

from prefix_rft.config.build import build_sft_config
from prefix_rft.config.compose import compose_config

SFT_LR = 1e-3


def overrides(out) -> list[str]:
    return [
        "algorithm=sft_then_rft",
        f"output_dir={out}",
        "model.name_or_path=builtin:tiny",  # no warm start needed: this checks the schedule and the counts
        "data.synthetic.num_train=8",
        "data.synthetic.train_min_steps=2",
        "data.synthetic.train_max_steps=3",
        "heldout_eval.enabled=false",
        "trainer.save_steps=1000",
        # RL: 8 rows (2 prompts x 4) per optimizer update, a rollout batch of 16 rows = two updates.
        "trainer.max_steps=2",
        "trainer.per_device_train_batch_size=8",
        "trainer.num_generations=4",
        "trainer.max_completion_length=32",
        "trainer.steps_per_generation=2",
        "trainer.loss_type=dapo",
        "trainer.epsilon_high=0.28",
        # SFT: 2 epochs of the 8 demonstrations, 4 per step = 4 steps, whatever trainer.max_steps says.
        "sft_trainer.num_train_epochs=2",
        "sft_trainer.per_device_train_batch_size=4",
        f"sft_trainer.learning_rate={SFT_LR}",
        "sft_trainer.lr_scheduler_type=cosine_with_min_lr",
        "sft_trainer.lr_scheduler_kwargs={min_lr_rate:0.1}",
        "sft_trainer.warmup_steps=0.25",
        "sft_trainer.weight_decay=0.01",
    ]


def test_sft_epochs_are_not_cut_by_the_rl_step_budget(tmp_path):
    cfg = compose_config(overrides(tmp_path))
    args = build_sft_config(cfg)
    assert args.max_steps == -1 and args.num_train_epochs == 2
    # An explicit SFT step budget still wins, and without epochs the SFT shares trainer.max_steps.
    assert build_sft_config(compose_config([*overrides(tmp_path), "sft_trainer.max_steps=3"])).max_steps == 3
    plain = [o for o in overrides(tmp_path) if not o.startswith("sft_trainer.num_train_epochs")]
    assert build_sft_config(compose_config(plain)).max_steps == 2


@pytest.mark.usefixtures("model_cache")
def test_the_re_examination_pipeline_runs_end_to_end(tmp_path):
    from prefix_rft.pipeline import run_training

    summary = run_training(compose_config(overrides(tmp_path)))
    sft, rl = summary["stages"]
    assert sft["global_step"] == 4  # 2 epochs x 8 demonstrations / 4 per step
    sft_log = [
        json.loads(line) for line in (tmp_path / "stage1_sft" / "log_history.jsonl").read_text().splitlines()
    ]
    rates = [row["learning_rate"] for row in sft_log if "learning_rate" in row]
    # One warmup step, then cosine from lr to a floor of 0.1 x lr over the 3 others: lr x (0.1 + 0.9 x c)
    # with c = 1, 0.75, 0.25 (a plain cosine would give 1, 0.75, 0.25).
    assert rates == pytest.approx([0.0, SFT_LR, 0.775 * SFT_LR, 0.325 * SFT_LR])
    assert rl["global_step"] == 2
    # Two optimizer updates from one rollout batch: 16 rollouts generated once, not 32; TRL computes the old
    # policy's log-probs for the second update (one extra forward pass over the batch).
    cost = {s["stage"]: s for s in summary["cost"]["stages"]}
    assert cost["rl"]["rollouts"] == 16
    assert cost["rl"]["tokens_processed"]["forward_only"] > 0
    assert cost["rl"]["tokens_trained"]["on_policy"] == cost["rl"]["tokens_generated"]
    assert cost["sft"]["tokens_trained"]["sft"] > 0 and cost["sft"]["rollouts"] == 0
    config = (tmp_path / "config.yaml").read_text()
    assert (
        "loss_type: dapo" in config and "epsilon_high: 0.28" in config and "steps_per_generation: 2" in config
    )
