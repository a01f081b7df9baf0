"""prefix_in_prompt: the demonstration prefix ends the prompt, only the continuation is in the loss; guide=all
prefixes every group, guide=failed (POPE) only the groups whose unguided rollouts all failed."""

from __future__ import annotations

import pytest
import torch
from fakes import digit_reward
from test_prefix_rft_trainer import MAX_LEN, G, Recorder, make_args

from prefix_rft.errors import ConfigError
from prefix_rft.prefix.schedulers import build_scheduler
from prefix_rft.trainers.prefix_in_prompt import (
    PrefixInPromptConfig,
    PrefixInPromptTrainer,
    guided_groups,
    prompt_prefix_length,
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
    with pytest.raises(ConfigError, match="algorithm.num_prefixed"):
        PrefixInPromptConfig(num_prefixed=1).check(args)
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
        assert not batch["prefix_mask"][i].any()  # nothing in the completion is a demonstration token
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
