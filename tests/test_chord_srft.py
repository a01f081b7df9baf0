"""CHORD and SRFT: their weights and losses to exact values on hand-made tensors, CHORD's mu schedule, each
trainer's loss on a real batch against an independent forward pass, and short training runs."""

from __future__ import annotations

import math

import pytest
import torch
from fakes import digit_reward
from test_prefix_rft_trainer import G, make_args

from prefix_rft.cost.trainers import with_cost_accounting
from prefix_rft.errors import ConfigError
from prefix_rft.losses import prefix_rft_policy_loss, weighted_token_mean_nll
from prefix_rft.prefix.schedulers import build_scheduler
from prefix_rft.trainers.chord import ChordConfig, ChordTrainer, chord_mu, chord_phi
from prefix_rft.trainers.srft import (
    SRFTConfig,
    SRFTTrainer,
    entropy_weight,
    positive_token_weights,
    srft_sft_sum,
)

# ----------------------------------------------------------------------------- CHORD, pure pieces


def test_chord_mu_warms_up_linearly_then_decays_along_a_cosine_to_the_valley():
    # The official example's schedule: 0 -> 0.5 over 200 steps, cosine to 0.02 over the next 400.
    mu = [chord_mu(s, 200, 400, 0.5, 0.02) for s in (0, 50, 100, 200, 400, 500, 600, 5000)]
    half_cos_3_4 = 0.5 * (1 + math.cos(3 * math.pi / 4))  # 0.1464...
    expected = [0.0, 0.125, 0.25, 0.5, 0.02 + 0.48 * 0.5, 0.02 + 0.48 * half_cos_3_4, 0.02, 0.02]
    assert mu == pytest.approx(expected, abs=1e-12)
    # CHORD-mu: no warm-up, 0.9 -> 0.05 over 200 steps; CHORD-phi: constant 0.1.
    assert [chord_mu(s, 0, 200, 0.9, 0.05) for s in (0, 100, 200)] == pytest.approx([0.9, 0.475, 0.05])
    assert [chord_mu(s, 0, 0, 0.1, 0.1) for s in (0, 1, 499)] == [0.1, 0.1, 0.1]
    assert ChordConfig(mu_warmup_steps=0, mu_decay_steps=2, mu_peak=0.5, mu_valley=0.1).mu(
        1
    ) == pytest.approx(0.3)


def test_chord_phi_is_p_times_one_minus_p_without_gradient():
    logps = torch.log(torch.tensor([0.5, 0.9, 0.1, 1.0])).requires_grad_()
    phi = chord_phi(logps)
    assert phi.tolist() == pytest.approx([0.25, 0.09, 0.09, 0.0], abs=1e-6)
    assert not phi.requires_grad


def test_chord_sft_term_is_the_phi_weighted_token_mean_nll_with_phi_held_constant():
    p = torch.tensor([[0.5, 0.25], [0.8, 0.3]])
    mask = torch.tensor([[1, 1], [1, 0]])
    logps = torch.log(p).requires_grad_()
    loss = weighted_token_mean_nll(logps, mask, chord_phi(logps))
    # phi = 0.25, 0.1875, 0.16 on the three real tokens; the padded one (0.3) is out.
    expected = (0.25 * math.log(2) + 0.1875 * math.log(4) + 0.16 * -math.log(0.8)) / 3
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    (grad,) = torch.autograd.grad(loss, logps)
    # phi carries no gradient: d/dlogp_t = -phi_t / 3, 0 on padding
    assert grad.flatten().tolist() == pytest.approx([-0.25 / 3, -0.1875 / 3, -0.16 / 3, 0.0], abs=1e-7)
    assert weighted_token_mean_nll(logps, mask, None).item() == pytest.approx(
        (math.log(2) + math.log(4) - math.log(0.8)) / 3, rel=1e-6
    )


# ----------------------------------------------------------------------------- SRFT, pure pieces


def test_srft_entropy_weights_exact():
    H = torch.tensor([[0.0, math.log(2)], [1.0, 0.5], [math.log(3), 0.0]])
    assert entropy_weight(H, 0.5, -1.0).flatten().tolist() == pytest.approx(
        [0.5, 0.25, 0.5 / math.e, 0.5 / math.sqrt(math.e), 0.5 / 3, 0.5]
    )
    # positive samples only: row 0 (A > 0, on-policy); row 1 has A < 0; row 2 is the demonstration
    advantages = torch.tensor([0.5, -0.5, 1.0])
    loss_mask = torch.tensor([[1, 1], [1, 0], [1, 1]], dtype=torch.bool)
    off_policy = torch.tensor([[0, 0], [0, 0], [1, 1]], dtype=torch.bool)
    w = positive_token_weights(H.requires_grad_(), advantages, loss_mask, off_policy, coef=0.1)
    assert w.flatten().tolist() == pytest.approx([0.1, 0.2, 1.0, 1.0, 1.0, 1.0])
    assert not w.requires_grad


