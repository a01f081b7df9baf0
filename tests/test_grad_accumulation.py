"""Gradient accumulation: one optimizer step over k micro-batches equals one step over the whole batch.

For every trainer (SFT, RFT, Prefix-RFT, RL with SFT loss, LUFFY, ReLIFT) the same samples are trained
once as one batch (``gradient_accumulation_steps=1``) and once split into k micro-batches, with plain SGD
(so the weight change is exactly ``-lr x gradient``; Adam's first step would hide a wrong scale) and no
gradient clipping. Rollouts are identical in both runs: generation is replaced by a deterministic function
of the prompt and the row, and TRL generates the whole step's rollouts in one call in both layouts
(``steps_per_generation = gradient_accumulation_steps``), so rewards, advantages and prefixes match.

Normalisers that must not depend on the split, and are checked here:
* Dr. GRPO's constant ``sum / (rows x max_completion_length)`` (TRL's and ``prefix_rft.losses``).
* TRL's ``grpo`` loss (mean over rows of per-row token means, divided by k): a per-sequence mean has a
  length bias, but with equal-sized micro-batches the mean over rows is the same however they are split.
* TRL SFTTrainer's token mean (transformers passes the step's token count, ``num_items_in_batch``).
* RL with SFT loss: the demonstrations' token-mean NLL over the whole step (fixed in this change; it was a
  mean of per-micro-batch means divided by k, which also diluted it by the micro-batches without a
  demonstration row).
* ReLIFT's SFT step: token mean over the whole buffer, whatever ``sft_micro_batch_size``; and it runs before
  the first micro-batch of a step (fixed in this change: it ran between micro-batches when k > 1).

Split-dependent by design (documented, not equivalent):
* Prefix-RFT's entropy-based prefix clipping keeps the top ``keep_fraction`` prefix tokens *of each
  micro-batch* (docs/method.md step 9, as the paper states); ``random`` likewise draws per micro-batch.
* TRL's ``bnpo`` loss (token mean of each micro-batch, divided by k: a mean of means); the paper recipes
  use ``dr_grpo``.
* The optional entropy bonus (``entropy_coef``, 0 in every recipe) is a per-micro-batch token mean
  divided by k, as in TRL's GRPOTrainer, so RFT and Prefix-RFT define it the same way.
"""

from __future__ import annotations

import math

import pytest
import torch
from datasets import Dataset
from fakes import digit_reward, fixed_generate
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import GRPOConfig, GRPOTrainer, SFTConfig, SFTTrainer

from prefix_rft.data.prompts import build_prompt
from prefix_rft.data.synthetic import generate_problems
from prefix_rft.prefix.schedulers import build_scheduler
from prefix_rft.trainers.prefix_rft import PrefixRFTConfig, PrefixRFTTrainer
from prefix_rft.trainers.rl_sft_loss import RLWithSFTLossConfig, RLWithSFTLossTrainer
from prefix_rft.trainers.sft import demonstrations_dataset

G = 4  # rollouts per prompt
ROWS = 8  # rollouts per optimizer step: 2 prompts x G
MAX_LEN = 96  # completion budget; the synthetic demonstrations fit, so LUFFY's full rows are whole
LR = 1.0


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    rows = generate_problems(4, seed=11, min_steps=1, max_steps=3)
    return Dataset.from_list(
        [
            {"prompt": build_prompt(r["problem"]), "answer": r["answer"], "demonstration": r["solution"]}
            for r in rows
        ]
    )


@pytest.fixture(autouse=True)
def fixed_rollouts(monkeypatch, tiny_model_dir):
    """Replace sampling by a deterministic completion per (prompt, row): different lengths and digit counts
    within a group, so rewards, advantages and token counts all vary."""
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    monkeypatch.setattr(GRPOTrainer, "_generate_single_turn", fixed_generate(tok))


def odd_answer_reward(completions, answer, **kwargs) -> list[float]:
    """digit_reward for prompts with an odd answer, 0 for the rest: those groups all fail (ReLIFT's buffer)."""
    digits = digit_reward(completions)
    return [d if int(str(a).strip()[-1]) % 2 else 0.0 for d, a in zip(digits, answer)]


