"""The baselines' distinguishing pieces: LUFFY's off-policy rollouts and loss, the weighted SFT term of
RL-with-SFT-loss, ReLIFT's buffer (selection, trigger, SFT step, checkpoint), and SFT's dataset."""

from __future__ import annotations

import json
import math

import pytest
import torch
from datasets import Dataset
from test_prefix_rft_trainer import G, Recorder, digit_reward, make_args, make_trainer

from prefix_rft.losses import prefix_rft_policy_loss, sft_nll
from prefix_rft.prefix.schedulers import build_scheduler
from prefix_rft.trainers.prefix_rft import LUFFYConfig
from prefix_rft.trainers.relift_buffer import SFTBuffer, failed_groups
from prefix_rft.trainers.sft import demonstrations_dataset

# ----------------------------------------------------------------------------- pure pieces


def test_failed_groups_selects_groups_with_no_positive_reward():
    rewards = [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, float("nan"), 0, 0.5, 1, 1, 1]
    assert failed_groups(rewards, 4) == [0, 2]
    with pytest.raises(ValueError, match="groups of 4"):
        failed_groups([0, 0, 0], 4)


def test_sft_buffer_trigger_newest_and_state_round_trip():
    buf = SFTBuffer(3)
    buf.add([{"prompt_ids": [1], "demo_ids": [10]}, {"prompt_ids": [2], "demo_ids": [20]}])
    assert not buf.ready()
    with pytest.raises(RuntimeError, match="2 of 3"):
        buf.take()
    buf.add([{"prompt_ids": [3], "demo_ids": [30]}, {"prompt_ids": [4], "demo_ids": [40]}])
    assert buf.ready() and len(buf) == 4
    state = json.loads(json.dumps(buf.state_dict()))  # plain JSON
    taken = buf.take()
    assert [e["prompt_ids"] for e in taken] == [[2], [3], [4]]  # the newest three, oldest first
    assert len(buf) == 0 and buf.num_sft_steps == 1 and buf.num_added == 4
    restored = SFTBuffer(3)
    restored.load_state_dict(state)
    assert len(restored) == 4 and restored.num_sft_steps == 0 and restored.ready()


def test_removing_on_policy_clipping_keeps_the_gradient_of_out_of_range_ratios():
    # ratio = e^1 ~ 2.72 > 1.2 with A > 0: the clipped surrogate has zero gradient, the unclipped one not.
    logps = torch.tensor([[0.0]], requires_grad=True)
    old = torch.tensor([[-1.0]])
    args = (old, torch.tensor([1.0]), torch.ones(1, 1), torch.zeros(1, 1), torch.zeros(1, 1))
    clipped, _ = prefix_rft_policy_loss(logps, *args, max_completion_length=1)
    (g_clipped,) = torch.autograd.grad(clipped, logps)
    unclipped, _ = prefix_rft_policy_loss(
        logps, *args, epsilon_low=math.inf, epsilon_high=math.inf, max_completion_length=1
    )
    (g_unclipped,) = torch.autograd.grad(unclipped, logps)
    assert clipped.item() == pytest.approx(-1.2)
    assert g_clipped.item() == 0.0
    assert unclipped.item() == pytest.approx(-math.e)
    assert g_unclipped.item() == pytest.approx(-math.e)  # d(-r A)/dlogp = -r A


def test_sft_dataset_is_prompt_completion_one_row_per_demonstration():
    ds = Dataset.from_list(
        [
            {"prompt": [{"role": "user", "content": "q1"}], "demonstration": ["a", "b"]},
            {"prompt": [{"role": "user", "content": "q2"}], "demonstration": ["c", ""]},
        ]
    )
    out = demonstrations_dataset(ds)
    assert [r["completion"][0]["content"] for r in out] == ["a", "b", "c"]
    assert out[2]["prompt"] == [{"role": "user", "content": "q2"}]
    assert out[0]["completion"][0]["role"] == "assistant"
    with pytest.raises(ValueError, match="no 'demonstration' column"):
        demonstrations_dataset(ds.remove_columns("demonstration"))


# ----------------------------------------------------------------------------- trainers on the tiny model


LUFFY = LUFFYConfig()


def make_luffy(tiny_model_dir, dataset, out):
    """PrefixRFTTrainer configured as LUFFY: ratio 1, all prefix tokens, shaped off-policy loss."""
    return make_trainer(
        tiny_model_dir,
        dataset,
        out,
        algorithm=LUFFY,
        scheduler=build_scheduler("constant", value=1.0),
        max_completion_length=96,  # the synthetic demonstrations fit
    )


