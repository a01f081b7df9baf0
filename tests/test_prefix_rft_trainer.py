"""PrefixRFTTrainer end to end on the tiny model: hybrid rollouts, masks, metrics, weights, resume."""

from __future__ import annotations

import json

import pytest
import torch
from datasets import Dataset
from fakes import digit_reward
from trl import GRPOConfig, GRPOTrainer

from prefix_rft.data.prompts import build_prompt
from prefix_rft.data.synthetic import generate_problems
from prefix_rft.prefix.schedulers import build_scheduler
from prefix_rft.trainers.prefix_rft import PrefixRFTConfig, PrefixRFTTrainer

G = 4  # rollouts per group
MAX_LEN = 24


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    rows = generate_problems(16, seed=3, min_steps=1, max_steps=3)
    return Dataset.from_list(
        [
            {"prompt": build_prompt(r["problem"]), "answer": r["answer"], "demonstration": r["solution"]}
            for r in rows
        ]
    )


def make_args(out, **overrides) -> GRPOConfig:
    kwargs = dict(
        output_dir=str(out),
        per_device_train_batch_size=8,
        num_generations=G,
        max_completion_length=MAX_LEN,
        learning_rate=1e-3,
        max_steps=2,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        loss_type="dr_grpo",
        scale_rewards="none",
        beta=0.0,
        temperature=1.0,
        gradient_checkpointing=False,
        seed=0,
        use_cpu=True,
        bf16=False,
    )
    kwargs.update(overrides)
    return GRPOConfig(**kwargs)


def make_trainer(tiny_model_dir, dataset, out, algorithm=None, scheduler=None, **arg_overrides):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    return PrefixRFTTrainer(
        model=model,
        reward_funcs=[digit_reward],
        args=make_args(out, **arg_overrides),
        train_dataset=dataset,
        processing_class=tok,
        algorithm=algorithm or PrefixRFTConfig(num_prefixed=1),
        prefix_scheduler=scheduler or build_scheduler("uniform", low=0.3, high=0.9),
    )


class Recorder:
    """Wraps a trainer's scoring step to keep what it produced."""

    def __init__(self, trainer):
        self.batches, self.inputs = [], []
        original = trainer._generate_and_score_completions

        def wrapped(inputs):
            out = original(inputs)
            self.inputs.append([dict(x) for x in inputs])
            self.batches.append({k: v.clone() if torch.is_tensor(v) else v for k, v in out.items()})
            return out

        trainer._generate_and_score_completions = wrapped


def test_hybrid_rollouts_carry_exact_demonstration_prefix(tiny_model_dir, dataset, tmp_path):
    trainer = make_trainer(tiny_model_dir, dataset, tmp_path)
    rec = Recorder(trainer)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    tok = trainer.processing_class

    assert rec.batches, "no generation happened"
    for inputs, out in zip(rec.inputs, rec.batches):
        prefix_mask, completion_ids = out["prefix_mask"], out["completion_ids"]
        lengths = prefix_mask.sum(1).tolist()
        # exactly one hybrid per group of G consecutive rows, in the last slot
        assert [int(n > 0) for n in lengths] == [int(i % G == G - 1) for i in range(len(inputs))]
        for i, row in enumerate(inputs):
            n = lengths[i]
            if n == 0:
                continue
            demo_ids = tok(text=row["demonstration"], add_special_tokens=False)["input_ids"]
            assert 1 <= n <= len(demo_ids) - 1
            assert completion_ids[i, :n].tolist() == demo_ids[:n]  # the exact demonstration tokens
            assert prefix_mask[i, :n].all() and not prefix_mask[i, n:].any()  # and only those are marked
            assert out["completion_mask"][i, :n].all()
            # the continuation budget is what is left of max_completion_length
            assert int(out["completion_mask"][i].sum()) <= MAX_LEN

    changed = [n for n, p in trainer.model.named_parameters() if not torch.equal(p.detach(), before[n])]
    assert changed, "no weight changed after two Prefix-RFT steps"

    logged = {k for row in trainer.state.log_history for k in row}
    for key in (
        "prefix/ratio_mean",
        "prefix/ratio_low",
        "prefix/num_tokens",
        "prefix/hybrid_fraction",
        "prefix/update_fraction",
        "prefix/demo_nll",
        "entropy/prefix",
        "entropy/continuation",
        "rewards/hybrid_mean",
        "rewards/on_policy_mean",
        "clip_ratio/region_mean",
        "reward",
    ):
        assert key in logged, key
    step_rows = [r for r in trainer.state.log_history if "prefix/hybrid_fraction" in r]
    assert all(r["prefix/hybrid_fraction"] == pytest.approx(1 / G) for r in step_rows)
    assert all(0.3 <= r["prefix/ratio_mean"] <= 0.9 for r in step_rows)
    # top-20% of prefix tokens are updated (ties can only add a few)
    assert all(0.0 < r["prefix/update_fraction"] <= 0.5 for r in step_rows)


