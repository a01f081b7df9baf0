"""``ReLIFTTrainer``: RL every step, SFT steps on the demonstrations of the prompts RL cannot solve.

ReLIFT (Ma et al., arXiv 2506.07527). Rollouts are TRL's, the policy loss the base trainer's Dr. GRPO
(:class:`~prefix_rft.trainers.base.DrGRPOTrainer`). After each generation, every prompt whose group of
rollouts all scored 0 enters a buffer with its demonstration (:mod:`relift_buffer`). When the buffer
holds ``sft_buffer_size`` prompts, the next optimizer step starts with one SFT step on them (before its
first micro-batch, never between micro-batches of an accumulated step, so the RL update does not depend on
how gradient accumulation splits the batch): token-mean NLL of the demonstrations over the whole buffer,
its own AdamW optimizer and learning rate, gradient clipping at ``max_grad_norm``. Any RL gradients present
are set aside during the SFT step and put back.

The buffer and the SFT optimizer are saved in every checkpoint (``relift_state.json``,
``relift_sft_optimizer.pt``) and restored on resume.

Not supported: DeepSpeed and FSDP (their sharded parameters cannot take a second optimizer: ZeRO-1/2 keep a
master copy of the weights that would overwrite the SFT update at the next step, ZeRO-3 and FSDP leave each
process only a shard of every parameter); the run is refused at start-up (:func:`sharded_training`); use DDP.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from prefix_rft.cost.counters import record_cost
from prefix_rft.errors import ConfigError
from prefix_rft.launch_env import LAUNCH_TOOLS, launched_with
from prefix_rft.trainers.algorithm_config import knob
from prefix_rft.trainers.base import DrGRPOTrainer
from prefix_rft.trainers.demonstrations import (
    SupervisedTermConfig,
    demonstration_logps,
    demonstration_text,
    pad_ids,
)
from prefix_rft.trainers.relift_buffer import SFTBuffer, failed_groups

STATE_FILE = "relift_state.json"
OPTIMIZER_FILE = "relift_sft_optimizer.pt"


@dataclass
class ReLIFTConfig(SupervisedTermConfig):
    """ReLIFT: Dr. GRPO every step, SFT steps on a buffer of the prompts whose rollouts all failed."""

    sft_buffer_size: int = knob(
        128, "Prompts the buffer of failed prompts holds before one SFT step runs on them (published: 128)."
    )
    sft_learning_rate: float = knob(
        1.0e-6, "Learning rate of the SFT steps' own AdamW optimizer (published: 1e-6)."
    )

    def check(self, args) -> None:
        super().check(args)
        if self.sft_buffer_size < 1:
            raise ConfigError(f"algorithm.sft_buffer_size={self.sft_buffer_size} must be >= 1")
        if self.sft_learning_rate <= 0:
            raise ConfigError(f"algorithm.sft_learning_rate={self.sft_learning_rate} must be > 0")
        sharded = sharded_training(args)
        if sharded:
            # Refused before any model is loaded (see the module docstring for why it cannot work).
            raise ConfigError(
                f"algorithm=relift needs DDP or a single process, not {sharded}: its SFT optimizer cannot "
                "update DeepSpeed/FSDP-sharded parameters (use recipes/accelerate_configs/ddp.yaml)"
            )


def sharded_training(args) -> str | None:
    """How the run shards its parameters, if it does: a DeepSpeed or FSDP setting of the trainer arguments,
    or of the environment ``accelerate launch`` gives each process; None for DDP or one process."""
    if getattr(args, "deepspeed", None):
        return "trainer.deepspeed"
    if getattr(args, "fsdp", None):
        return "trainer.fsdp"
    for tool in LAUNCH_TOOLS:
        if launched_with(tool):
            return f"accelerate launch with a {'DeepSpeed' if tool == 'DEEPSPEED' else 'FSDP'} config"
    return None


class ReLIFTTrainer(DrGRPOTrainer):
    """DrGRPOTrainer plus ReLIFT's buffer of hard prompts and SFT steps."""

    algorithm: ReLIFTConfig

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.is_deepspeed_enabled or self.is_fsdp_enabled:
            raise ValueError(
                "algorithm=relift needs DDP or a single process: its SFT optimizer cannot run on "
                "DeepSpeed/FSDP-sharded parameters"
            )
        self.buffer = SFTBuffer(self.algorithm.sft_buffer_size)
        self._sft_optimizer: torch.optim.Optimizer | None = None

    # ------------------------------------------------------------------ collection
    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        if self.model.training and self._rewards_per_func is not None:
            self._collect_failed(inputs, output)
        return output

    def _collect_failed(self, inputs, output) -> None:
        """Add this process's prompts whose whole group failed; every process ends with the same buffer."""
        rewards = self._global_rewards().tolist()
        failed = set(failed_groups(rewards, self.num_generations))
        offset = self.accelerator.process_index * len(inputs)
        local = []
        for i, row in enumerate(inputs):
            g, slot = divmod(offset + i, self.num_generations)
            demo = demonstration_text(row)
            if slot != 0 or g not in failed or demo is None:
                continue
            prompt = output["prompt_ids"][i][output["prompt_mask"][i].bool()].tolist()
            demo_ids = self._demo_target_ids(demo)
            local.append({"prompt_ids": prompt, "demo_ids": demo_ids})
        from accelerate.utils import gather_object

        entries = gather_object([local]) if self.accelerator.num_processes > 1 else [local]
        for chunk in entries:
            self.buffer.add(chunk)
        m = self._metrics["train"]
        m["relift/failed_prompt_fraction"].append(len(failed) / max(len(rewards) // self.num_generations, 1))
        m["relift/buffer_size"].append(float(len(self.buffer)))

    # ------------------------------------------------------------------ SFT step
    def _get_sft_optimizer(self) -> torch.optim.Optimizer:
        if self._sft_optimizer is None:
            params = [p for p in self.model.parameters() if p.requires_grad]
            self._sft_optimizer = torch.optim.AdamW(
                params, lr=self.algorithm.sft_learning_rate, weight_decay=0.0
            )
        return self._sft_optimizer

    def training_step(self, model, inputs, num_items_in_batch=None):
        # Only at the first micro-batch of an optimizer step: an SFT step in the middle of accumulation would
        # make the later micro-batches' RL gradients come from different weights than the earlier ones.
        if self.buffer.ready() and self._step % self.current_gradient_accumulation_steps == 0:
            self._sft_step(model)
        return super().training_step(model, inputs, num_items_in_batch)

    def _sft_step(self, model) -> None:
        """One SFT step on the newest ``sft_buffer_size`` buffered prompts, shared out over processes."""
        batch = self.buffer.take()
        world, rank = self.accelerator.num_processes, self.accelerator.process_index
        shard = batch[rank::world]
        # Every process runs the same number of forward/backward passes (DDP collectives); short shards
        # are padded with empty rows whose loss is 0.
        per_process = math.ceil(len(batch) / world)
        micro = self.algorithm.sft_micro_batch_size
        n_micro = math.ceil(per_process / micro)
        shard = shard + [None] * (n_micro * micro - len(shard))
        device = self.accelerator.device
        local = [
            sum(len(e["demo_ids"]) for e in shard if e is not None),
            sum(len(e["prompt_ids"]) for e in shard if e is not None),
        ]
        total_tokens, prompt_tokens = self.accelerator.reduce(
            torch.tensor(local, dtype=torch.long, device=device), reduction="sum"
        ).tolist()

        params = [p for p in self.model.parameters() if p.requires_grad]
        stashed = [p.grad for p in params]  # the RL gradients accumulated so far
        for p in params:
            p.grad = None
        optimizer = self._get_sft_optimizer()
        nll_sum = 0.0
        was_training = model.training
        model.train()
        for k in range(n_micro):
            rows = shard[k * micro : (k + 1) * micro]
            pad = self.processing_class.pad_token_id
            prompt_ids, prompt_mask = pad_ids(
                [e["prompt_ids"] if e else [pad] for e in rows], pad, side="left", device=device
            )
            demo_ids, demo_mask = pad_ids([e["demo_ids"] if e else [pad] for e in rows], pad, device=device)
            empty = torch.tensor([e is None for e in rows], device=device)
            demo_mask = demo_mask.masked_fill(empty.unsqueeze(1), 0)
            logps = demonstration_logps(self, model, prompt_ids, prompt_mask, demo_ids, demo_mask)
            token_nll = -(logps * demo_mask).sum()
            nll_sum += token_nll.item()
            # DDP averages gradients over processes, so scale by `world` to get the global token mean.
            self.accelerator.backward(token_nll * world / max(total_tokens, 1.0))
        if world > 1:
            # Inside gradient accumulation DDP may not have synchronised: average explicitly (idempotent).
            for p in params:
                if p.grad is not None:
                    p.grad = self.accelerator.reduce(p.grad, reduction="mean")
        if self.args.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(params, self.args.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        for p, g in zip(params, stashed):
            p.grad = g
        model.train(was_training)
        nll_total = self.accelerator.reduce(torch.tensor(nll_sum, device=device), reduction="sum").item()
        m = self._metrics["train"]
        m["relift/sft_loss"].append(nll_total / max(total_tokens, 1.0))
        m["relift/sft_tokens"].append(total_tokens)
        m["relift/sft_steps"].append(float(self.buffer.num_sft_steps))
        record_cost(
            self, trained_sft_tokens=total_tokens, forward_backward_tokens=total_tokens + prompt_tokens
        )

    # ------------------------------------------------------------------ checkpoints
    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        folder = Path(self._get_output_dir(trial=trial)) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        if self.args.should_save and folder.is_dir():
            (folder / STATE_FILE).write_text(json.dumps(self.buffer.state_dict()))
            if self._sft_optimizer is not None:
                torch.save(self._sft_optimizer.state_dict(), folder / OPTIMIZER_FILE)

    def _load_optimizer_and_scheduler(self, checkpoint):
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is None:
            return
        state_path = os.path.join(checkpoint, STATE_FILE)
        if os.path.isfile(state_path):
            with open(state_path) as f:
                self.buffer.load_state_dict(json.load(f))
        optimizer_path = os.path.join(checkpoint, OPTIMIZER_FILE)
        if os.path.isfile(optimizer_path):
            state = torch.load(optimizer_path, map_location=self.accelerator.device, weights_only=True)
            self._get_sft_optimizer().load_state_dict(state)