def test_srft_sft_sum_exact_for_both_signs_of_the_entropy_exponent():
    logps = torch.log(torch.tensor([[0.5, 0.25], [0.9, 0.9]]))
    H = torch.tensor([[math.log(3), 0.0], [2.0, 2.0]])
    mask = torch.tensor([[1, 1], [0, 0]])  # only row 0 is a demonstration
    paper = srft_sft_sum(logps, H, mask, coef=0.5, exponent=-1.0)  # w = 0.5/3, 0.5
    assert paper.item() == pytest.approx(0.5 / 3 * math.log(2) + 0.5 * math.log(4), rel=1e-6)
    code = srft_sft_sum(logps, H, mask, coef=0.5, exponent=1.0)  # w = 1.5, 0.5
    assert code.item() == pytest.approx(1.5 * math.log(2) + 0.5 * math.log(4), rel=1e-6)


def test_token_weights_scale_the_per_token_policy_loss():
    # ratio 1, Dr. GRPO over 2 rows x 2 tokens: row 0 (A = 0.5) weighted 0.1 and 0.2, row 1 (A = -0.5) one token
    zeros = torch.zeros(2, 2)
    loss, _ = prefix_rft_policy_loss(
        zeros,
        zeros,
        torch.tensor([0.5, -0.5]),
        torch.tensor([[1, 1], [1, 0]]),
        zeros,
        zeros,
        max_completion_length=2,
        token_weights=torch.tensor([[0.1, 0.2], [1.0, 1.0]]),
    )
    assert loss.item() == pytest.approx((-0.5 * 0.1 - 0.5 * 0.2 + 0.5) / 4)


def test_config_checks():
    args = make_args("unused")
    with pytest.raises(ConfigError, match="algorithm.mu_peak"):
        ChordConfig(mu_peak=1.5).check(args)
    with pytest.raises(ConfigError, match="algorithm.mu_decay_steps"):
        ChordConfig(mu_decay_steps=-1).check(args)
    with pytest.raises(ConfigError, match="allow_full_prefix"):
        SRFTConfig(allow_full_prefix=False, off_policy_loss="clipped").check(args)
    with pytest.raises(ConfigError, match="algorithm.positive_coef"):
        SRFTConfig(positive_coef=0.0).check(args)
    assert ChordConfig().needs_demonstrations() and SRFTConfig().needs_demonstrations()


# ----------------------------------------------------------------------------- trainers on the tiny model


def make(trainer_cls, algorithm, tiny_model_dir, dataset, out, scheduler_value=0.5, **arg_overrides):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return trainer_cls(
        model=AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        reward_funcs=[digit_reward],
        args=make_args(out, max_completion_length=96, **arg_overrides),  # the synthetic demonstrations fit
        train_dataset=dataset,
        processing_class=AutoTokenizer.from_pretrained(tiny_model_dir),
        # A scheduler only for the algorithms that draw prefix ratios (SRFT, as LUFFY), as the pipeline does.
        **algorithm.trainer_kwargs(
            build_scheduler("constant", value=scheduler_value) if algorithm.uses_scheduler else None
        ),
    )


def plain_logps_and_entropies(model, prompt_ids, prompt_mask, ids, mask):
    """Per-token log-probs and entropies of ``ids`` after left-padded prompts, by a plain forward pass."""
    full = torch.cat([prompt_ids, ids], 1)
    attention = torch.cat([prompt_mask, mask], 1)
    with torch.no_grad():
        logits = model(input_ids=full, attention_mask=attention).logits[:, -ids.size(1) - 1 : -1].float()
    logp_all = torch.log_softmax(logits, -1)
    logps = logp_all.gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    entropies = -(logp_all.exp() * logp_all).sum(-1)
    return logps, entropies