def grpo_args(out, micro: int, **overrides) -> GRPOConfig:
    kwargs = dict(
        output_dir=str(out),
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=ROWS // micro,
        num_generations=G,
        max_completion_length=MAX_LEN,
        optim="sgd",
        learning_rate=LR,
        lr_scheduler_type="constant",
        max_grad_norm=0.0,  # no clipping: it would rescale both updates to the same norm
        max_steps=1,
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


def weight_change(trainer) -> dict[str, torch.Tensor]:
    """Train, and return every parameter's change."""
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    return {n: p.detach() - before[n] for n, p in trainer.model.named_parameters()}


def assert_same_update(whole: dict[str, torch.Tensor], split: dict[str, torch.Tensor]) -> None:
    assert any(d.abs().max() > 1e-4 for d in whole.values()), "the step changed no weight"
    for name, d in whole.items():
        torch.testing.assert_close(split[name], d, rtol=1e-4, atol=1e-7, msg=lambda m, n=name: f"{n}: {m}")


def assert_different_update(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert any(not torch.allclose(a[n], b[n], rtol=1e-4, atol=1e-7) for n in a)


def load(tiny_model_dir):
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir), AutoTokenizer.from_pretrained(tiny_model_dir)


# ----------------------------------------------------------------------------- SFT


def test_sft_step_is_the_same_over_micro_batches(tiny_model_dir, dataset, tmp_path):
    """TRL SFTTrainer: 4 demonstrations of different lengths as one batch, or as 4 micro-batches of 1."""
    demos = demonstrations_dataset(dataset)

    def run(micro: int):
        model, tok = load(tiny_model_dir)
        args = SFTConfig(
            output_dir=str(tmp_path / f"sft{micro}"),
            per_device_train_batch_size=micro,
            gradient_accumulation_steps=4 // micro,
            optim="sgd",
            learning_rate=LR,
            lr_scheduler_type="constant",
            max_grad_norm=0.0,
            max_steps=1,
            save_strategy="no",
            report_to="none",
            seed=0,
            use_cpu=True,
            bf16=False,
            max_length=256,
        )
        return weight_change(SFTTrainer(model=model, args=args, train_dataset=demos, processing_class=tok))

    lengths = {len(r["completion"][0]["content"]) for r in demos}
    assert len(lengths) > 1, "equal lengths would not tell a token mean from a mean of means"
    assert_same_update(run(4), run(1))


# ----------------------------------------------------------------------------- RFT (TRL's GRPOTrainer)


@pytest.mark.parametrize(("loss_type", "micro"), [("dr_grpo", 2), ("dr_grpo", 4), ("grpo", 2)])
def test_rft_step_is_the_same_over_micro_batches(tiny_model_dir, dataset, tmp_path, loss_type, micro):
    def run(m: int):
        model, tok = load(tiny_model_dir)
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=[digit_reward],
            args=grpo_args(tmp_path / f"rft{m}", m, loss_type=loss_type),
            train_dataset=dataset,
            processing_class=tok,
        )
        return weight_change(trainer)

    assert_same_update(run(ROWS), run(micro))


def test_trl_bnpo_loss_type_depends_on_the_split(tiny_model_dir, dataset, tmp_path):
    """Documented: TRL's ``bnpo`` loss is each micro-batch's token mean divided by k, a mean of means that
    weighs the tokens of short micro-batches more; the recipes use dr_grpo."""

    def run(m: int):
        model, tok = load(tiny_model_dir)
        args = grpo_args(tmp_path / f"bnpo{m}", m, loss_type="bnpo")
        trainer = GRPOTrainer(
            model=model, reward_funcs=[digit_reward], args=args, train_dataset=dataset, processing_class=tok
        )
        return weight_change(trainer)

    assert_different_update(run(ROWS), run(2))


# ----------------------------------------------------------------------------- Prefix-RFT and LUFFY


def prefix_trainer(tiny_model_dir, dataset, out, micro, algorithm, scheduler, cls=PrefixRFTTrainer, **kw):
    model, tok = load(tiny_model_dir)
    return cls(
        model=model,
        reward_funcs=[kw.pop("reward", digit_reward)],
        args=grpo_args(out, micro, **kw.pop("args", {})),
        train_dataset=dataset,
        processing_class=tok,
        # The scheduler goes only to the algorithms that draw prefix ratios, as in the pipeline.
        **algorithm.trainer_kwargs(scheduler if algorithm.uses_scheduler else None),
        **kw,
    )


@pytest.mark.parametrize("update", ["all", "none"])
def test_prefix_rft_step_is_the_same_over_micro_batches(tiny_model_dir, dataset, tmp_path, update):
    """Hybrid rollouts (one per group, prefix ratio in [0.3, 0.9]) with every / no prefix token updated."""

    def run(m: int):
        trainer = prefix_trainer(
            tiny_model_dir,
            dataset,
            tmp_path / f"p{m}",
            m,
            PrefixRFTConfig(num_prefixed=1, prefix_update=update),
            build_scheduler("uniform", low=0.3, high=0.9),
        )
        return weight_change(trainer)

    assert_same_update(run(ROWS), run(2))


