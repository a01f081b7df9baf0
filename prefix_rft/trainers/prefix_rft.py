"""``PrefixRFTTrainer``: TRL's GRPOTrainer with prefix-sampled hybrid rollouts and an entropy-masked loss.

Four TRL hooks change (everything else - data loading, vLLM sync, reward functions, logging, checkpoints -
is TRL's; ``tests/test_trl_seam.py`` computes the list from the class):

* ``_generate_and_score_completions`` plans which rollouts of each group are hybrid, lets TRL
  generate and score them, then adds the per-token ``prefix_mask`` to the batch.
* ``_generate_single_turn`` appends each hybrid's demonstration prefix (token ids) to its prompt,
  generates the continuation (at most ``max_completion_length - L`` tokens; whole demonstrations are not
  sent to the engine), and returns ``prefix ids + continuation`` as the completion.
* ``_calculate_rewards`` keeps TRL's rewards and remembers them (the hybrid/on-policy reward split it logs,
  and the ``on_policy`` advantage baseline).
* ``_compute_loss`` computes the Dr. GRPO clipped surrogate with the prefix-token update policy,
  through the pure functions in :mod:`prefix_rft.losses`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from trl import GRPOTrainer

from prefix_rft.data.columns import DEMONSTRATION
from prefix_rft.errors import ConfigError, one_of
from prefix_rft.losses import (
    ADVANTAGE_BASELINES,
    PREFIX_UPDATE_MODES,
    group_advantages,
    policy_shaping,
    prefix_rft_policy_loss,
    prefix_update_mask,
    top_fraction_threshold,
)
from prefix_rft.prefix.sampling import prefix_length
from prefix_rft.prefix.scheduler_state import PrefixSchedulerState
from prefix_rft.prefix.schedulers import PrefixRatioScheduler, step_generator
from prefix_rft.trainers.algorithm_config import AlgorithmConfig, knob
from prefix_rft.trainers.engine_rows import per_row_budgets, rows_to_generate
from prefix_rft.trainers.trl_loss_fields import refuse_unhonoured_loss_fields

# TRL loss types whose reduction the prefix loss reproduces (prefix_rft.losses.aggregate_loss).
PREFIX_LOSS_TYPES = ("dr_grpo", "grpo", "bnpo")
OFF_POLICY_LOSSES = ("clipped", "shaped")


@dataclass
class PrefixRFTConfig(AlgorithmConfig):
    """Prefix-RFT's knobs: hybrid rollouts that continue a demonstration prefix, entropy-masked update."""

    num_prefixed: int = knob(
        1, "Hybrid rollouts per group that start from a demonstration prefix (paper: 1; 0 = RFT)."
    )
    prefix_update: str = knob(
        "entropy_top",
        f"Which prefix tokens keep their advantage: one of {', '.join(PREFIX_UPDATE_MODES)}.",
    )
    keep_fraction: float = knob(
        0.2, "Fraction of prefix tokens updated by entropy_top/entropy_bottom/random (paper: 0.2)."
    )
    advantage_baseline: str = knob(
        "group", "Advantage baseline: group (Dr. GRPO over the whole group, paper) or on_policy (ablation)."
    )
    min_prefix_tokens: int = knob(1, "Shortest prefix in tokens.")
    allow_full_prefix: bool = knob(
        False, "Allow a prefix to cover the whole demonstration (LUFFY-style off-policy rollout, ratio 1)."
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
        one_of("algorithm.prefix_update", self.prefix_update, PREFIX_UPDATE_MODES)
        one_of("algorithm.advantage_baseline", self.advantage_baseline, ADVANTAGE_BASELINES)
        one_of("algorithm.off_policy_loss", self.off_policy_loss, OFF_POLICY_LOSSES)
        if not 0 <= self.num_prefixed <= args.num_generations:
            raise ConfigError(
                f"algorithm.num_prefixed={self.num_prefixed} must be between 0 and "
                f"trainer.num_generations={args.num_generations}"
            )
        if not 0.0 < self.keep_fraction <= 1.0:
            raise ConfigError(f"algorithm.keep_fraction={self.keep_fraction} must be in (0, 1]")
        if self.off_policy_loss == "shaped" and not self.allow_full_prefix:
            raise ConfigError(
                "algorithm.off_policy_loss=shaped applies to full-demonstration rollouts only: set "
                "algorithm.allow_full_prefix=true (and a scheduler that reaches ratio 1, e.g. scheduler=full)"
            )
        if self.shaping_gamma <= 0:
            raise ConfigError(f"algorithm.shaping_gamma={self.shaping_gamma} must be > 0")
        one_of("trainer.loss_type", args.loss_type, PREFIX_LOSS_TYPES)
        refuse_unhonoured_loss_fields(args, "PrefixRFTTrainer (and every trainer built on it)")

    def needs_demonstrations(self) -> bool:
        return self.num_prefixed > 0

    def trainer_kwargs(self, prefix_scheduler) -> dict[str, Any]:
        return {"algorithm": self, "prefix_scheduler": prefix_scheduler}


@dataclass
class LUFFYConfig(PrefixRFTConfig):
    """LUFFY: one rollout per group is the whole demonstration, trained with policy shaping."""

    num_prefixed: int = knob(1, "Off-policy (full-demonstration) rollouts per group (LUFFY: 1).")
    prefix_update: str = knob("all", "Which prefix tokens keep their advantage (LUFFY: all).")
    allow_full_prefix: bool = knob(True, "A prefix may cover the whole demonstration (LUFFY: always).")
    off_policy_loss: str = knob("shaped", "Loss of full-demonstration rollouts (LUFFY: shaped).")


class PrefixRFTTrainer(GRPOTrainer):
    """GRPOTrainer whose groups contain ``num_prefixed`` rollouts that continue a demonstration prefix.

    Args:
        algorithm: the method's knobs (:class:`PrefixRFTConfig` or a subclass).
        prefix_scheduler: draws the prefix ratio ``l`` for each hybrid rollout from the global step.
        All other arguments are GRPOTrainer's.
    """

    def __init__(self, *args, algorithm: PrefixRFTConfig, prefix_scheduler: PrefixRatioScheduler, **kwargs):
        super().__init__(*args, **kwargs)
        self.algorithm = algorithm
        # The same checks as at start-up, now against the GRPOConfig this trainer actually got.
        algorithm.check(self.args)
        if self.tools or self.rollout_func is not None:
            raise ValueError("PrefixRFTTrainer does not support tools or a custom rollout_func")
        # The scheduler lives in a stateful callback so that checkpoints carry it (see scheduler_state.py).
        self.add_callback(PrefixSchedulerState.from_scheduler(prefix_scheduler))
        self._prefix_plan: list[list[int] | None] | None = None
        self._full_rows: set[int] = set()
        self._prefix_lengths: list[int] | None = None
        self._rewards_per_func: torch.Tensor | None = None
        self._demo_token_cache: dict[str, list[int]] = {}

    @property
    def prefix_scheduler(self) -> PrefixRatioScheduler:
        """The prefix-ratio scheduler (the restored one after resuming from a checkpoint)."""
        for callback in self.callback_handler.callbacks:
            if isinstance(callback, PrefixSchedulerState):
                return callback.scheduler
        raise RuntimeError("PrefixSchedulerState callback is missing")

    # ------------------------------------------------------------------ rollouts
    @staticmethod
    def _pick_demonstration(row: dict[str, Any], gen: torch.Generator) -> str | None:
        """The row's demonstration; one drawn with ``gen`` when the column holds several; None if empty."""
        demos = row.get(DEMONSTRATION)
        if isinstance(demos, (list, tuple)):
            demos = [d for d in demos if d]
            return demos[int(torch.randint(len(demos), (1,), generator=gen))] if demos else None
        return demos or None

    def _demo_ids(self, demo: str) -> list[int]:
        """Demonstration token ids under the policy tokenizer (cached: demonstrations repeat every epoch)."""
        ids = self._demo_token_cache.get(demo)
        if ids is None:
            ids = self.processing_class(text=demo, add_special_tokens=False)["input_ids"]
            if len(self._demo_token_cache) < 100_000:
                self._demo_token_cache[demo] = ids
        return ids

    def _demo_target_ids(self, demo: str) -> list[int]:
        """A demonstration as a supervised target: its ids cut to the completion budget, then end-of-turn."""
        return list(self._demo_ids(demo))[: self.max_completion_length - 1] + [self.eos_token_ids[0]]

    def _draw_stream(self) -> int:
        """Random stream of this process and rollout round: one optimizer step can hold several generation
        rounds (gradient_accumulation_steps > steps_per_generation), each needing fresh ratio draws. The round
        index restarts with every optimizer step, so a run resumed at a step boundary draws the same ratios."""
        args = self.args
        rounds = max(args.gradient_accumulation_steps // max(args.steps_per_generation, 1), 1)
        round_idx = (self._step // (args.steps_per_generation * self.num_iterations)) % rounds
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

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._rewards_per_func = rewards_per_func  # gathered over processes; used for hybrid metrics
        return rewards_per_func

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

    def _global_rewards(self) -> torch.Tensor:
        weights = self.reward_weights.to(self._rewards_per_func.device)
        rewards = (self._rewards_per_func * weights.unsqueeze(0)).nansum(dim=1)
        rewards[torch.isnan(self._rewards_per_func).all(dim=1)] = torch.nan
        return rewards

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
            low, high = self.prefix_scheduler.bounds(self.state.global_step)
            m["prefix/ratio_low"].append(low)
            m["prefix/ratio_high"].append(high)
        self._log_reward_split(m, all_hybrid, "rewards/hybrid_mean", "rewards/on_policy_mean")

    def _log_reward_split(self, metrics, rows: torch.Tensor, inside: str, outside: str) -> None:
        """Log the mean reward of the batch's ``rows`` (a bool mask over all processes' rows) as ``inside``
        and of the other rows as ``outside``; a side with no row logs nothing."""
        if self._rewards_per_func is None:
            return
        rewards = self._global_rewards()
        mask = rows.to(rewards.device)
        if mask.any():
            metrics[inside].append(torch.nanmean(rewards[mask]).item())
        if not mask.all():
            metrics[outside].append(torch.nanmean(rewards[~mask]).item())

    # ------------------------------------------------------------------ loss
    def _global_threshold(self, values: torch.Tensor, largest: bool) -> torch.Tensor | None:
        """The keep threshold over the prefix tokens of every process (the same on all of them)."""
        sentinel = -1e9  # entropies are >= 0, so the padding sentinel can never be a real value
        padded = self.accelerator.pad_across_processes(values.float(), dim=0, pad_index=sentinel)
        gathered = self.accelerator.gather(padded)
        gathered = gathered[gathered != sentinel]
        return top_fraction_threshold(gathered, self.algorithm.keep_fraction, largest=largest)

    def _compute_loss(self, model, inputs):
        prompt_ids, prompt_mask = inputs["prompt_ids"], inputs["prompt_mask"]
        completion_ids, completion_mask = inputs["completion_ids"], inputs["completion_mask"]
        input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
        attention_mask = torch.cat([prompt_mask, completion_mask], dim=1)
        logps, entropies, _ = self._get_per_token_logps_and_entropies(
            model, input_ids, attention_mask, completion_ids.size(1), compute_entropy=True
        )
        loss_mask = completion_mask.bool()
        prefix_mask = inputs.get("prefix_mask", torch.zeros_like(completion_mask)).bool() & loss_mask
        mode_name = self.algorithm.prefix_update
        threshold = None
        if mode_name in ("entropy_top", "entropy_bottom"):
            threshold = self._global_threshold(
                entropies.detach()[prefix_mask], largest=mode_name == "entropy_top"
            )
        keep_mask = prefix_update_mask(
            prefix_mask,
            loss_mask,
            entropies.detach(),
            mode_name,
            keep_fraction=self.algorithm.keep_fraction,
            threshold=threshold,
        )
        old_logps = inputs.get("old_per_token_logps")
        old_logps = logps.detach() if old_logps is None else old_logps
        importance = inputs.get("importance_sampling_ratio") if self.use_vllm else None
        off_policy = None
        if self.algorithm.off_policy_loss == "shaped" and "off_policy_mask" in inputs:
            off_policy = inputs["off_policy_mask"].bool() & loss_mask
        # LUFFY's published script removes clipping from on-policy tokens too (on_policy_clip=False).
        eps_low, eps_high = (
            (self.epsilon_low, self.epsilon_high) if self.algorithm.on_policy_clip else (math.inf, math.inf)
        )
        mode = "train" if self.model.training else "eval"
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
            shaping_gamma=self.algorithm.shaping_gamma,
            importance_weights=importance,
            token_weights=self._policy_token_weights(inputs, entropies.detach(), loss_mask, mode),
        )
        if mode == "train":
            loss = loss / self.current_gradient_accumulation_steps
        # Terms of subclasses that reuse this forward pass (already scaled for gradient accumulation).
        loss = loss + self._same_pass_loss(inputs, logps, entropies.detach(), loss_mask, mode)
        if self.args.entropy_coef:
            token_mean_entropy = (entropies * loss_mask).sum() / loss_mask.sum().clamp(min=1)
            scale = self.current_gradient_accumulation_steps if mode == "train" else 1.0
            loss = loss - self.args.entropy_coef * token_mean_entropy / scale
        self._log_loss_metrics(
            mode, stats, logps.detach(), entropies.detach(), loss_mask, prefix_mask, keep_mask
        )
        if off_policy is not None:
            n_off = self.accelerator.reduce(off_policy.sum().float(), reduction="sum").item()
            if n_off:
                shaping = policy_shaping(logps.detach(), self.algorithm.shaping_gamma)
                self._metrics[mode]["off_policy/shaping_weight_mean"].append(
                    self._masked_global_mean(shaping, off_policy)
                )
                self._metrics[mode]["off_policy/demo_nll"].append(
                    -self._masked_global_mean(logps.detach(), off_policy)
                )
        return loss

    def _policy_token_weights(self, inputs, entropies, loss_mask, mode: str) -> torch.Tensor | None:
        """Per-token weights of the policy loss, ``(B, T)`` without gradient; None (all 1) here."""
        return None

    def _same_pass_loss(self, inputs, logps, entropies, loss_mask, mode: str) -> torch.Tensor | float:
        """An extra loss term computed from this micro-batch's completion log-probs; 0 here."""
        return 0.0

    def _masked_global_mean(self, values: torch.Tensor, mask: torch.Tensor) -> float:
        stats = torch.stack([(values * mask).sum(), mask.sum().float()])
        total, count = self.accelerator.reduce(stats, reduction="sum").tolist()
        return total / count if count else float("nan")

    def _log_loss_metrics(self, mode, stats, logps, entropies, loss_mask, prefix_mask, keep_mask) -> None:
        m = self._metrics[mode]
        continuation = loss_mask & ~prefix_mask
        m["entropy"].append(self._masked_global_mean(entropies, loss_mask))
        m["entropy/continuation"].append(self._masked_global_mean(entropies, continuation))
        for key in ("clip_ratio/low_mean", "clip_ratio/high_mean", "clip_ratio/region_mean"):
            m[key].append(self.accelerator.gather(stats[key].detach().reshape(1)).mean().item())
        n_prefix = self.accelerator.reduce(prefix_mask.sum().float(), reduction="sum").item()
        if n_prefix:
            m["entropy/prefix"].append(self._masked_global_mean(entropies, prefix_mask))
            # NLL of the demonstration prefixes under the current policy: the paper's "SFT loss" trace.
            m["prefix/demo_nll"].append(-self._masked_global_mean(logps, prefix_mask))
            kept = self.accelerator.reduce((keep_mask & prefix_mask).sum().float(), reduction="sum").item()
            m["prefix/update_fraction"].append(kept / n_prefix)