def test_no_prefixes_matches_trl_dr_grpo_loss(tiny_model_dir, dataset, tmp_path):
    """With num_prefixed=0 the loss is TRL's own Dr. GRPO loss on the same batch."""
    trainer = make_trainer(tiny_model_dir, dataset, tmp_path / "a", algorithm=PrefixRFTConfig(num_prefixed=0))
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1  # set by train(); these calls happen outside it
    batch = trainer._generate_and_score_completions([dict(dataset[i // G]) for i in range(8)])
    assert not batch["prefix_mask"].any()
    ours = trainer._compute_loss(trainer.model, batch)
    trl_loss = GRPOTrainer._compute_loss(trainer, trainer.model, batch)
    assert torch.allclose(ours, trl_loss, atol=1e-7), (ours.item(), trl_loss.item())

    # and with a prefix that is updated everywhere ("all"), it is the same loss too: the update policy
    # only matters through which prefix tokens keep their advantage
    batch["prefix_mask"][3, :5] = 1
    trainer.algorithm.prefix_update = "all"
    assert torch.allclose(trainer._compute_loss(trainer.model, batch), trl_loss, atol=1e-7)
    trainer.algorithm.prefix_update = "none"
    none_loss = trainer._compute_loss(trainer.model, batch)
    if batch["advantages"][3] != 0:
        assert not torch.allclose(none_loss, trl_loss)


def test_resumed_run_continues_the_scheduler(tiny_model_dir, dataset, tmp_path):
    sched = build_scheduler("linear", high=0.95, low_start=0.95, low_end=0.05, decay_steps=4)
    full = make_trainer(tiny_model_dir, dataset, tmp_path / "full", scheduler=sched, max_steps=4)
    full.train()
    out = tmp_path / "resumed"
    first = make_trainer(
        tiny_model_dir, dataset, out, scheduler=sched, max_steps=4, save_strategy="steps", save_steps=2
    )
    first.train()
    ckpt = out / "checkpoint-2"
    state = json.loads((ckpt / "trainer_state.json").read_text())
    saved = state["stateful_callbacks"]["PrefixSchedulerState"]
    assert saved["args"]["scheduler_state"] == sched.state_dict()
    assert saved["attributes"]["last_step"] == 2

    # resume with a *different* scheduler on the command line: the checkpoint's schedule wins
    other = build_scheduler("constant", value=0.5)
    resumed = make_trainer(tiny_model_dir, dataset, out, scheduler=other, max_steps=4)
    resumed.train(resume_from_checkpoint=str(ckpt))
    assert resumed.prefix_scheduler.state_dict() == sched.state_dict()

    def by_step(trainer):
        return {r["step"]: r for r in trainer.state.log_history if "prefix/ratio_low" in r}

    full_rows, resumed_rows = by_step(full), by_step(resumed)
    assert sorted(resumed_rows) == [1, 2, 3, 4]  # steps 1-2 come from the checkpoint's history
    for step in (3, 4):
        # the bounds continue from step 2 on, and the per-step draws are the same as without the break
        assert resumed_rows[step]["prefix/ratio_low"] == pytest.approx(sched.bounds(step - 1)[0])
        assert resumed_rows[step]["prefix/ratio_mean"] == pytest.approx(full_rows[step]["prefix/ratio_mean"])


def test_hybrid_prompt_is_an_unfinished_assistant_turn(qwen_tokenizer, monkeypatch, tmp_path):
    """With a real chat template, prompt + prefix ids decode to the chat template's continuation form."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tok = qwen_tokenizer
    config = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=256,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config)
    demo = "We add the numbers: $2+3=5$. So the answer is \\boxed{5}."
    problem = "What is 2+3?"
    ds = Dataset.from_list([{"prompt": build_prompt(problem), "answer": "5", "demonstration": demo}])
    trainer = PrefixRFTTrainer(
        model=model,
        reward_funcs=[digit_reward],
        args=make_args(tmp_path, per_device_train_batch_size=2, num_generations=2, max_completion_length=32),
        train_dataset=ds,
        processing_class=tok,
        algorithm=PrefixRFTConfig(num_prefixed=1),
        prefix_scheduler=build_scheduler("constant", value=0.5),
    )
    seen = {}

    def fake_generate(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        seen["prompt_ids"] = [list(p) for p in prompt_ids]
        return [[tok.eos_token_id] for _ in prompt_ids], None

    monkeypatch.setattr(GRPOTrainer, "_generate_single_turn", fake_generate)
    trainer.model.train()
    out = trainer._generate_and_score_completions([dict(ds[0]), dict(ds[0])])

    demo_ids = tok(text=demo, add_special_tokens=False)["input_ids"]
    n = len(demo_ids) // 2  # ratio 0.5
    prefix_text = tok.decode(demo_ids[:n])
    expected = tok.apply_chat_template(
        build_prompt(problem) + [{"role": "assistant", "content": prefix_text}],
        continue_final_message=True,
        tokenize=False,
    )
    on_policy, hybrid = seen["prompt_ids"]
    assert tok.decode(hybrid) == expected
    assert expected.endswith("<|im_start|>assistant\n" + prefix_text)
    assert tok.decode(on_policy) == tok.apply_chat_template(
        build_prompt(problem), add_generation_prompt=True, tokenize=False
    )
    assert out["prefix_mask"][1].sum() == n and out["completion_ids"][1, :n].tolist() == demo_ids[:n]
    assert out["prefix_mask"][0].sum() == 0
