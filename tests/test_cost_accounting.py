"""Cost accounting (prefix_rft/cost/): exact counts on hand-made tiny runs of every trainer, the FLOPs formula,
and counts that survive gradient accumulation and a resume from a checkpoint.

Sampling is replaced by a deterministic completion per (prompt, row), as in test_grad_accumulation.py, so
each run's batches are known and the expected counts are computed from them independently of the counters:
from the tokenizer (demonstration lengths), from the batches the trainer produced, and from TRL's own
logged metrics.
"""

from __future__ import annotations

import json

import pytest
import torch
from datasets import Dataset
from fakes import digit_reward, fixed_generate
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import GRPOConfig, GRPOTrainer, SFTConfig

from prefix_rft.cost.counters import CostCounters, CostState, cost_state
from prefix_rft.cost.estimate import cost_block, flops, stage_cost
from prefix_rft.cost.trainers import CostAccountingSFTTrainer, num_parameters, with_cost_accounting
from prefix_rft.data.prompts import build_prompt
from prefix_rft.data.synthetic import generate_problems
from prefix_rft.prefix.schedulers import build_scheduler
from prefix_rft.trainers.prefix_rft import LUFFYConfig, PrefixRFTConfig, PrefixRFTTrainer
from prefix_rft.trainers.relift import ReLIFTConfig, ReLIFTTrainer
from prefix_rft.trainers.rl_sft_loss import RLWithSFTLossConfig, RLWithSFTLossTrainer
from prefix_rft.trainers.sft import demonstrations_dataset

G = 4  # rollouts per prompt
ROWS = 8  # rollouts per optimizer step: 2 prompts x G
PROMPTS = ROWS // G
STEPS = 2
MAX_LEN = 96  # the synthetic demonstrations fit, so LUFFY's rows are whole demonstrations


# ----------------------------------------------------------------------------- pure pieces


def test_flops_formula_on_hand_made_counts():
    c = CostCounters(tokens_generated=100, generation_context_tokens=50, forward_backward_tokens=400)
    c.add(forward_only_tokens=30)
    assert flops(c, 1000) == {
        "generation": 2 * 1000 * 150,
        "training": 6 * 1000 * 400,
        "forward_only": 2 * 1000 * 30,
        "total": 2 * 1000 * 150 + 6 * 1000 * 400 + 2 * 1000 * 30,
    }
    with pytest.raises(KeyError, match="train_seconds"):
        c.add(train_seconds=1)  # time is the callback's, not a count
    assert CostCounters.from_dict(json.loads(json.dumps(c.as_dict()))) == c


def test_cost_block_sums_stages_and_adds_gpu_hours_on_gpus_only():
    sft = stage_cost(
        "sft", CostCounters(trained_sft_tokens=70, forward_backward_tokens=90, train_seconds=10.0), 5, 2
    )
    rl = stage_cost(
        "rl",
        CostCounters(rollouts=8, tokens_generated=40, trained_on_policy_tokens=40, train_seconds=26.0),
        5,
        2,
    )
    block = cost_block([sft, rl], overhead_seconds=4.0, num_gpus=2)
    total = block["total"]
    assert total["rollouts"] == 8 and total["tokens_generated"] == 40
    assert total["tokens_trained"] == {
        "on_policy": 40,
        "prefix": 0,
        "full_demonstration": 0,
        "sft": 70,
        "total": 110,
    }
    assert total["flops"]["total"] == sft["flops"]["total"] + rl["flops"]["total"] == 6 * 5 * 90 + 2 * 5 * 40
    assert total["wall_seconds"] == {"train": 36.0, "total": 40.0}
    assert total["gpu_hours"] == {"train": 36.0 * 2 / 3600, "total": 40.0 * 2 / 3600}
    assert sft["gpu_hours"]["train"] == 10.0 * 2 / 3600
    cpu = cost_block([sft], overhead_seconds=1.0, num_gpus=0)["total"]
    assert cpu["gpu_hours"] == {"train": None, "total": None} and cpu["num_gpus"] == 0


