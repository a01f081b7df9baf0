"""``PrefixRFTTrainer``: Dr. GRPO (:class:`~prefix_rft.trainers.base.DrGRPOTrainer`) with prefix-sampled
hybrid rollouts and an entropy-masked prefix update. Also LUFFY (whole demonstrations, shaped loss) and the
base of SRFT.

The hooks it overrides beyond its base (``tests/test_trl_seam.py`` computes the list from the classes):

* ``_generate_and_score_completions`` plans which rollouts of each group are hybrid, lets TRL
  generate and score them, then adds the per-token ``prefix_mask`` to the batch.
* ``_generate_single_turn`` appends each hybrid's demonstration prefix (token ids) to its prompt,
  generates the continuation (at most ``max_completion_length - L`` tokens; whole demonstrations are not
  sent to the engine), and returns ``prefix ids + continuation`` as the completion.
* ``_policy_loss`` (the base's loss hook) applies the prefix-token update policy and LUFFY's shaped loss on
  whole demonstrations, through the pure functions in :mod:`prefix_rft.losses`.

The prefix ratio comes from the prefix scheduler; the knobs of prefix sampling are
:class:`~prefix_rft.trainers.prefix_sampling.HybridRolloutConfig`'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from prefix_rft.errors import ConfigError, one_of
from prefix_rft.losses import (
    ADVANTAGE_BASELINES,
    group_advantages,
    policy_shaping,
    prefix_rft_policy_loss,
    prefix_update_mask,
    top_fraction_threshold,
)
from prefix_rft.prefix.sampling import prefix_length
from prefix_rft.prefix.schedulers import step_generator
from prefix_rft.trainers.algorithm_config import knob
from prefix_rft.trainers.base import PREFIX_LOSS_TYPES, DrGRPOConfig, DrGRPOTrainer
from prefix_rft.trainers.engine_rows import per_row_budgets, rows_to_generate
from prefix_rft.trainers.prefix_sampling import HybridRolloutConfig, ScheduledPrefixes

__all__ = ["PREFIX_LOSS_TYPES", "LUFFYConfig", "PrefixRFTConfig", "PrefixRFTTrainer"]

OFF_POLICY_LOSSES = ("clipped", "shaped")


@dataclass
class PrefixRFTConfig(HybridRolloutConfig, DrGRPOConfig):
    """Prefix-RFT's knobs: hybrid rollouts that continue a demonstration prefix, entropy-masked update."""

    advantage_baseline: str = knob(
        "group", "Advantage baseline: group (Dr. GRPO over the whole group, paper) or on_policy (ablation)."
    )
    off_policy_loss: str = knob(
        "clipped",
        "Loss of full-demonstration rollouts: clipped (PPO surrogate like every other token) or shaped "
        "(LUFFY's f(p) = p / (p + gamma), no clipping, no old-policy ratio).",
    )
    shaping_gamma: float = knob(0.1, "gamma of the policy shaping f(p) = p / (p + gamma) (LUFFY: 0.1).")
    on_policy_clip: bool = knob(
        True,
        "Clip the PPO ratio of on-policy tokens (False matches LUFFY's published script, which removes it).",
    )

    def check(self, args) -> None:
        one_of("algorithm.advantage_baseline", self.advantage_baseline, ADVANTAGE_BASELINES)
        one_of("algorithm.off_policy_loss", self.off_policy_loss, OFF_POLICY_LOSSES)
        if self.off_policy_loss == "shaped" and not self.allow_full_prefix:
            raise ConfigError(
                "algorithm.off_policy_loss=shaped applies to full-demonstration rollouts only: set "
                "algorithm.allow_full_prefix=true (and a scheduler that reaches ratio 1, e.g. scheduler=full)"
            )
        if self.shaping_gamma <= 0:
            raise ConfigError(f"algorithm.shaping_gamma={self.shaping_gamma} must be > 0")
        super().check(args)


@dataclass
class LUFFYConfig(PrefixRFTConfig):
    """LUFFY: one rollout per group is the whole demonstration, trained with policy shaping."""

    num_prefixed: int = knob(1, "Off-policy (full-demonstration) rollouts per group (LUFFY: 1).")
    prefix_update: str = knob("all", "Which prefix tokens keep their advantage (LUFFY: all).")
    allow_full_prefix: bool = knob(True, "A prefix may cover the whole demonstration (LUFFY: always).")
    off_policy_loss: str = knob("shaped", "Loss of full-demonstration rollouts (LUFFY: shaped).")