def test_luffy_rollout_is_the_whole_demonstration_and_its_loss_is_shaped(tiny_model_dir, dataset, tmp_path):
    trainer = make_luffy(tiny_model_dir, dataset, tmp_path)
    rec = Recorder(trainer)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    tok = trainer.processing_class
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    for inputs, out in zip(rec.inputs, rec.batches):
        off = out["off_policy_mask"]
        for i, row in enumerate(inputs):
            if i % G != G - 1:
                assert not off[i].any() and not out["prefix_mask"][i].any()
                continue
            demo_ids = tok(text=row["demonstration"], add_special_tokens=False)["input_ids"]
            n = len(demo_ids)
            # off-policy rollout = exactly the demonstration + end-of-turn; nothing generated
            assert out["completion_ids"][i, : n + 1].tolist() == demo_ids + [eos]
            assert int(out["completion_mask"][i].sum()) == n + 1
            assert off[i, : n + 1].all() and not off[i, n + 1 :].any()
            assert out["prefix_mask"][i, :n].all() and not out["prefix_mask"][i, n:].any()
    logged = {k for row in trainer.state.log_history for k in row}
    assert {"off_policy/shaping_weight_mean", "off_policy/demo_nll", "prefix/full_demo_fraction"} <= logged
    rows = [r for r in trainer.state.log_history if "prefix/full_demo_fraction" in r]
    assert all(r["prefix/full_demo_fraction"] == pytest.approx(1 / G) for r in rows)
    assert all(
        0 < r["off_policy/shaping_weight_mean"] < 1 for r in rows if "off_policy/shaping_weight_mean" in r
    )
    assert any(not torch.equal(p.detach(), before[n]) for n, p in trainer.model.named_parameters())


