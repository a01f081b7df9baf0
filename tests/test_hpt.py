"""HPT: the per-question gate (solved rollouts <= gate -> SFT, else RL), its row masks, its loss on a real
batch of the tiny model, and a short training run."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from test_prefix_rft_trainer import MAX_LEN, G, make_args

from prefix_rft.errors import ConfigError
from prefix_rft.trainers.hpt import HPTConfig, HPTTrainer, gated_row_masks, hpt_sft_gate, solved_counts

# ----------------------------------------------------------------------------- pure pieces


def test_solved_counts_and_gate_by_hand():
    # Groups of 4: solved = rewards >= 1 (NaN never solved; 0.99 is not solved).
    rewards = [0, 0, 0, 0, 1, 0, 0, 0, 1, 1, float("nan"), 0.99, 1, 1, 1, 1]
    assert solved_counts(rewards, 4) == [0, 1, 2, 4]
    assert hpt_sft_gate([0, 1, 2, 4], gate=0) == [True, False, False, False]  # Qwen setting: only all-fail
    assert hpt_sft_gate([0, 1, 2, 4], gate=2) == [True, True, True, False]  # LLaMA setting
    # A lower success threshold (a 0.5 partial-credit reward) counts the 0.99 as solved.
    assert solved_counts(rewards, 4, solved_reward=0.5) == [0, 1, 3, 4]
    with pytest.raises(ValueError, match="groups of 4"):
        solved_counts([1, 0, 0], 4)


def test_gated_row_masks_by_hand():
    rl_rows, demo_rows = gated_row_masks([False, True, True], 2)
    assert rl_rows.tolist() == [True, True, False, False, False, False]
    assert demo_rows.tolist() == [False, False, True, False, True, False]


def test_config_checks_the_gate_against_the_group_size():
    args = make_args("/tmp/unused")
    HPTConfig(gate=G - 1).check(args)
    with pytest.raises(ConfigError, match="algorithm.gate"):
        HPTConfig(gate=G).check(args)
    # Its rollouts are all on-policy: it has no hybrid-rollout knob to set.
    assert "num_prefixed" not in {f.name for f in dataclasses.fields(HPTConfig)}


# ----------------------------------------------------------------------------- trainer on the tiny model


def first_group_one_solved(completions, **kwargs) -> list[float]:
    """Per generation batch of 2 groups: group 0 solves its 2nd rollout only, group 1 solves nothing."""
    return [1.0 if i % (2 * G) == 1 else 0.0 for i in range(len(completions))]


def make_hpt(tiny_model_dir, dataset, out, reward=first_group_one_solved, **knobs):
    """An HPT trainer with the cost accounting the pipeline gives every registered trainer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from prefix_rft.cost.trainers import with_cost_accounting

    return with_cost_accounting(HPTTrainer)(
        model=AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        reward_funcs=[reward],
        args=make_args(out),
        train_dataset=dataset,
        processing_class=AutoTokenizer.from_pretrained(tiny_model_dir),
        algorithm=HPTConfig(**knobs),
    )


def test_gate_routes_each_question_and_the_loss_is_rl_plus_weighted_sft(tiny_model_dir, dataset, tmp_path):
    trainer = make_hpt(tiny_model_dir, dataset, tmp_path, gate=0, sft_coef=0.5)
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1
    rows = [dict(dataset[i // G]) for i in range(2 * G)]
    batch = trainer._generate_and_score_completions(rows)

    # Group 0 solved 1 of 4 > gate 0: RL. Group 1 solved 0: SFT on its demonstration, rollouts out of the loss.
    assert trainer._solved == [1, 0] and trainer._gated_sft == [False, True]
    assert batch["demo_mask"].any(1).tolist() == [i == G for i in range(2 * G)]
    assert batch["completion_mask"][G:].sum() == 0 and batch["completion_mask"][:G].sum() > 0
    # Dr. GRPO advantages of group 0: rewards [0, 1, 0, 0] - mean 0.25.
    assert batch["advantages"][:G].tolist() == pytest.approx([-0.25, 0.75, -0.25, -0.25])

    loss = trainer._compute_loss(trainer.model, batch)
    # RL term by hand: old log-probs = current ones (ratio 1), so each token's loss is -A; the sum over
    # group 0's completion tokens over B * max_completion_length.
    n_tokens = batch["completion_mask"][:G].sum(1).float()
    rl = -(batch["advantages"][:G] * n_tokens).sum() / (2 * G * MAX_LEN)
    # SFT term by hand: plain forward pass over prompt + demonstration of row G (first slot of group 1).
    prompt = batch["prompt_ids"][G][batch["prompt_mask"][G].bool()]
    demo = batch["demo_ids"][G][batch["demo_mask"][G].bool()]
    with torch.no_grad():
        ids = torch.cat([prompt, demo]).unsqueeze(0)
        logits = trainer.model(input_ids=ids).logits[0, len(prompt) - 1 : -1]
        nll = -torch.log_softmax(logits.float(), -1).gather(1, demo.unsqueeze(1)).mean()
    assert loss.item() == pytest.approx((rl + 0.5 * nll).item(), rel=1e-4)


def test_gate_two_sends_both_questions_to_sft(tiny_model_dir, dataset, tmp_path):
    trainer = make_hpt(tiny_model_dir, dataset, tmp_path, gate=2)
    trainer.model.train()
    batch = trainer._generate_and_score_completions([dict(dataset[i // G]) for i in range(2 * G)])
    assert trainer._gated_sft == [True, True]
    assert batch["completion_mask"].sum() == 0
    assert batch["demo_mask"].any(1).tolist() == [i % G == 0 for i in range(2 * G)]


def test_hpt_trains_changes_weights_logs_its_metrics_and_counts_sft_tokens(tiny_model_dir, dataset, tmp_path):
    from prefix_rft.cost.counters import cost_state

    trainer = make_hpt(tiny_model_dir, dataset, tmp_path, gate=0)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    assert any(not torch.equal(p.detach(), before[n]) for n, p in trainer.model.named_parameters())
    rows = [r for r in trainer.state.log_history if "hpt/sft_fraction" in r]
    assert rows and all(r["hpt/sft_fraction"] == pytest.approx(0.5) for r in rows)
    assert all(r["hpt/solved_mean"] == pytest.approx(0.5) for r in rows)
    assert any(math.isfinite(r.get("sft/demo_nll", math.nan)) for r in trainer.state.log_history)
    counters = cost_state(trainer).counters
    assert counters.trained_sft_tokens > 0 and counters.trained_on_policy_tokens > 0
