"""``PrefixInPromptTrainer``: a demonstration prefix appended to the prompt; only the continuation is trained.

The family of QuestA (arXiv 2507.13266), POPE (arXiv 2601.18779) and PrefixRL (arXiv 2601.18795): the
first ``L = floor(l * |demo|)`` demonstration tokens become part of the PROMPT, the policy samples the rest,
and the RL loss (Dr. GRPO, as every algorithm here) covers the continuation only. The prefix tokens are
context: no loss, no entropy mask, no advantage. This is the direct contrast to Prefix-RFT, whose prefix
sits in the completion and gets entropy-masked updates. The ratio ``l`` comes from the same schedulers
(``scheduler=...``, :mod:`prefix_rft.prefix.schedulers`), drawn once per group, so all rollouts of a group
continue the same prefixed problem and the group baseline compares like with like.

``algorithm.guide`` chooses which groups get a prefix:

* ``all``: every prompt with a demonstration (QuestA's hinted prompts, PrefixRL's prefixed problems);
* ``failed``: POPE's selection. The group is first sampled without a prefix; a group whose rollouts all
  failed (no positive reward) is sampled again with a prefix, and those guided rollouts replace the
  failed ones (whose advantages are all 0 under Dr. GRPO, so they carry no gradient anyway). The others
  keep their unguided rollouts, so each batch mixes unguided and guided prompts.

``algorithm.prefix_ratio_file`` replaces the scheduler's ratio by each problem's measured one: POPE guides a
problem with the shortest prefix of its solution that made the base model solve it, measured once before
training (``prefix-rft-pass-rates --prefix-ratios``, :func:`prefix_rft.eval.pass_rates.measure_pass_rates`).

The trajectory budget is Prefix-RFT's: prefix + continuation <= max_completion_length (the continuation is
cut at ``max_completion_length - L``), so both spend the same context per rollout. The reward sees the
whole trajectory (prefix text + continuation) unless ``algorithm.reward_sees_prefix=false``.

With ``guide=failed`` the second round samples only the guided rows; vLLM's paths need equal row counts on
every process, so with several processes the shorter ones are padded with reused rows sampled with a 1-token
budget and discarded (counted in the cost). On vLLM each guided row samples at most ``max_completion_length
- L`` tokens (per-request budgets, :mod:`prefix_rft.trainers.engine_rows`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from prefix_rft.cost.counters import record_cost
from prefix_rft.data.columns import DEMONSTRATION, first_demonstration
from prefix_rft.data.subsets import load_prefix_ratios, missing_problems, problem_key
from prefix_rft.errors import ConfigError, DataError, one_of
from prefix_rft.prefix.sampling import prompt_prefix_length
from prefix_rft.prefix.schedulers import step_generator
from prefix_rft.trainers.algorithm_config import knob
from prefix_rft.trainers.base import DrGRPOConfig, DrGRPOTrainer
from prefix_rft.trainers.engine_rows import per_row_budgets, rows_to_generate
from prefix_rft.trainers.prefix_sampling import ScheduledPrefixConfig, ScheduledPrefixes
from prefix_rft.trainers.relift_buffer import failed_groups

GUIDE_MODES = ("all", "failed")


def guided_groups(
    mode: str, num_groups: int, rewards: Sequence[float] | None, num_generations: int
) -> list[bool]:
    """Which groups get a prompt prefix: all of them, or those whose on-policy rollouts all failed."""
    one_of("guide", mode, GUIDE_MODES)
    if mode == "all":
        return [True] * num_groups
    if rewards is None:
        raise ValueError("guide='failed' needs the rewards of the unguided rollouts")
    failed = set(failed_groups(list(rewards), num_generations))
    return [g in failed for g in range(num_groups)]


def prompt_with_prefix(prompt_ids: Sequence[int], prefix_ids: Sequence[int] | None) -> list[int]:
    """The generation prompt of a guided row: the templated prompt followed by the demonstration prefix."""
    return list(prompt_ids) + list(prefix_ids or [])


@dataclass
class PrefixInPromptConfig(ScheduledPrefixConfig, DrGRPOConfig):
    """A demonstration prefix in the prompt (ratio from the scheduler); the loss covers the continuation only."""

    guide: str = knob(
        "all",
        "Which groups get a prompt prefix: all (QuestA, PrefixRL: every prompt with a demonstration) or "
        "failed (POPE: only groups whose unguided rollouts all failed, re-sampled with the prefix).",
    )
    reward_sees_prefix: bool = knob(
        True,
        "Score prefix text + continuation (the whole trajectory; a prefix may end inside the final answer). "
        "False scores the continuation alone.",
    )
    prefix_ratio_file: str | None = knob(
        None,
        "JSONL of {problem, prefix_ratio} from prefix-rft-pass-rates --prefix-ratios: each problem's guided "
        "groups use its recorded ratio (POPE's shortest prefix that made it solvable) instead of the "
        "scheduler's; 0 or null leaves the problem unguided. Unset: ratios from the scheduler.",
    )

    def check(self, args) -> None:
        super().check(args)
        one_of("algorithm.guide", self.guide, GUIDE_MODES)
        if self.prefix_ratio_file is not None and not Path(self.prefix_ratio_file).is_file():
            raise ConfigError(
                f"algorithm.prefix_ratio_file={self.prefix_ratio_file}: no such file (write it with "
                "prefix-rft-pass-rates --prefix-ratios ...)"
            )

    def needs_demonstrations(self) -> bool:
        return True


class PrefixInPromptTrainer(ScheduledPrefixes, DrGRPOTrainer):
    """DrGRPOTrainer whose guided prompts end with a demonstration prefix drawn at the scheduled ratio.

    Hooks: ``_generate_and_score_completions`` keeps the rows and sets up the plan; ``_tokenize_prompts``
    appends each guided row's prefix to its prompt ids (with ``guide=failed`` it first samples and scores the
    unguided round to find the failed groups); ``_generate_single_turn`` samples the guided rows (and reuses
    the first round's rollouts for the others) within the trajectory budget; ``_calculate_rewards`` lets the
    reward see the prefix. The loss is the base's Dr. GRPO: the prompt (with its prefix) is context.
    """

    algorithm: PrefixInPromptConfig

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._rows: list[dict] | None = None
        self._prompt_plan: list[list[int] | None] | None = None
        self._plan_ratios: list[float | None] = []
        self._first_round: tuple[list, list | None] | None = None
        self._failed_fraction: float | None = None
        self._ratio_of_problem: dict[str, float | None] | None = None
        if self.algorithm.prefix_ratio_file is not None:
            what = f"algorithm.prefix_ratio_file={self.algorithm.prefix_ratio_file}"
            self._ratio_of_problem = load_prefix_ratios(self.algorithm.prefix_ratio_file, what)
            missing = missing_problems(self.train_dataset["prompt"], self._ratio_of_problem)
            if missing:
                raise DataError(
                    f"{what}: {len(missing)} training rows have no prefix ratio (first: row {missing[0]}); "
                    "measure the same data and template"
                )

    # ------------------------------------------------------------------ planning
    def _group_prefix(self, group: int, row: dict) -> tuple[list[int], float] | None:
        """The prefix of one group: its draws are seeded by (seed, step, round, group), so every process
        holding a row of the group cuts the same prefix, and a resumed run cuts the same ones. With
        ``prefix_ratio_file`` the ratio is the problem's measured one, cut from the demonstration it was
        measured on (the first)."""
        step = self.state.global_step
        gen = step_generator(self.args.seed, step, self._rollout_round()[0] * 1_000_003 + group)
        if self._ratio_of_problem is not None:
            demo = first_demonstration(row.get(DEMONSTRATION))
            ratio = self._ratio_of_problem[problem_key(row["prompt"])]
            if demo is None or not ratio:
                return None  # solved without a prefix, or no measured prefix solved it: unguided
        else:
            demo = self._pick_demonstration(row, gen)
            if demo is None:
                return None  # no demonstration: the group stays unguided
            ratio = self.prefix_scheduler.sample(step, 1, generator=gen)[0]
        ids = self._demo_ids(demo)
        length = prompt_prefix_length(
            ratio, len(ids), self.max_completion_length, self.algorithm.min_prefix_tokens
        )
        return (list(ids[:length]), ratio) if length > 0 else None

    def _plan(self, guided: list[bool]) -> list[list[int] | None]:
        """Prefix ids for each local row whose (global) group is guided; None for the others."""
        offset = self.accelerator.process_index * len(self._rows)
        plan: list[list[int] | None] = []
        self._plan_ratios = []
        for i, row in enumerate(self._rows):
            g = (offset + i) // self.num_generations
            cut = self._group_prefix(g, row) if guided[g] else None
            plan.append(cut[0] if cut else None)
            self._plan_ratios.append(cut[1] if cut else None)
        return plan

    def _num_groups(self) -> int:
        return len(self._rows) * self.accelerator.num_processes // self.num_generations

    # ------------------------------------------------------------------ rollouts
    def _generate_and_score_completions(self, inputs):
        training = self.model.training
        self._rows = list(inputs) if training else None  # evaluation measures the policy: no prefixes
        self._prompt_plan, self._first_round, self._failed_fraction = None, None, None
        if training and self.algorithm.guide == "all":
            self._prompt_plan = self._plan(
                guided_groups("all", self._num_groups(), None, self.num_generations)
            )
        try:
            output = super()._generate_and_score_completions(inputs)
            if training:
                self._log_ratio_bounds(self._metrics["train"])
                self._log_guidance(output)
        finally:
            self._rows, self._prompt_plan, self._first_round = None, None, None
        return output

    def _tokenize_prompts(self, prompts: list):
        prompt_ids, images, multimodal_fields = super()._tokenize_prompts(prompts)
        if self._rows is None:
            return prompt_ids, images, multimodal_fields
        if images is not None:
            raise ValueError("PrefixInPromptTrainer does not support image inputs")
        if self.algorithm.guide == "failed":
            self._prompt_plan = self._unguided_round(prompts, prompt_ids, multimodal_fields)
        plan = self._prompt_plan or [None] * len(prompt_ids)
        return [prompt_with_prefix(p, pre) for p, pre in zip(prompt_ids, plan)], images, multimodal_fields

    def _unguided_round(self, prompts, prompt_ids, multimodal_fields) -> list[list[int] | None]:
        """POPE's selection: sample and score every row without a prefix, then plan prefixes for the groups
        that failed; their rollouts are discarded (counted in the cost), the others kept for reuse."""
        completion_ids, logprobs = super()._generate_single_turn(
            prompt_ids, None, multimodal_fields, self.num_generations
        )
        self._first_round = (completion_ids, logprobs)
        texts = self.processing_class.batch_decode(completion_ids, skip_special_tokens=True)
        conversational = isinstance(prompts[0], list)
        completions = [[{"role": "assistant", "content": t}] for t in texts] if conversational else texts
        self._calculate_rewards(self._rows, prompts, completions, completion_ids)  # collective
        guided = guided_groups(
            "failed", self._num_groups(), self._global_rewards().tolist(), self.num_generations
        )
        self._failed_fraction = sum(guided) / max(len(guided), 1)
        plan = self._plan(guided)
        replaced = [i for i, p in enumerate(plan) if p is not None]
        self._record_discarded(
            [len(prompt_ids[i]) for i in replaced], [len(completion_ids[i]) for i in replaced]
        )
        return plan

    def _record_discarded(self, prompt_lengths: list[int], completion_lengths: list[int]) -> None:
        """Cost of sampled rollouts that are not kept (summed over processes, collective)."""
        local = torch.tensor(
            [len(completion_lengths), sum(completion_lengths), sum(prompt_lengths)],
            dtype=torch.long,
            device=self.accelerator.device,
        )
        rollouts, tokens, context = self.accelerator.reduce(local, reduction="sum").tolist()
        record_cost(self, rollouts=rollouts, tokens_generated=tokens, generation_context_tokens=context)

    def _generate_single_turn(
        self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False
    ):
        return self._sample(prompt_ids, images, multimodal_fields, num_generations)

    def _sample(self, prompt_ids, images, multimodal_fields, num_generations):
        """Completions (and engine log-probs) for every row of ``prompt_ids``, per the prefix plan."""
        plan = self._prompt_plan
        if self._rows is None or plan is None or all(p is None for p in plan):
            if self._first_round is not None:
                return self._first_round  # guide=failed and nothing failed: the unguided round stands
            return super()._generate_single_turn(prompt_ids, images, multimodal_fields, num_generations)
        reuse = self._first_round
        rows = range(len(prompt_ids))
        # Rows to sample now: the guided ones, and with guide=all also the unguided ones (no first round).
        wanted = [i for i in rows if plan[i] is not None or reuse is None]
        # vLLM needs equal row counts per process: padded with reused rows (sampled with a 1-token budget).
        to_generate = rows_to_generate(self, wanted, len(prompt_ids))
        wanted_rows = set(wanted)
        budgets = [
            self.max_completion_length - len(plan[i] or []) if i in wanted_rows else 1 for i in to_generate
        ]
        # Every row is its own prompt (num_generations=1): guided and reused rows differ within a group.
        # Each row samples at most its continuation budget max_completion_length - L (vLLM: per request).
        with per_row_budgets(self, budgets):
            gen_ids, gen_logps = super()._generate_single_turn(
                [prompt_ids[i] for i in to_generate], None, multimodal_fields, 1
            )
        fresh = dict(zip(to_generate, range(len(to_generate))))
        out_ids, out_logps = [], [] if gen_logps is not None else None
        dropped_prompts, dropped_lengths = [], []
        for i in rows:
            if plan[i] is None and reuse is not None:
                out_ids.append(list(reuse[0][i]))
                if out_logps is not None:
                    out_logps.append(list(reuse[1][i]) if reuse[1] is not None else None)
                if i in fresh:  # regenerated for vLLM's sake only
                    dropped_prompts.append(len(prompt_ids[i]))
                    dropped_lengths.append(len(gen_ids[fresh[i]]))
                continue
            # Continuation budget = max_completion_length - L: what the engine produced past it is cut, the
            # same sample as stopping the engine there.
            budget = self.max_completion_length - len(plan[i] or [])
            ids = list(gen_ids[fresh[i]])[:budget]
            out_ids.append(ids)
            if out_logps is not None:
                out_logps.append(list(gen_logps[fresh[i]])[: len(ids)])
        if reuse is not None:
            self._record_discarded(dropped_prompts, dropped_lengths)
        return out_ids, out_logps

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        plan = self._prompt_plan if self._rows is not None else None
        if plan and self.algorithm.reward_sees_prefix and any(p is not None for p in plan):
            prefixes = self.processing_class.batch_decode([p or [] for p in plan], skip_special_tokens=True)
            completions = [
                _prepend(text, c) if pre else c for text, pre, c in zip(prefixes, plan, completions)
            ]
            completion_ids_list = [list(pre or []) + list(ids) for pre, ids in zip(plan, completion_ids_list)]
        return super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)

    # ------------------------------------------------------------------ metrics and cost
    def _log_guidance(self, output) -> None:
        plan = self._prompt_plan or [None] * len(self._rows)
        device = output["completion_ids"].device
        guided = torch.tensor([p is not None for p in plan], device=device)
        lengths = torch.tensor([len(p or []) for p in plan], dtype=torch.float, device=device)
        ratios = torch.tensor([r or 0.0 for r in self._plan_ratios] or [0.0] * len(plan), device=device)
        all_guided = self.accelerator.gather(guided)
        n_guided = int(all_guided.sum())
        m = self._metrics["train"]
        m["prefix_in_prompt/guided_fraction"].append(all_guided.float().mean().item())
        if n_guided:
            m["prefix_in_prompt/prefix_tokens"].append(
                self.accelerator.gather(lengths).sum().item() / n_guided
            )
            m["prefix_in_prompt/ratio_mean"].append(self.accelerator.gather(ratios).sum().item() / n_guided)
        if self._failed_fraction is not None:
            m["prefix_in_prompt/failed_group_fraction"].append(self._failed_fraction)
        self._log_reward_split(m, all_guided, "rewards/guided_mean", "rewards/unguided_mean")
        # The guided rows continue a demonstration prefix (its tokens are context, counted by the cost
        # accounting as generation context and forward/backward tokens, never as trained tokens).
        record_cost(self, hybrid_rollouts=n_guided)


def _prepend(text: str, completion):
    """``completion`` (a string or a conversational message list) with ``text`` before its first content."""
    if isinstance(completion, str):
        return text + completion
    first = dict(completion[0])
    first["content"] = text + first["content"]
    return [first, *completion[1:]]