def test_num_parameters_counts_tied_weights_once(tiny_model_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert num_parameters(model) == model.num_parameters()
    assert num_parameters(model) == sum(p.numel() for p in model.parameters())  # unique by construction


# ----------------------------------------------------------------------------- RL trainers on the tiny model


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    rows = generate_problems(8, seed=21, min_steps=1, max_steps=3)
    return Dataset.from_list(
        [
            {"prompt": build_prompt(r["problem"]), "answer": r["answer"], "demonstration": r["solution"]}
            for r in rows
        ]
    )


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(autouse=True)
def fixed_rollouts(monkeypatch, tok):
    """A deterministic completion of varying length per (prompt, row) instead of sampling."""
    monkeypatch.setattr(GRPOTrainer, "_generate_single_turn", fixed_generate(tok))


def fail_all_reward(completions, **kwargs) -> list[float]:
    """Every group fails: ReLIFT buffers every prompt."""
    return [0.0] * len(completions)


def grpo_args(out, micro: int = ROWS, **overrides) -> GRPOConfig:
    kwargs = dict(
        output_dir=str(out),
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=ROWS // micro,
        num_generations=G,
        max_completion_length=MAX_LEN,
        learning_rate=1e-3,
        max_steps=STEPS,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        loss_type="dr_grpo",
        scale_rewards="none",
        beta=0.0,
        gradient_checkpointing=False,
        seed=0,
        use_cpu=True,
        bf16=False,
    )
    kwargs.update(overrides)
    return GRPOConfig(**kwargs)


class Recorder:
    """Keeps the inputs and the batch of every training generation."""

    def __init__(self, trainer):
        self.inputs: list[list[dict]] = []
        self.batches: list[dict] = []
        original = trainer._generate_and_score_completions

        def wrapped(inputs):
            out = original(inputs)
            self.inputs.append([dict(x) for x in inputs])
            self.batches.append({k: v.clone() if torch.is_tensor(v) else v for k, v in out.items()})
            return out

        trainer._generate_and_score_completions = wrapped

    def total(self, key: str, rows=None) -> int:
        """Sum of a mask over every batch (optionally only the rows where ``rows(batch)`` is True)."""
        n = 0
        for b in self.batches:
            m = b[key].bool()
            if rows is not None:
                m = m & rows(b).unsqueeze(1)
            n += int(m.sum())
        return n


def rl_trainer(
    cls, tiny_model_dir, dataset, out, reward=digit_reward, micro=ROWS, algorithm=None, scheduler=None, **args
):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    kwargs = {}
    if cls is not GRPOTrainer:
        # The scheduler goes only to the algorithms that draw prefix ratios, as in the pipeline.
        scheduler = scheduler or build_scheduler("uniform", low=0.3, high=0.9)
        kwargs = algorithm.trainer_kwargs(scheduler if algorithm.uses_scheduler else None)
    return with_cost_accounting(cls)(
        model=model,
        reward_funcs=[reward],
        args=grpo_args(out, micro, **args),
        train_dataset=dataset,
        processing_class=AutoTokenizer.from_pretrained(tiny_model_dir),
        **kwargs,
    )


def counters(trainer) -> CostCounters:
    return cost_state(trainer).counters


def logged(trainer, key: str) -> list[float]:
    return [row[key] for row in trainer.state.log_history if key in row]


def demo_tokens(tok, demo: str) -> int:
    """A demonstration as a training target: its tokens and the end-of-turn token."""
    return len(tok(text=demo, add_special_tokens=False)["input_ids"]) + 1


def test_rft_counts_every_rollout_and_token_exactly(tiny_model_dir, dataset, tmp_path):
    trainer = rl_trainer(GRPOTrainer, tiny_model_dir, dataset, tmp_path)
    rec = Recorder(trainer)
    trainer.train()
    c = counters(trainer)
    assert c.rollouts == STEPS * PROMPTS * G == 16
    assert c.hybrid_rollouts == c.demonstration_rows == 0
    completion_tokens = rec.total("completion_mask")
    prompt_tokens = rec.total("prompt_mask")
    assert c.tokens_generated == completion_tokens == c.trained_on_policy_tokens
    # TRL's own count (logged num_tokens) is every prompt and completion token it generated for.
    assert c.generation_context_tokens == prompt_tokens
    assert (
        c.forward_backward_tokens == prompt_tokens + completion_tokens == trainer.state.num_input_tokens_seen
    )
    assert sum(logged(trainer, "completions/mean_length")) * ROWS == pytest.approx(completion_tokens)
    assert c.trained_prefix_tokens == c.trained_full_demonstration_tokens == c.trained_sft_tokens == 0
    assert c.forward_only_tokens == 0  # generation and optimizer steps aligned: no old-policy pass
    assert c.train_seconds > 0


def test_counts_do_not_depend_on_gradient_accumulation(tiny_model_dir, dataset, tmp_path):
    whole = rl_trainer(GRPOTrainer, tiny_model_dir, dataset, tmp_path / "whole")
    whole.train()
    split = rl_trainer(GRPOTrainer, tiny_model_dir, dataset, tmp_path / "split", micro=2)
    split.train()
    a, b = counters(whole).as_dict(), counters(split).as_dict()
    a.pop("train_seconds"), b.pop("train_seconds")
    assert a == b and a["rollouts"] == 16


def test_each_optimisation_pass_over_a_batch_counts_its_tokens(tiny_model_dir, dataset, tmp_path):
    """num_iterations=2: every rollout is generated once and trained twice; TRL then also computes the
    old-policy log-probs in one extra forward pass over the batch."""
    trainer = rl_trainer(GRPOTrainer, tiny_model_dir, dataset, tmp_path, num_iterations=2, max_steps=4)
    rec = Recorder(trainer)
    trainer.train()
    c = counters(trainer)
    assert len(rec.batches) == 2 and c.rollouts == 16
    batch_tokens = rec.total("prompt_mask") + rec.total("completion_mask")
    assert c.trained_on_policy_tokens == 2 * c.tokens_generated
    assert c.forward_backward_tokens == 2 * batch_tokens
    assert c.forward_only_tokens == batch_tokens


def is_demo(batch):
    return batch["demonstration_row"].bool()


def test_prefix_rft_counts_prefix_tokens_and_hybrids(tiny_model_dir, dataset, tmp_path):
    trainer = rl_trainer(
        PrefixRFTTrainer, tiny_model_dir, dataset, tmp_path, algorithm=PrefixRFTConfig(num_prefixed=1)
    )
    rec = Recorder(trainer)
    trainer.train()
    c = counters(trainer)
    assert c.rollouts == 16 and c.hybrid_rollouts == STEPS * PROMPTS == 4 and c.demonstration_rows == 0
    prefix = rec.total("prefix_mask")
    completion = rec.total("completion_mask")
    assert prefix > 0 and c.trained_prefix_tokens == prefix
    # The prefix lengths the trainer logged: mean prefix length x hybrids, step by step.
    hybrids = [f * ROWS for f in logged(trainer, "prefix/hybrid_fraction")]
    means = logged(trainer, "prefix/num_tokens")
    assert sum(n * m for n, m in zip(hybrids, means)) == pytest.approx(prefix)
    assert c.tokens_generated == completion - prefix == c.trained_on_policy_tokens
    prompts = rec.total("prompt_mask")
    assert c.generation_context_tokens == prompts + prefix  # a hybrid's engine reads its prefix


def test_luffy_counts_whole_demonstrations_as_trained_not_generated(tiny_model_dir, dataset, tok, tmp_path):
    trainer = rl_trainer(
        PrefixRFTTrainer,
        tiny_model_dir,
        dataset,
        tmp_path,
        algorithm=LUFFYConfig(),
        scheduler=build_scheduler("constant", value=1.0),
    )
    rec = Recorder(trainer)
    trainer.train()
    c = counters(trainer)
    assert c.demonstration_rows == STEPS * PROMPTS == 4
    assert c.rollouts == STEPS * PROMPTS * (G - 1) == 12 and c.hybrid_rollouts == 0
    expected = sum(
        demo_tokens(tok, row["demonstration"])
        for inputs, b in zip(rec.inputs, rec.batches)
        for row, demo in zip(inputs, is_demo(b).tolist())
        if demo
    )
    assert c.trained_full_demonstration_tokens == expected == rec.total("off_policy_mask")
    assert c.trained_prefix_tokens == 0
    sampled = rec.total("completion_mask", rows=lambda b: ~is_demo(b))
    assert c.tokens_generated == sampled == c.trained_on_policy_tokens


def test_rl_with_sft_loss_counts_its_demonstration_term(tiny_model_dir, dataset, tok, tmp_path):
    trainer = rl_trainer(
        RLWithSFTLossTrainer,
        tiny_model_dir,
        dataset,
        tmp_path,
        micro=4,
        algorithm=RLWithSFTLossConfig(sft_coef=0.5),
    )
    rec = Recorder(trainer)
    trainer.train()
    c = counters(trainer)
    assert c.rollouts == 16
    # One demonstration per prompt (the first slot of each group), with its prompt, through forward + backward.
    demos = [inputs[g * G] for inputs in rec.inputs for g in range(PROMPTS)]
    assert c.trained_sft_tokens == sum(demo_tokens(tok, row["demonstration"]) for row in demos)
    prompt_of_demo_rows = sum(int(b["prompt_mask"][b["demo_mask"].any(dim=1)].sum()) for b in rec.batches)
    completion = rec.total("completion_mask")
    assert (
        c.forward_backward_tokens
        == rec.total("prompt_mask") + completion + c.trained_sft_tokens + prompt_of_demo_rows
    )


def test_relift_counts_its_sft_steps(tiny_model_dir, dataset, tok, tmp_path):
    trainer = rl_trainer(
        ReLIFTTrainer,
        tiny_model_dir,
        dataset,
        tmp_path,
        reward=fail_all_reward,
        algorithm=ReLIFTConfig(sft_buffer_size=PROMPTS),
        max_steps=3,
    )
    rec = Recorder(trainer)
    trainer.train()
    c = counters(trainer)
    sft_tokens = logged(trainer, "relift/sft_tokens")
    assert len(sft_tokens) == 2  # the buffer fills after steps 1 and 2; the SFT steps open steps 2 and 3
    # The buffered prompts are those of the first two generations (every group failed).
    buffered = [inputs[g * G] for inputs in rec.inputs[:2] for g in range(PROMPTS)]
    assert (
        c.trained_sft_tokens == sum(sft_tokens) == sum(demo_tokens(tok, r["demonstration"]) for r in buffered)
    )
    assert c.rollouts == 3 * ROWS


def test_counts_survive_a_resume_from_a_checkpoint(tiny_model_dir, dataset, tmp_path):
    out = tmp_path / "run"
    first = rl_trainer(
        PrefixRFTTrainer,
        tiny_model_dir,
        dataset,
        out,
        algorithm=PrefixRFTConfig(),
        save_strategy="steps",
        save_steps=1,
    )
    first.train()
    full = counters(first)
    saved = json.loads((out / "checkpoint-1" / "trainer_state.json").read_text())
    at_one = CostCounters.from_dict(saved["stateful_callbacks"]["CostState"]["attributes"]["counters"])
    assert at_one.rollouts == 8 and 0 < at_one.tokens_generated < full.tokens_generated

    resumed = rl_trainer(
        PrefixRFTTrainer,
        tiny_model_dir,
        dataset,
        out,
        algorithm=PrefixRFTConfig(),
        save_strategy="steps",
        save_steps=1,
    )
    rec = Recorder(resumed)
    resumed.train(resume_from_checkpoint=str(out / "checkpoint-1"))
    c = counters(resumed)
    assert len(rec.batches) == 1  # only step 2 ran
    prefix, completion = rec.total("prefix_mask"), rec.total("completion_mask")
    assert c.rollouts == 16
    assert c.trained_prefix_tokens == at_one.trained_prefix_tokens + prefix
    assert c.tokens_generated == at_one.tokens_generated + completion - prefix
    assert c.train_seconds > at_one.train_seconds


def test_a_trainer_without_the_mixin_is_given_it_once():
    cls = with_cost_accounting(PrefixRFTTrainer)
    assert issubclass(cls, PrefixRFTTrainer) and cls.__name__ == "PrefixRFTTrainer"
    assert with_cost_accounting(cls) is cls and with_cost_accounting(PrefixRFTTrainer) is cls


# ----------------------------------------------------------------------------- SFT


@pytest.mark.parametrize("packing", [False, True])
def test_sft_counts_completion_tokens(tiny_model_dir, dataset, tok, tmp_path, packing):
    demos = demonstrations_dataset(dataset)
    trainer = CostAccountingSFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        args=SFTConfig(
            output_dir=str(tmp_path),
            per_device_train_batch_size=2,
            gradient_accumulation_steps=2,
            num_train_epochs=1,
            max_length=512,
            packing=packing,
            learning_rate=1e-3,
            save_strategy="no",
            report_to="none",
            use_cpu=True,
            bf16=False,
        ),
        train_dataset=demos,
        processing_class=tok,
    )
    trainer.train()
    c = counters(trainer)
    # Completion tokens of every demonstration row (one epoch): the chat-formatted prompt + demonstration,
    # minus the prompt with the assistant turn opened.
    expected, whole = 0, 0
    for row in demos:
        prompt = tok.apply_chat_template(row["prompt"], tokenize=True, add_generation_prompt=True)
        full = tok.apply_chat_template(row["prompt"] + row["completion"], tokenize=True)
        prompt = prompt["input_ids"] if hasattr(prompt, "keys") else prompt
        full = full["input_ids"] if hasattr(full, "keys") else full
        expected += len(full) - len(prompt)
        whole += len(full)
    assert c.trained_sft_tokens == expected
    assert c.forward_backward_tokens == whole == logged(trainer, "num_tokens")[-1]  # TRL's own count
    assert c.rollouts == c.tokens_generated == 0