def test_chord_loss_on_a_real_batch_is_the_mu_mix_of_grpo_and_phi_weighted_nll(
    tiny_model_dir, dataset, tmp_path
):
    # warm-up 0, decay 10 from 0.6 to 0.1: at step 5, mu = 0.1 + 0.5 * (1 + cos(pi/2)) / 2 = 0.35
    algorithm = ChordConfig(mu_warmup_steps=0, mu_decay_steps=10, mu_peak=0.6, mu_valley=0.1)
    trainer = make(ChordTrainer, algorithm, tiny_model_dir, dataset, tmp_path)
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1
    trainer.state.global_step = 5
    batch = trainer._generate_and_score_completions([dict(dataset[i // G]) for i in range(8)])
    chord = trainer._compute_loss(trainer.model, batch).item()
    algorithm.mu_peak = algorithm.mu_valley = 0.0  # mu = 0: the GRPO loss alone
    grpo = trainer._compute_loss(trainer.model, batch).item()

    rows = [i for i in range(8) if batch["demo_mask"][i].any()]
    assert rows == [0, 4]  # one demonstration per prompt
    weighted, count = 0.0, 0
    for i in rows:
        m = batch["demo_mask"][i : i + 1]
        logps, _ = plain_logps_and_entropies(
            trainer.model,
            batch["prompt_ids"][i : i + 1],
            batch["prompt_mask"][i : i + 1],
            batch["demo_ids"][i : i + 1],
            m,
        )
        p = logps.exp()
        weighted += (p * (1 - p) * -logps * m).sum().item()
        count += int(m.sum())
    assert chord == pytest.approx(0.65 * grpo + 0.35 * weighted / count, rel=1e-4, abs=1e-7)


def test_srft_loss_on_a_real_batch_matches_the_formula(tiny_model_dir, dataset, tmp_path):
    """Policy loss: LUFFY's (shaped -f(p) A on the demonstration, -A on-policy at ratio 1) with on-policy tokens of
    positive rows weighted 0.1 exp(H); plus 0.5 exp(-H) (-log p) averaged over the demonstration tokens."""
    trainer = make(SRFTTrainer, SRFTConfig(), tiny_model_dir, dataset, tmp_path, scheduler_value=1.0)
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1
    batch = trainer._generate_and_score_completions([dict(dataset[i // G]) for i in range(8)])
    batch["advantages"] = torch.linspace(-1.0, 1.0, 8)  # both signs, known values
    loss = trainer._compute_loss(trainer.model, batch).item()

    mask = batch["completion_mask"].bool()
    off = batch["off_policy_mask"].bool()
    assert off.any(1).tolist() == [i % G == G - 1 for i in range(8)]  # the last slot is the demonstration
    logps, H = plain_logps_and_entropies(
        trainer.model,
        batch["prompt_ids"],
        batch["prompt_mask"],
        batch["completion_ids"],
        batch["completion_mask"],
    )
    p = logps.exp()
    A = batch["advantages"].unsqueeze(1).expand_as(p)
    w_rl = torch.where((A > 0) & ~off, 0.1 * H.exp(), torch.ones_like(H))
    per_token = torch.where(off, -(p / (p + 0.1)) * A, -A * w_rl)
    policy = (per_token * mask).sum() / (8 * 96)
    sft = (0.5 * torch.exp(-H) * -logps * off).sum() / off.sum()
    assert loss == pytest.approx((policy + sft).item(), rel=1e-4)


def counters(trainer):
    from prefix_rft.cost.counters import cost_state

    return cost_state(trainer).counters


def test_chord_trains_and_logs_its_schedule(tiny_model_dir, dataset, tmp_path):
    algorithm = ChordConfig(mu_warmup_steps=0, mu_decay_steps=2, mu_peak=0.5, mu_valley=0.1)
    trainer = make(with_cost_accounting(ChordTrainer), algorithm, tiny_model_dir, dataset, tmp_path)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    rows = [r for r in trainer.state.log_history if "chord/mu" in r]
    assert [r["chord/mu"] for r in rows] == pytest.approx([0.5, 0.3])  # mu(0), mu(1)
    assert all(0 < r["chord/phi_mean"] <= 0.25 and r["sft/demo_nll"] > 0 for r in rows)
    assert any(not torch.equal(p.detach(), before[n]) for n, p in trainer.model.named_parameters())
    cost = counters(trainer)
    assert cost.trained_sft_tokens > 0 and cost.trained_full_demonstration_tokens == 0


def test_srft_trains_and_logs_its_weights(tiny_model_dir, dataset, tmp_path):
    trainer = make(with_cost_accounting(SRFTTrainer), SRFTConfig(), tiny_model_dir, dataset, tmp_path, 1.0)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    logged = [r for r in trainer.state.log_history if "srft/sft_weight_mean" in r]
    assert len(logged) == 2
    for r in logged:
        # w_SFT = 0.5 exp(-H) lies in (0, 0.5]; its mean matches the demonstration tokens' entropy bound
        assert 0 < r["srft/sft_weight_mean"] <= 0.5 and r["srft/demo_nll"] > 0 and r["srft/demo_entropy"] >= 0
    keys = {k for r in trainer.state.log_history for k in r}
    assert {"srft/positive_weight_mean", "off_policy/shaping_weight_mean"} <= keys
    assert any(not torch.equal(p.detach(), before[n]) for n, p in trainer.model.named_parameters())
    cost = counters(trainer)
    # the demonstration tokens are in two losses: the RL one (whole demonstration) and the SFT term
    assert cost.trained_sft_tokens == cost.trained_full_demonstration_tokens > 0