def test_prefix_rft_entropy_clipping_is_per_micro_batch_by_design(
    tiny_model_dir, dataset, tmp_path, monkeypatch
):
    """Documented: the top-20% entropy threshold is taken over the prefix tokens of each micro-batch (the
    paper's rule), so the kept tokens, and the update, depend on the split."""
    import prefix_rft.trainers.prefix_rft as module

    calls = []
    original = module.prefix_update_mask

    def recording(prefix_mask, loss_mask, entropies, mode, keep_fraction=0.2, threshold=None, **kw):
        keep = original(prefix_mask, loss_mask, entropies, mode, keep_fraction, threshold, **kw)
        calls.append((int((prefix_mask.bool() & loss_mask.bool()).sum()), int(keep.sum())))
        return keep

    monkeypatch.setattr(module, "prefix_update_mask", recording)

    def run(m: int):
        calls.clear()
        trainer = prefix_trainer(
            tiny_model_dir,
            dataset,
            tmp_path / f"e{m}",
            m,
            PrefixRFTConfig(num_prefixed=1, prefix_update="entropy_top", keep_fraction=0.2),
            build_scheduler("uniform", low=0.3, high=0.9),
        )
        return weight_change(trainer), list(calls)

    whole, whole_calls = run(ROWS)
    split, split_calls = run(2)
    # each micro-batch keeps ceil(20%) of its own prefix tokens (random-model entropies have no ties)
    for n_prefix, n_kept in whole_calls + split_calls:
        assert n_kept == (math.ceil(0.2 * n_prefix - 1e-9) if n_prefix else 0)
    assert_different_update(whole, split)


def test_luffy_step_is_the_same_over_micro_batches(tiny_model_dir, dataset, tmp_path):
    """One full demonstration per group, off-policy tokens with the shaped loss f(p) = p / (p + 0.1)."""
    luffy = PrefixRFTConfig(
        num_prefixed=1,
        allow_full_prefix=True,
        prefix_update="all",
        off_policy_loss="shaped",
        shaping_gamma=0.1,
    )

    def run(m: int):
        trainer = prefix_trainer(
            tiny_model_dir, dataset, tmp_path / f"l{m}", m, luffy, build_scheduler("constant", value=1.0)
        )
        return weight_change(trainer)

    assert_same_update(run(ROWS), run(2))


# ----------------------------------------------------------------------------- RL with SFT loss


def test_rl_with_sft_loss_step_is_the_same_over_micro_batches(tiny_model_dir, dataset, tmp_path):
    """The demonstrations sit on the first row of each group, so with micro-batches of 2 rows half of them
    hold none: the NLL must still be the token mean over the step's demonstrations."""

    def run(m: int, coef: float = 0.5):
        trainer = prefix_trainer(
            tiny_model_dir,
            dataset,
            tmp_path / f"s{m}-{coef}",
            m,
            RLWithSFTLossConfig(sft_coef=coef, sft_micro_batch_size=1),
            build_scheduler("constant", value=0.5),
            cls=RLWithSFTLossTrainer,
        )
        return weight_change(trainer)

    whole = run(ROWS)
    assert_different_update(whole, run(ROWS, coef=0.0))  # the SFT term is part of the update
    assert_same_update(whole, run(2))
    assert_same_update(whole, run(4))


# ----------------------------------------------------------------------------- ReLIFT


def test_relift_steps_are_the_same_over_micro_batches(tiny_model_dir, dataset, tmp_path):
    """Two optimizer steps: the first fills the buffer with prompts whose group all failed, the second starts
    with the SFT step. Split RL micro-batches and SFT micro-batches give the same weights."""
    from prefix_rft.trainers.relift import ReLIFTConfig, ReLIFTTrainer

    def run(m: int, sft_micro: int):
        trainer = prefix_trainer(
            tiny_model_dir,
            dataset,
            tmp_path / f"r{m}-{sft_micro}",
            m,
            ReLIFTConfig(sft_buffer_size=1, sft_learning_rate=LR, sft_micro_batch_size=sft_micro),
            build_scheduler("constant", value=0.5),
            cls=ReLIFTTrainer,
            reward=odd_answer_reward,
            args={"max_steps": 2},
        )
        params = [p for p in trainer.model.parameters() if p.requires_grad]
        trainer._sft_optimizer = torch.optim.SGD(params, lr=LR)  # see the module docstring: not Adam
        change = weight_change(trainer)
        assert trainer.buffer.num_sft_steps >= 1, "no SFT step ran: the test would not cover it"
        return change

    answers = [int(str(a).strip()[-1]) % 2 for a in dataset["answer"]]
    assert 0 < sum(answers) < len(answers), "need prompts that fail and prompts that do not"
    whole = run(ROWS, sft_micro=4)
    assert_same_update(whole, run(ROWS, sft_micro=1))
    assert_same_update(whole, run(2, sft_micro=1))