def test_cost_state_restores_only_on_resume():
    state = CostState({"rollouts": 5})
    from transformers import TrainerControl, TrainerState

    fresh = TrainerState()
    fresh.stateful_callbacks = {"CostState": {"args": {}, "attributes": {"counters": {"rollouts": 99}}}}
    state.on_train_begin(None, fresh, TrainerControl())
    assert state.counters.rollouts == 5  # step 0: not a resume
    fresh.global_step = 3
    state.on_train_begin(None, fresh, TrainerControl())
    assert state.counters.rollouts == 99


# ----------------------------------------------------------------------------- prefix-rft-compare


def _training_run(folder, algorithm: str, rollouts: int, seconds: float, accuracy: float | None = None):
    counters = CostCounters(rollouts=rollouts, tokens_generated=10 * rollouts, train_seconds=seconds)
    counters.trained_on_policy_tokens = 10 * rollouts
    counters.forward_backward_tokens = 30 * rollouts
    metrics = {
        "algorithm": algorithm,
        "heldout_after": {} if accuracy is None else {"accuracy": accuracy},
        "cost": cost_block([stage_cost("rl", counters, 1000, 0)], overhead_seconds=1.0, num_gpus=0),
    }
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def test_compare_shows_cost_next_to_accuracy_and_plots_it(tmp_path):
    import csv

    pytest.importorskip("matplotlib")
    from prefix_rft.cli.compare import main
    from prefix_rft.eval.report import summarize, write_summary

    # An evaluation of a run's merged model: its cost comes from the run folder's metrics.json.
    run = _training_run(tmp_path / "runs" / "rft", "rft", rollouts=16, seconds=36.0)
    rows = [{"benchmark": "MATH-500", "id": str(i), "sample": 0, "correct": i < 6} for i in range(10)]
    meta = {"run_name": "rft", "model_path": str(run / "merged")}
    write_summary(summarize(rows, {"MATH-500": ([str(i) for i in range(10)], 1)}, meta=meta), tmp_path / "ev")
    # A training run folder compared directly: its held-out accuracy is the score.
    direct = _training_run(tmp_path / "runs" / "luffy", "luffy", rollouts=12, seconds=72.0, accuracy=0.25)
    out = tmp_path / "cmp"
    assert main([str(tmp_path / "ev"), str(direct), "--out", str(out), "--no-plot", "--x", "flops"]) == 0
    table = list(csv.reader((out / "comparison.csv").open()))
    assert table[0] == ["run", "MATH-500", "heldout", "avg"] + [
        "rollouts",
        "tokens generated",
        "tokens trained",
        "FLOPs",
        "train hours",
        "GPU-hours",
    ]
    # FLOPs = 2N x (generated + context) + 6N x forward_backward with N = 1000, context 0.
    assert table[1] == [
        "rft",
        "60.0",
        "",
        "60.0",
        "16",
        "160",
        "160",
        f"{2e3 * 160 + 6e3 * 480:.3g}",
        "0.01",
        "",
    ]
    # luffy's avg covers heldout, not the avg column's MATH-500: left out of the column (and the cost plot)
    assert table[2][:5] == ["luffy", "", "25.0", "", "12"] and table[2][-2] == "0.02"
    assert (
        "avg of luffy (25.0) covers heldout, not the avg column's MATH-500"
        in (out / "comparison.md").read_text()
    )
    png = (out / "accuracy_vs_flops.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    assert not (out / "comparison.png").exists()

    # Without a training run to read, the cost columns stay away; a run folder without accuracy is an error.
    _training_run(tmp_path / "runs" / "noacc", "rft", rollouts=1, seconds=1.0)
    assert main([str(tmp_path / "runs" / "noacc"), "--out", str(out), "--no-plot"]) == 2
