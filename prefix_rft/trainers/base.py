"""``DrGRPOTrainer``: the base of every algorithm's RL trainer, TRL's GRPOTrainer with this project's loss.

What every algorithm here shares, and nothing more:

* ``_compute_loss``: one forward pass, the Dr. GRPO clipped surrogate through the pure functions of
  :mod:`prefix_rft.losses` (identical to TRL's ``dr_grpo`` loss on on-policy rollouts), the static entropy
  bonus, and four hooks an algorithm overrides to add what it is made of:
  :meth:`~DrGRPOTrainer._policy_loss` (the surrogate and its token masks: Prefix-RFT masks prefix tokens),
  :meth:`~DrGRPOTrainer._policy_token_weights` (SRFT's entropy weights), :meth:`~DrGRPOTrainer._same_pass_loss`
  (a term from the same log-probs: SRFT's SFT term) and the loss metrics.
* ``_calculate_rewards`` keeps TRL's rewards and remembers them (:meth:`~DrGRPOTrainer._global_rewards`:
  HPT's gate, ReLIFT's buffer, POPE's failed groups, the reward split a trainer logs).
* Demonstration ids under the policy tokenizer, cached (:meth:`~DrGRPOTrainer._demo_ids`).

Its config, :class:`DrGRPOConfig`, holds no knob: it checks that TRL's ``loss_type`` is one whose reduction
the loss reproduces and refuses every TRL loss setting the replaced ``_compute_loss`` would ignore
(:mod:`prefix_rft.trainers.trl_loss_fields`). Rollouts, vLLM, rewards, logging and checkpoints stay TRL's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from trl import GRPOTrainer

from prefix_rft.data.columns import DEMONSTRATION
from prefix_rft.errors import one_of
from prefix_rft.losses import prefix_rft_policy_loss
from prefix_rft.trainers.algorithm_config import AlgorithmConfig
from prefix_rft.trainers.trl_loss_fields import refuse_unhonoured_loss_fields

# TRL loss types whose reduction the loss reproduces (prefix_rft.losses.aggregate_loss).
PREFIX_LOSS_TYPES = ("dr_grpo", "grpo", "bnpo")
# Named in the start-up error when a TRL loss setting would be ignored.
LOSS_OWNER = "DrGRPOTrainer (and every trainer built on it)"


@dataclass
class DrGRPOConfig(AlgorithmConfig):
    """The loss every trainer built on :class:`DrGRPOTrainer` shares: no knob, TRL's loss settings checked."""

    def check(self, args) -> None:
        one_of("trainer.loss_type", args.loss_type, PREFIX_LOSS_TYPES)
        refuse_unhonoured_loss_fields(args, LOSS_OWNER)

    def trainer_kwargs(self, prefix_scheduler: Any = None) -> dict[str, Any]:
        return {"algorithm": self}