def test_luffy_loss_on_a_real_batch_matches_the_formula(tiny_model_dir, dataset, tmp_path):
    """Off-policy rows: -f(p) A summed / (B * max_len); on-policy rows: the PPO surrogate (ratio 1 here)."""
    trainer = make_luffy(tiny_model_dir, dataset, tmp_path)
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1
    batch = trainer._generate_and_score_completions([dict(dataset[i // G]) for i in range(8)])
    batch["advantages"] = torch.linspace(-1.0, 1.0, 8)  # non-zero everywhere, known values
    loss = trainer._compute_loss(trainer.model, batch)

    ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], 1)
    mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], 1)
    with torch.no_grad():
        logps, _, _ = trainer._get_per_token_logps_and_entropies(
            trainer.model, ids, mask, batch["completion_ids"].size(1)
        )
    p = logps.exp()
    adv = batch["advantages"].unsqueeze(1).expand_as(p)
    per_token = torch.where(
        batch["off_policy_mask"].bool(), -(p / (p + 0.1)) * adv, -adv
    )  # ratio 1 on-policy
    expected = (per_token * batch["completion_mask"]).sum() / (8 * 96)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_rl_sft_loss_adds_exactly_the_weighted_demonstration_nll(tiny_model_dir, dataset, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from prefix_rft.trainers.rl_sft_loss import RLWithSFTLossConfig, RLWithSFTLossTrainer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    trainer = RLWithSFTLossTrainer(
        model=model,
        reward_funcs=[digit_reward],
        args=make_args(tmp_path, max_completion_length=96),
        train_dataset=dataset,
        processing_class=tok,
        algorithm=RLWithSFTLossConfig(sft_coef=0.5),
    )
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1
    rows = [dict(dataset[i // G]) for i in range(8)]
    batch = trainer._generate_and_score_completions(rows)
    # one demonstration per prompt (first slot of each group), closed with end-of-turn
    has_demo = batch["demo_mask"].any(1).tolist()
    assert has_demo == [i % G == 0 for i in range(8)]
    demo0 = tok(text=rows[0]["demonstration"], add_special_tokens=False)["input_ids"]
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    assert batch["demo_ids"][0, : len(demo0) + 1].tolist() == demo0 + [eos]

    with_sft = trainer._compute_loss(trainer.model, batch)
    trainer.algorithm.sft_coef = 0.0
    without = trainer._compute_loss(trainer.model, batch)
    # the NLL computed independently: plain forward pass over prompt + demonstration
    nlls, counts = 0.0, 0
    with torch.no_grad():
        for i in (0, 4):
            prompt = batch["prompt_ids"][i][batch["prompt_mask"][i].bool()]
            demo = batch["demo_ids"][i][batch["demo_mask"][i].bool()]
            ids = torch.cat([prompt, demo]).unsqueeze(0)
            logits = trainer.model(input_ids=ids).logits[0, len(prompt) - 1 : -1]
            lp = torch.log_softmax(logits.float(), -1).gather(1, demo.unsqueeze(1)).squeeze(1)
            nlls += -lp.sum().item()
            counts += len(demo)
    assert (with_sft - without).item() == pytest.approx(0.5 * nlls / counts, rel=1e-4)
    assert sft_nll(torch.tensor([[-1.0, -3.0]]), torch.ones(1, 2)).item() == pytest.approx(2.0)


def zero_reward(completions, **kwargs) -> list[float]:
    return [0.0] * len(completions)


def make_relift(tiny_model_dir, dataset, out, **arg_overrides):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from prefix_rft.trainers.relift import ReLIFTConfig, ReLIFTTrainer

    return ReLIFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        reward_funcs=[zero_reward],  # every group fails, so every prompt enters the buffer
        args=make_args(out, **arg_overrides),
        train_dataset=dataset,
        processing_class=AutoTokenizer.from_pretrained(tiny_model_dir),
        algorithm=ReLIFTConfig(sft_buffer_size=3, sft_learning_rate=1e-3, sft_micro_batch_size=2),
    )


def test_relift_buffers_failed_prompts_runs_sft_steps_and_checkpoints_the_buffer(
    tiny_model_dir, dataset, tmp_path
):
    # 8 rows = 2 prompts per step: buffer 2, 4 -> SFT step at step 3 (takes 3, drops 1), 2, 4 -> step 5.
    trainer = make_relift(
        tiny_model_dir, dataset, tmp_path / "run", max_steps=5, save_strategy="steps", save_steps=2
    )
    sft_calls = []
    original = trainer._sft_step

    def spy(model):
        weights = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
        grads = {n: None if p.grad is None else p.grad.clone() for n, p in trainer.model.named_parameters()}
        original(model)
        changed = any(not torch.equal(p.detach(), weights[n]) for n, p in trainer.model.named_parameters())
        grads_back = all(
            (g is None and p.grad is None) or (g is not None and torch.equal(g, p.grad))
            for (n, p), g in zip(trainer.model.named_parameters(), grads.values())
        )
        sft_calls.append((trainer.state.global_step, changed, grads_back))

    trainer._sft_step = spy
    trainer.train()
    assert [c[0] for c in sft_calls] == [2, 4]  # global_step before the step that runs SFT: steps 3 and 5
    assert all(changed and grads_back for _, changed, grads_back in sft_calls)
    assert trainer.buffer.num_sft_steps == 2 and trainer.buffer.num_added == 10
    logged = [r for r in trainer.state.log_history if "relift/sft_loss" in r]
    assert len(logged) == 2 and all(r["relift/sft_loss"] > 0 for r in logged)
    assert any("relift/buffer_size" in r for r in trainer.state.log_history)

    # the checkpoint after step 4 holds the buffer (4 entries collected since the SFT step) and the optimizer
    ckpt = tmp_path / "run" / "checkpoint-4"
    state = json.loads((ckpt / "relift_state.json").read_text())
    assert len(state["entries"]) == 4 and state["num_sft_steps"] == 1 and state["num_added"] == 8
    assert (ckpt / "relift_sft_optimizer.pt").is_file()
    # resuming from checkpoint-4: step 5 finds the restored buffer full and runs the second SFT step with
    # the restored SFT optimizer (AdamW's step count continues from 1 to 2)
    resumed = make_relift(tiny_model_dir, dataset, tmp_path / "run", max_steps=5)
    resumed.train(resume_from_checkpoint=str(ckpt))
    assert resumed.buffer.num_sft_steps == 2 and resumed.buffer.num_added == 10
    steps = {int(s["step"]) for s in resumed._sft_optimizer.state_dict()["state"].values()}
    assert steps == {2}


def test_luffy_needs_full_prefixes_to_be_configured():
    from prefix_rft.config.compose import compose_config
    from prefix_rft.config.validate import ConfigError, validate_train_config

    cfg = compose_config(["algorithm=luffy", "algorithm.allow_full_prefix=false"])
    with pytest.raises(ConfigError, match="algorithm.allow_full_prefix"):
        validate_train_config(cfg)
    cfg = compose_config(["algorithm=sft", "sft_trainer.num_generations=4"])
    with pytest.raises(ConfigError, match="sft_trainer.num_generations"):
        validate_train_config(cfg)