class PrefixRFTTrainer(ScheduledPrefixes, DrGRPOTrainer):
    """DrGRPOTrainer whose groups contain ``num_prefixed`` rollouts that continue a demonstration prefix.

    Args:
        algorithm: the method's knobs (:class:`PrefixRFTConfig` or a subclass).
        prefix_scheduler: draws the prefix ratio ``l`` for each hybrid rollout from the global step.
        All other arguments are GRPOTrainer's.
    """

    algorithm: PrefixRFTConfig

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._prefix_plan: list[list[int] | None] | None = None
        self._full_rows: set[int] = set()
        self._prefix_lengths: list[int] | None = None

    # ------------------------------------------------------------------ rollouts
    def _draw_stream(self) -> int:
        """Random stream of this process and rollout round (:meth:`_rollout_round`)."""
        round_idx, rounds = self._rollout_round()
        return self.accelerator.process_index * rounds + round_idx

    def _plan_prefixes(
        self, inputs: list[dict[str, Any]]
    ) -> tuple[list[list[int] | None], list[float], set[int]]:
        """Pick the hybrid rollouts of each group and cut their prefixes (token ids).

        Rows arrive as groups of ``num_generations`` consecutive copies of a prompt, spread over
        processes in order, so a row's slot in its group comes from its global index. The last
        ``num_prefixed`` slots of every group are hybrid. Draws use a generator seeded by the global
        step and process, so a resumed run draws the same ratios.
        """
        a = self.algorithm
        plan: list[list[int] | None] = [None] * len(inputs)
        ratios: list[float] = []
        full_rows: set[int] = set()
        if a.num_prefixed == 0:
            return plan, ratios, full_rows
        step = self.state.global_step
        gen = step_generator(self.args.seed, step, self._draw_stream())
        offset = self.accelerator.process_index * len(inputs)
        G = self.num_generations
        budget = self.max_completion_length if a.allow_full_prefix else self.max_completion_length - 1
        for i, row in enumerate(inputs):
            if (offset + i) % G < G - a.num_prefixed:
                continue
            demo = self._pick_demonstration(row, gen)
            if demo is None:
                continue  # no demonstration: this slot stays an on-policy rollout
            ids = self._demo_ids(demo)
            ratio = self.prefix_scheduler.sample(step, 1, generator=gen)[0]
            length = min(prefix_length(ratio, len(ids), a.min_prefix_tokens, a.allow_full_prefix), budget)
            if length > 0:
                plan[i] = list(ids[:length])
                ratios.append(ratio)
                # A whole demonstration (or as much of it as the budget holds, when full prefixes are
                # allowed) is an off-policy rollout: nothing is generated for it.
                if length == len(ids) or (a.allow_full_prefix and length == budget):
                    full_rows.add(i)
        return plan, ratios, full_rows

    def _generate_single_turn(
        self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False
    ):
        plan = self._prefix_plan
        if not plan or all(p is None for p in plan):
            self._prefix_lengths = [0] * len(prompt_ids)
            return super()._generate_single_turn(
                prompt_ids, images, multimodal_fields, num_generations, has_tool_images
            )
        if images is not None:
            raise ValueError("PrefixRFTTrainer does not support image inputs")
        # One call with every row as its own prompt (num_generations=1): hybrid rows differ from the rest
        # of their group, so TRL's per-group de-duplication for the vLLM server must not apply.
        extended = [list(p) + (prefix or []) for p, prefix in zip(prompt_ids, plan)]
        # Whole demonstrations need no generation; hybrids continue with their own budget max_completion_length
        # - L (per engine request on vLLM; cut below on transformers, which has one budget per call).
        wanted = [i for i in range(len(extended)) if i not in self._full_rows]
        if self.use_vllm:
            to_generate = rows_to_generate(self, wanted, len(extended))
        else:
            # transformers: all rows when every one is a whole demonstration (generate needs a prompt)
            to_generate = wanted if wanted else list(range(len(extended)))
        budgets = [
            self.max_completion_length - len(plan[i] or []) if i not in self._full_rows else 1
            for i in to_generate
        ]
        if to_generate:
            with per_row_budgets(self, budgets):
                gen_ids, gen_logps = super()._generate_single_turn(
                    [extended[i] for i in to_generate], None, multimodal_fields, 1
                )
        else:  # no process has a row to sample (vLLM): no engine call this round
            gen_ids, gen_logps = [], []
        completion_ids: list = [[] for _ in extended]
        logprobs: list | None = [[] for _ in extended] if gen_logps is not None else None
        for j, i in enumerate(to_generate):
            completion_ids[i] = gen_ids[j]
            if logprobs is not None:
                logprobs[i] = gen_logps[j]
        eos = self.eos_token_ids[0]
        lengths = []
        out_ids, out_logps = [], [] if logprobs is not None else None
        for i, (prefix, generated) in enumerate(zip(plan, completion_ids)):
            generated = list(generated)
            prefix = prefix or []
            full_demo = i in self._full_rows
            if full_demo:
                # The whole demonstration is the rollout, closed with end-of-turn if the budget allows.
                generated = [eos] if len(prefix) < self.max_completion_length else []
            else:
                # Continuation budget = max_completion_length - L: cut what the engine produced past it,
                # which is the same sample as stopping the engine there.
                generated = generated[: max(self.max_completion_length - len(prefix), 0)]
            out_ids.append(prefix + generated)
            lengths.append(len(prefix))
            if out_logps is not None:
                # Prefix tokens were not sampled: no engine log-prob (NaN -> TRL's IS ratio treats them as 1).
                gen_logps_i = [None] * len(generated) if full_demo else list(logprobs[i])[: len(generated)]
                out_logps.append([None] * len(prefix) + gen_logps_i)
        self._prefix_lengths = lengths
        return out_ids, out_logps

    def _generate_and_score_completions(self, inputs):
        mode = "train" if self.model.training else "eval"
        # Evaluation measures the policy alone: no prefixes outside training.
        if mode == "train":
            plan, ratios, self._full_rows = self._plan_prefixes(inputs)
        else:
            plan, ratios, self._full_rows = [None] * len(inputs), [], set()
        self._prefix_plan = plan
        try:
            output = super()._generate_and_score_completions(inputs)
        finally:
            self._prefix_plan = None
        completion_ids = output["completion_ids"]
        lengths = torch.tensor(self._prefix_lengths or [0] * len(inputs), device=completion_ids.device)
        positions = torch.arange(completion_ids.size(1), device=completion_ids.device)
        output["prefix_mask"] = (positions.unsqueeze(0) < lengths.unsqueeze(1)).int()
        is_full = torch.zeros(len(inputs), dtype=torch.bool, device=completion_ids.device)
        is_full[sorted(self._full_rows)] = True
        # Off-policy rows (whole demonstrations, end-of-turn included) for LUFFY's shaped loss.
        output["off_policy_mask"] = (is_full.unsqueeze(1) & output["completion_mask"].bool()).int()
        # Which rows were not sampled at all (cost accounting: prefix_rft.cost.trainers).
        output["demonstration_row"] = is_full
        is_hybrid = lengths > 0
        self._log_rollout_metrics(mode, is_hybrid, lengths, ratios)
        self._metrics[mode]["prefix/full_demo_fraction"].append(
            self.accelerator.gather(is_full).float().mean().item()
        )
        if self.algorithm.advantage_baseline == "on_policy" and self._rewards_per_func is not None:
            output["advantages"] = self._on_policy_baseline_advantages(is_hybrid, len(inputs))
        return output

    def _on_policy_baseline_advantages(self, is_hybrid: torch.Tensor, local_size: int) -> torch.Tensor:
        all_hybrid = self.accelerator.gather(is_hybrid)
        advantages = group_advantages(
            self._global_rewards(), self.num_generations, all_hybrid, baseline="on_policy"
        )
        start = self.accelerator.process_index * local_size
        return advantages[start : start + local_size]

    def _log_rollout_metrics(self, mode: str, is_hybrid, lengths, ratios) -> None:
        device = lengths.device
        all_hybrid = self.accelerator.gather(is_hybrid)
        all_lengths = self.accelerator.gather(lengths)
        m = self._metrics[mode]
        m["prefix/hybrid_fraction"].append(all_hybrid.float().mean().item())
        n_hybrid = int(all_hybrid.sum())
        m["prefix/num_tokens"].append(all_lengths[all_hybrid].float().mean().item() if n_hybrid else 0.0)
        stats = torch.tensor([sum(ratios), len(ratios)], dtype=torch.float32, device=device)
        total, count = self.accelerator.reduce(stats, reduction="sum").tolist()
        m["prefix/ratio_mean"].append(total / count if count else 0.0)
        if mode == "train":
            self._log_ratio_bounds(m)
        self._log_reward_split(m, all_hybrid, "rewards/hybrid_mean", "rewards/on_policy_mean")

    # ------------------------------------------------------------------ loss
    def _global_threshold(self, values: torch.Tensor, largest: bool) -> torch.Tensor | None:
        """The keep threshold over the prefix tokens of every process (the same on all of them)."""
        sentinel = -1e9  # entropies are >= 0, so the padding sentinel can never be a real value
        padded = self.accelerator.pad_across_processes(values.float(), dim=0, pad_index=sentinel)
        gathered = self.accelerator.gather(padded)
        gathered = gathered[gathered != sentinel]
        return top_fraction_threshold(gathered, self.algorithm.keep_fraction, largest=largest)

    def _policy_loss(
        self, inputs, logps, old_logps, entropies, loss_mask, importance, mode: str
    ) -> torch.Tensor:
        """Dr. GRPO with the prefix-token update policy: prefix tokens outside the kept ones lose their
        advantage; whole demonstrations get LUFFY's shaped loss when ``off_policy_loss=shaped``."""
        a = self.algorithm
        prefix_mask = inputs.get("prefix_mask", torch.zeros_like(loss_mask)).bool() & loss_mask
        threshold = None
        if a.prefix_update in ("entropy_top", "entropy_bottom"):
            threshold = self._global_threshold(
                entropies[prefix_mask], largest=a.prefix_update == "entropy_top"
            )
        keep_mask = prefix_update_mask(
            prefix_mask,
            loss_mask,
            entropies,
            a.prefix_update,
            keep_fraction=a.keep_fraction,
            threshold=threshold,
        )
        off_policy = None
        if a.off_policy_loss == "shaped" and "off_policy_mask" in inputs:
            off_policy = inputs["off_policy_mask"].bool() & loss_mask
        # LUFFY's published script removes clipping from on-policy tokens too (on_policy_clip=False).
        eps_low, eps_high = (
            (self.epsilon_low, self.epsilon_high) if a.on_policy_clip else (math.inf, math.inf)
        )
        loss, stats = prefix_rft_policy_loss(
            logps,
            old_logps,
            inputs["advantages"],
            loss_mask,
            prefix_mask,
            keep_mask,
            epsilon_low=eps_low,
            epsilon_high=eps_high,
            loss_type=self.loss_type,
            max_completion_length=self.max_completion_length,
            off_policy_mask=off_policy,
            shaping_gamma=a.shaping_gamma,
            importance_weights=importance,
            token_weights=self._policy_token_weights(inputs, entropies, loss_mask, mode),
        )
        self._log_loss_metrics(mode, stats, entropies, loss_mask, prefix_mask)
        self._log_prefix_metrics(mode, logps.detach(), entropies, prefix_mask, keep_mask, off_policy)
        return loss

    def _log_prefix_metrics(self, mode, logps, entropies, prefix_mask, keep_mask, off_policy) -> None:
        """Entropy and NLL of the demonstration prefixes, the share of their tokens kept, LUFFY's shaping."""
        m = self._metrics[mode]
        n_prefix = self.accelerator.reduce(prefix_mask.sum().float(), reduction="sum").item()
        if n_prefix:
            m["entropy/prefix"].append(self._masked_global_mean(entropies, prefix_mask))
            # NLL of the demonstration prefixes under the current policy: the paper's "SFT loss" trace.
            m["prefix/demo_nll"].append(-self._masked_global_mean(logps, prefix_mask))
            kept = self.accelerator.reduce((keep_mask & prefix_mask).sum().float(), reduction="sum").item()
            m["prefix/update_fraction"].append(kept / n_prefix)
        if off_policy is not None:
            n_off = self.accelerator.reduce(off_policy.sum().float(), reduction="sum").item()
            if n_off:
                shaping = policy_shaping(logps, self.algorithm.shaping_gamma)
                m["off_policy/shaping_weight_mean"].append(self._masked_global_mean(shaping, off_policy))
                m["off_policy/demo_nll"].append(-self._masked_global_mean(logps, off_policy))
