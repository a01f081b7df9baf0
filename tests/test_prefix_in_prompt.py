"""prefix_in_prompt: the demonstration prefix ends the prompt, only the continuation is in the loss; guide=all
prefixes every group, guide=failed (POPE) only the groups whose unguided rollouts all failed."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from fakes import digit_reward
from test_prefix_rft_trainer import MAX_LEN, G, Recorder, make_args

from prefix_rft.errors import ConfigError
from prefix_rft.prefix.sampling import prompt_prefix_length
from prefix_rft.prefix.schedulers import build_scheduler
from prefix_rft.trainers.prefix_in_prompt import (
    PrefixInPromptConfig,
    PrefixInPromptTrainer,
    guided_groups,
    prompt_with_prefix,
)

# ----------------------------------------------------------------------------- pure pieces


def test_prefix_length_clamps_by_hand():
    assert prompt_prefix_length(0.5, 10, budget=24) == 5  # floor(0.5 * 10)
    assert prompt_prefix_length(0.95, 10, budget=24) == 9  # floor(9.5)
    assert prompt_prefix_length(1.0, 10, budget=24) == 9  # one demonstration token always left to write
    assert prompt_prefix_length(0.0, 10, budget=24) == 1  # min_prefix_tokens
    assert prompt_prefix_length(0.9, 100, budget=24) == 23  # one continuation token must fit the budget
    assert prompt_prefix_length(0.5, 1, budget=24) == 0  # too short to cut: unguided
    assert prompt_with_prefix([7, 8], [1, 2, 3]) == [7, 8, 1, 2, 3]
    assert prompt_with_prefix([7, 8], None) == [7, 8]


def test_guided_groups_by_hand():
    assert guided_groups("all", 3, None, 2) == [True, True, True]
    # groups of 2: [0, 0] failed, [0, 1] not, [nan, 0] failed (no positive reward)
    assert guided_groups("failed", 3, [0, 0, 0, 1, float("nan"), 0], 2) == [True, False, True]
    with pytest.raises(ValueError, match="needs the rewards"):
        guided_groups("failed", 3, None, 2)


def test_config_rejects_completion_side_prefixes_and_unknown_modes():
    args = make_args("/tmp/unused")
    PrefixInPromptConfig().check(args)
    assert PrefixInPromptConfig().needs_demonstrations()
    # The prefix sits in the prompt: it has no completion-side prefix knob to set.
    assert "num_prefixed" not in {f.name for f in dataclasses.fields(PrefixInPromptConfig)}
    with pytest.raises(ConfigError, match="algorithm.guide"):
        PrefixInPromptConfig(guide="some").check(args)


# ----------------------------------------------------------------------------- trainer on the tiny model


class Rewards:
    """A reward of 1 for every rollout of one chosen prompt (by its answer), 0 otherwise; keeps what it saw."""

    def __init__(self, solved_answer=None):
        self.solved_answer, self.seen = solved_answer, []
        self.__name__ = "answer_reward"

    def __call__(self, completions, answer, **kwargs):
        self.seen.append(list(completions))
        return [1.0 if a == self.solved_answer else 0.0 for a in answer]


class FailThenDigits:
    """guide=failed calls the reward twice per generation: 0 for every unguided rollout (all groups fail),
    then the digit share (varies, so the guided rollouts have non-zero advantages)."""

    __name__ = "fail_then_digits"

    def __init__(self, rounds: int):
        self.rounds, self.calls = rounds, 0

    def __call__(self, completions, **kwargs):
        self.calls += 1
        if self.rounds == 2 and self.calls % 2 == 1:
            return [0.0] * len(completions)
        return digit_reward(completions)


def make_trainer(tiny_model_dir, dataset, out, reward=None, **knobs):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from prefix_rft.cost.trainers import with_cost_accounting

    return with_cost_accounting(PrefixInPromptTrainer)(
        model=AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        reward_funcs=[reward or Rewards()],
        args=make_args(out),
        train_dataset=dataset,
        processing_class=AutoTokenizer.from_pretrained(tiny_model_dir),
        algorithm=PrefixInPromptConfig(**knobs),
        prefix_scheduler=build_scheduler("constant", value=0.5),
    )


def unpadded(batch, key, i):
    return batch[f"{key}_ids"][i][batch[f"{key}_mask"][i].bool()].tolist()


def test_guide_all_prompts_end_with_the_exact_prefix_and_only_the_continuation_is_trained(
    tiny_model_dir, dataset, tmp_path
):
    reward = Rewards(solved_answer=dataset[0]["answer"])
    trainer = make_trainer(tiny_model_dir, dataset, tmp_path, reward=reward)
    tok = trainer.processing_class
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1
    rows = [dict(dataset[i // G]) for i in range(2 * G)]
    batch = trainer._generate_and_score_completions(rows)
    plain = tok.apply_chat_template(
        rows[0]["prompt"], add_generation_prompt=True, tokenize=True, return_dict=True
    )
    plain = list(plain["input_ids"])
    for i, row in enumerate(rows):
        demo = tok(text=row["demonstration"], add_special_tokens=False)["input_ids"]
        n = max(len(demo) // 2, 1)  # constant ratio 0.5: floor(0.5 * |demo|)
        prompt = unpadded(batch, "prompt", i)
        assert prompt[-n:] == demo[:n]  # the prompt ends with exactly the first n demonstration tokens
        if i < G:
            assert prompt == list(plain) + demo[:n]  # template, then the prefix, nothing else
        completion = unpadded(batch, "completion", i)
        # the completion is the continuation alone, within what the prefix leaves of the budget
        assert 1 <= len(completion) <= MAX_LEN - n
        assert "prefix_mask" not in batch  # nothing in the completion is a demonstration token
        # the reward saw the whole trajectory: prefix text, then the continuation
        seen = reward.seen[-1][i][0]["content"]
        assert seen == tok.decode(demo[:n], skip_special_tokens=True) + tok.decode(
            completion, skip_special_tokens=True
        )
    # Loss by hand: ratio 1 (old log-probs = current), so -A per continuation token over B * max_len.
    assert batch["advantages"].tolist() == [0.0] * (2 * G)  # one prompt all solved, one all failed
    batch["advantages"] = torch.linspace(-1.0, 1.0, 2 * G)
    loss = trainer._compute_loss(trainer.model, batch)
    n_tokens = batch["completion_mask"].sum(1).float()
    assert loss.item() == pytest.approx((-(batch["advantages"] * n_tokens).sum() / (2 * G * MAX_LEN)).item())
    # and the log-probs of the loss are those of the continuation given prompt + prefix
    i = 0
    ids = torch.tensor(unpadded(batch, "prompt", i) + unpadded(batch, "completion", i)).unsqueeze(0)
    with torch.no_grad():
        direct = torch.log_softmax(trainer.model(input_ids=ids).logits[0].float(), -1)
        logps, _, _ = trainer._get_per_token_logps_and_entropies(
            trainer.model,
            torch.cat([batch["prompt_ids"], batch["completion_ids"]], 1)[:1],
            torch.cat([batch["prompt_mask"], batch["completion_mask"]], 1)[:1],
            batch["completion_ids"].size(1),
        )
    completion = unpadded(batch, "completion", i)
    p = len(unpadded(batch, "prompt", i))
    expected = (
        direct[p - 1 : p - 1 + len(completion)].gather(1, torch.tensor(completion).unsqueeze(1)).squeeze(1)
    )
    assert logps[0, : len(completion)].tolist() == pytest.approx(expected.tolist(), abs=1e-5)


def test_guide_failed_prefixes_only_groups_whose_unguided_rollouts_all_failed(
    tiny_model_dir, dataset, tmp_path
):
    reward = Rewards(solved_answer=dataset[0]["answer"])  # group 0 solves everything, group 1 nothing
    trainer = make_trainer(tiny_model_dir, dataset, tmp_path, reward=reward, guide="failed")
    tok = trainer.processing_class
    trainer.model.train()
    rows = [dict(dataset[i // G]) for i in range(2 * G)]
    batch = trainer._generate_and_score_completions(rows)
    assert len(reward.seen) == 2  # the unguided round, then the final batch
    first_round = reward.seen[0]
    plain = [unpadded(batch, "prompt", 0)] * G
    for i in range(G):  # group 0 solved: unguided, and its rollouts are the first round's
        assert unpadded(batch, "prompt", i) == plain[i]
        assert (
            tok.decode(unpadded(batch, "completion", i), skip_special_tokens=True)
            == first_round[i][0]["content"]
        )
    demo = tok(text=rows[G]["demonstration"], add_special_tokens=False)["input_ids"]
    n = max(len(demo) // 2, 1)
    for i in range(G, 2 * G):  # group 1 failed: re-sampled after the prefix
        assert unpadded(batch, "prompt", i)[-n:] == demo[:n]
        assert len(unpadded(batch, "prompt", i)) == len(unpadded(batch, "prompt", G)) > n
    logged = trainer._metrics["train"]
    assert logged["prefix_in_prompt/failed_group_fraction"] == [0.5]
    assert logged["prefix_in_prompt/guided_fraction"] == [0.5]
    assert logged["prefix_in_prompt/prefix_tokens"] == [float(n)]


@pytest.mark.parametrize("guide", ["all", "failed"])
def test_prefix_in_prompt_trains_logs_and_counts_its_rollouts(tiny_model_dir, dataset, tmp_path, guide):
    from prefix_rft.cost.counters import cost_state

    reward = FailThenDigits(rounds=2 if guide == "failed" else 1)
    trainer = make_trainer(tiny_model_dir, dataset, tmp_path, reward=reward, guide=guide)
    rec = Recorder(trainer)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    assert any(not torch.equal(p.detach(), before[n]) for n, p in trainer.model.named_parameters())
    logged = {k for r in trainer.state.log_history for k in r}
    assert {
        "prefix_in_prompt/guided_fraction",
        "prefix_in_prompt/prefix_tokens",
        "rewards/guided_mean",
    } <= logged
    rows = [r for r in trainer.state.log_history if "prefix_in_prompt/guided_fraction" in r]
    assert all(r["prefix_in_prompt/guided_fraction"] == 1.0 for r in rows)
    counters = cost_state(trainer).counters
    steps = len(rec.batches)
    # guide=failed samples every group twice (all fail); both count, and every kept row is guided.
    assert counters.rollouts == steps * 2 * G * (2 if guide == "failed" else 1)
    assert counters.hybrid_rollouts == steps * 2 * G
    assert counters.trained_prefix_tokens == 0 and counters.trained_on_policy_tokens > 0


# ----------------------------------------------------------------------------- POPE's per-problem prefix


def write_ratios(path, dataset, ratios):
    import json

    from prefix_rft.data.subsets import problem_key

    rows = [{"problem": problem_key(p), "prefix_ratio": r} for p, r in zip(dataset["prompt"], ratios)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_prefix_ratio_file_sets_each_problems_prefix_and_leaves_0_and_null_unguided(
    tiny_model_dir, dataset, tmp_path
):
    # problem 0: 0.25 of its demonstration; problem 1: solved without (0.0); the rest: no ratio solved (null)
    ratios = [0.25, 0.0] + [None] * (len(dataset) - 2)
    path = write_ratios(tmp_path / "pope.jsonl", dataset, ratios)
    trainer = make_trainer(tiny_model_dir, dataset, tmp_path / "out", prefix_ratio_file=path)
    tok = trainer.processing_class
    trainer.model.train()
    rows = [dict(dataset[i // G]) for i in range(3 * G)]
    batch = trainer._generate_and_score_completions(rows)
    demo = tok(text=rows[0]["demonstration"], add_special_tokens=False)["input_ids"]
    n = len(demo) // 4  # floor(0.25 * |demo|), not the scheduler's constant 0.5
    assert n >= 2 and n != len(demo) // 2
    for i in range(G):
        assert unpadded(batch, "prompt", i)[-n:] == demo[:n]
    for i in range(G, 3 * G):  # ratio 0.0 and null: the plain templated prompt
        prompt = unpadded(batch, "prompt", i)
        assert prompt == list(
            tok.apply_chat_template(
                rows[i]["prompt"], add_generation_prompt=True, tokenize=True, return_dict=True
            )["input_ids"]
        )
    logged = trainer._metrics["train"]
    assert logged["prefix_in_prompt/guided_fraction"] == [pytest.approx(1 / 3)]
    assert logged["prefix_in_prompt/ratio_mean"] == [0.25]


def test_prefix_ratio_file_errors_name_the_key(tiny_model_dir, dataset, tmp_path):
    from prefix_rft.errors import DataError

    with pytest.raises(ConfigError, match="algorithm.prefix_ratio_file=.*no such file"):
        PrefixInPromptConfig(prefix_ratio_file=str(tmp_path / "absent.jsonl")).check(make_args(tmp_path))
    partial = write_ratios(tmp_path / "partial.jsonl", dataset.select(range(3)), [0.5, 0.5, 0.5])
    with pytest.raises(DataError, match=r"prefix_ratio_file=.*13 training rows have no prefix ratio"):
        make_trainer(tiny_model_dir, dataset, tmp_path / "a", prefix_ratio_file=partial)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"problem": "x", "prefix_ratio": 1.5}\n')
    with pytest.raises(DataError, match=r"row 1: prefix_ratio must be null or a number in \[0, 1\), got 1.5"):
        make_trainer(tiny_model_dir, dataset, tmp_path / "b", prefix_ratio_file=str(bad))


def test_shortest_solving_prefix_is_searched_shortest_first(tiny_model_dir, dataset, monkeypatch):
    """measure_pass_rates(prefix_ratios=...) with a grader that solves problem k once its prefix holds at
    least need[k] tokens: the recorded ratio is the first ratio of the grid whose cut reaches need[k]."""
    import math

    from transformers import AutoTokenizer

    import prefix_rft.eval.heldout as heldout
    from prefix_rft.eval.pass_rates import measure_pass_rates

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    ds = dataset.select(range(4))
    lengths = [len(tok(text=d, add_special_tokens=False)["input_ids"]) for d in ds["demonstration"]]
    # problem 0 solved unguided; 1 needs the 0.2 cut; 2 needs the 0.4 cut; 3 needs more than any cut
    need = [0, math.floor(0.2 * lengths[1]), math.floor(0.4 * lengths[2]), lengths[3]]
    assert math.floor(0.1 * lengths[1]) < need[1] and math.floor(0.2 * lengths[2]) < need[2]
    calls = []

    def fake_scores(model, tokenizer, records, samples, **kwargs):
        calls.append([len(r.get("prefix_ids", [])) for r in records])
        out = []
        for r in records:
            k = list(ds["prompt"]).index(r["prompt"])
            pre = r.get("prefix_ids", [])
            demo = tok(text=ds[k]["demonstration"], add_special_tokens=False)["input_ids"]
            assert pre == demo[: len(pre)]  # a token-boundary cut of the row's demonstration
            out.append([1.0 if len(pre) >= need[k] and (k == 0 or pre) else 0.0] + [0.0] * (samples - 1))
        return out

    monkeypatch.setattr(heldout, "sample_scores", fake_scores)
    rows = measure_pass_rates(None, tok, ds, samples=4, max_new_tokens=10_000, prefix_ratios=[0.4, 0.1, 0.2])
    assert [r["pass_rate"] for r in rows] == [0.25, 0.0, 0.0, 0.0]
    assert [r["prefix_ratio"] for r in rows] == [0.0, 0.2, 0.4, None]
    # unguided round, then 0.1 for 1-3, 0.2 for 1-3, 0.4 for 2-3 (a solved problem leaves the search)
    assert calls == [
        [0, 0, 0, 0],
        [math.floor(0.1 * n) for n in lengths[1:]],
        [math.floor(0.2 * n) for n in lengths[1:]],
        [math.floor(0.4 * n) for n in lengths[2:]],
    ]


def test_sampled_guided_completions_continue_the_prefix_within_the_budget(tiny_model_dir, dataset):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from prefix_rft.eval.heldout import sample_completions

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    seen = {}
    generate = model.generate

    def recording_generate(**kwargs):
        seen["kwargs"], seen["out"] = kwargs, generate(**kwargs)
        return seen["out"]

    model.generate = recording_generate
    demo = tok(text=dataset[0]["demonstration"], add_special_tokens=False)["input_ids"]
    records = [
        {"prompt": dataset[0]["prompt"], "answer": dataset[0]["answer"], "prefix_ids": demo[:5]},
        {"prompt": dataset[1]["prompt"], "answer": dataset[1]["answer"]},
    ]
    texts, scores = sample_completions(model, tok, records, samples=2, max_new_tokens=8)
    kwargs, out = seen["kwargs"], seen["out"]
    templated = tok.apply_chat_template(
        dataset[0]["prompt"], add_generation_prompt=True, tokenize=True, return_dict=True
    )
    # the guided row's input: its templated prompt, then exactly the 5 prefix tokens (left padding before)
    row = kwargs["input_ids"][0][kwargs["attention_mask"][0].bool()].tolist()
    assert row == list(templated["input_ids"]) + demo[:5]
    assert kwargs["max_new_tokens"] == 8  # the unguided row of the batch keeps its whole budget
    width = kwargs["input_ids"].shape[1]
    for k in range(2):  # guided samples: prefix text + at most 8 - 5 = 3 continuation tokens
        new = out[k, width:].tolist()
        assert texts[0][k] == tok.decode(demo[:5] + new[:3], skip_special_tokens=True)
    for k in range(2):  # unguided samples: the whole continuation
        assert texts[1][k] == tok.decode(out[2 + k, width:].tolist(), skip_special_tokens=True)
    assert len(scores[0]) == len(scores[1]) == 2