class DrGRPOTrainer(GRPOTrainer):
    """GRPOTrainer whose loss is :func:`prefix_rft.losses.prefix_rft_policy_loss` with hooks for algorithms.

    Args:
        algorithm: the algorithm's knobs (:class:`DrGRPOConfig` or a subclass); checked again here against
            the ``GRPOConfig`` the trainer actually got.
        All other arguments are GRPOTrainer's.
    """

    def __init__(self, *args, algorithm: DrGRPOConfig, **kwargs):
        super().__init__(*args, **kwargs)
        self.algorithm = algorithm
        algorithm.check(self.args)
        if self.tools or self.rollout_func is not None:
            raise ValueError(f"{type(self).__name__} does not support tools or a custom rollout_func")
        self._rewards_per_func: torch.Tensor | None = None
        self._demo_token_cache: dict[str, list[int]] = {}

    # ------------------------------------------------------------------ demonstrations
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

    # ------------------------------------------------------------------ rewards
    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._rewards_per_func = rewards_per_func  # gathered over processes
        return rewards_per_func

    def _global_rewards(self) -> torch.Tensor:
        """The weighted total reward of every row of the batch over all processes (NaN: unscorable)."""
        weights = self.reward_weights.to(self._rewards_per_func.device)
        rewards = (self._rewards_per_func * weights.unsqueeze(0)).nansum(dim=1)
        rewards[torch.isnan(self._rewards_per_func).all(dim=1)] = torch.nan
        return rewards

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
    def _compute_loss(self, model, inputs):
        prompt_ids, prompt_mask = inputs["prompt_ids"], inputs["prompt_mask"]
        completion_ids, completion_mask = inputs["completion_ids"], inputs["completion_mask"]
        input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
        attention_mask = torch.cat([prompt_mask, completion_mask], dim=1)
        logps, entropies, _ = self._get_per_token_logps_and_entropies(
            model, input_ids, attention_mask, completion_ids.size(1), compute_entropy=True
        )
        loss_mask = completion_mask.bool()
        old_logps = inputs.get("old_per_token_logps")
        old_logps = logps.detach() if old_logps is None else old_logps
        importance = inputs.get("importance_sampling_ratio") if self.use_vllm else None
        mode = "train" if self.model.training else "eval"
        loss = self._policy_loss(inputs, logps, old_logps, entropies.detach(), loss_mask, importance, mode)
        if mode == "train":
            loss = loss / self.current_gradient_accumulation_steps
        # Terms of subclasses that reuse this forward pass (already scaled for gradient accumulation).
        loss = loss + self._same_pass_loss(inputs, logps, entropies.detach(), loss_mask, mode)
        if self.args.entropy_coef:
            token_mean_entropy = (entropies * loss_mask).sum() / loss_mask.sum().clamp(min=1)
            scale = self.current_gradient_accumulation_steps if mode == "train" else 1.0
            loss = loss - self.args.entropy_coef * token_mean_entropy / scale
        return loss

    def _policy_loss(
        self, inputs, logps, old_logps, entropies, loss_mask, importance, mode: str
    ) -> torch.Tensor:
        """The clipped surrogate of this micro-batch (before the gradient-accumulation scaling), with its
        metrics: Dr. GRPO on every completion token here (no prefix, no off-policy row)."""
        no_prefix = torch.zeros_like(loss_mask)
        loss, stats = prefix_rft_policy_loss(
            logps,
            old_logps,
            inputs["advantages"],
            loss_mask,
            no_prefix,
            no_prefix,
            epsilon_low=self.epsilon_low,
            epsilon_high=self.epsilon_high,
            loss_type=self.loss_type,
            max_completion_length=self.max_completion_length,
            importance_weights=importance,
            token_weights=self._policy_token_weights(inputs, entropies, loss_mask, mode),
        )
        self._log_loss_metrics(mode, stats, entropies, loss_mask, no_prefix)
        return loss

    def _policy_token_weights(self, inputs, entropies, loss_mask, mode: str) -> torch.Tensor | None:
        """Per-token weights of the policy loss, ``(B, T)`` without gradient; None (all 1) here."""
        return None

    def _same_pass_loss(self, inputs, logps, entropies, loss_mask, mode: str) -> torch.Tensor | float:
        """An extra loss term computed from this micro-batch's completion log-probs; 0 here."""
        return 0.0

    def _masked_global_mean(self, values: torch.Tensor, mask: torch.Tensor) -> float:
        """Mean of ``values`` over ``mask`` across all processes (NaN when the mask is empty everywhere)."""
        stats = torch.stack([(values * mask).sum(), mask.sum().float()])
        total, count = self.accelerator.reduce(stats, reduction="sum").tolist()
        return total / count if count else float("nan")

    def _log_loss_metrics(self, mode, stats, entropies, loss_mask, prefix_mask) -> None:
        """Entropy (all and continuation tokens) and the clip fractions of the surrogate."""
        m = self._metrics[mode]
        continuation = loss_mask & ~prefix_mask
        m["entropy"].append(self._masked_global_mean(entropies, loss_mask))
        m["entropy/continuation"].append(self._masked_global_mean(entropies, continuation))
        for key in ("clip_ratio/low_mean", "clip_ratio/high_mean", "clip_ratio/region_mean"):
            m[key].append(self.accelerator.gather(stats[key].detach().reshape(1)).mean().item())
