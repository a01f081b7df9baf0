"""One optimizer step of an algorithm, the same under DeepSpeed (2 processes x b rows) and alone (1 x 2b rows).

Usage (under accelerate launch): equivalence_step.py OUT_DIR MODEL ROWS_PER_PROCESS ALGORITHM [ALGORITHM ...]
For each algorithm in turn (one launch: starting the processes costs more than the steps), process 0 writes
OUT_DIR/<algorithm>.pt (torch.save): the step's logged loss and every parameter after the step.

The trainer is the one ``prefix-rft-train`` builds from the composed config (``STAGE_BUILDERS``), with
what makes the two layouts comparable:
* plain SGD at lr 1 and no clipping, so the weight change is exactly the gradient (Adam's first step would
  hide a wrong scale);
* rollouts replaced by a deterministic completion per (prompt, slot in its group), so both layouts train on
  the same tokens (every process holds whole groups: ROWS_PER_PROCESS is a multiple of the group size);
* a constant prefix ratio (no random draws, which are seeded per process) and a reward that varies on any
  model (the share of digits), so advantages are non-zero.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from ds_harness import accelerate_cpu  # noqa: E402

GROUP = 4


def digit_reward(completions, **kwargs) -> list[float]:
    """The share of digit characters in each completion (varies between rollouts of any model)."""
    texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
    return [sum(ch.isdigit() for ch in t) / max(len(t), 1) for t in texts]


def fixed_generate(tok):
    """A stand-in for GRPOTrainer._generate_single_turn: the completion depends on the prompt ids (hybrid rows
    include their prefix) and on how many identical prompts came before in the call, never on the row's
    position in the process's batch, so both layouts produce the same rollouts."""
    eos = tok.convert_tokens_to_ids("<|im_end|>")

    def generate(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        seen: dict[tuple, int] = {}
        out = []
        for prompt in prompt_ids:
            key = tuple(prompt)
            slot = seen.get(key, 0)
            seen[key] = slot + 1
            seed = (sum(prompt) + 7 * slot) % 97
            text = "ab1" * (1 + seed % 5) + str(seed) + "x" * (slot % 3)
            out.append(tok(text=text, add_special_tokens=False)["input_ids"] + [eos])
        return out, None

    return generate


def step_config(algorithm: str, model_dir: str, out_dir: Path, rows: int):
    """The composed config of one SGD step of ``rows`` rows per process."""
    from prefix_rft.config.compose import compose_config

    cfg = compose_config(
        [
            f"algorithm={algorithm}",
            f"model.name_or_path={model_dir}",
            f"output_dir={out_dir}",
            "data.synthetic.num_train=16",
            "heldout_eval.enabled=false",
            "scheduler=constant",
            "scheduler.value=0.5",
            *[
                f"{group}.{key}"
                for group in ("trainer", "sft_trainer")
                for key in (
                    f"per_device_train_batch_size={rows}",
                    "gradient_accumulation_steps=1",
                    "optim=sgd",
                    "learning_rate=1.0",
                    "lr_scheduler_type=constant",
                    "warmup_steps=0",
                    "max_grad_norm=0.0",
                    "max_steps=1",
                    "save_strategy=no",
                    "logging_steps=1",
                )
            ],
            f"trainer.num_generations={GROUP}",
            "trainer.max_completion_length=96",
            "trainer.temperature=1.0",
            "trainer.scale_rewards=none",
        ]
    )
    (reward,) = cfg.reward.funcs  # reward=accuracy: one function of weight 1
    reward.name = "equivalence_step:digit_reward"
    return cfg


def one_step(algorithm: str, model_dir: str, out_dir: Path, rows: int) -> dict:
    """Train one step; returns ``{"loss", "weights", ...}`` (the weights are complete on process 0)."""
    import torch
    from trl import GRPOTrainer

    from prefix_rft.algorithms import get_algorithm
    from prefix_rft.config.build import STAGE_BUILDERS
    from prefix_rft.config.validate import validate_train_config
    from prefix_rft.data.sources import load_train_dataset
    from prefix_rft.models.load import load_model, load_tokenizer

    cfg = step_config(algorithm, model_dir, out_dir, rows)
    validate_train_config(cfg)
    tokenizer = load_tokenizer(cfg.model)
    original = GRPOTrainer._generate_single_turn
    GRPOTrainer._generate_single_turn = fixed_generate(tokenizer)
    try:
        (kind,) = get_algorithm(algorithm).stages
        trainer = STAGE_BUILDERS[kind](cfg, load_model(cfg.model), tokenizer, load_train_dataset(cfg.data))
        trainer.train()
    finally:
        GRPOTrainer._generate_single_turn = original
    loss = next(row["loss"] for row in trainer.state.log_history if "loss" in row)
    # Under ZeRO-3 every process holds a shard: accelerate gathers the whole state dict on process 0 (the
    # others get None).
    state = trainer.accelerator.get_state_dict(trainer.model_wrapped) or {}
    weights = {name: tensor.detach().to(torch.float32).clone() for name, tensor in state.items()}
    return {
        "loss": float(loss),
        "weights": weights,
        "num_processes": trainer.accelerator.num_processes,
        "deepspeed": trainer.is_deepspeed_enabled,
        "zero_stage": trainer.accelerator.state.deepspeed_plugin.zero_stage
        if trainer.is_deepspeed_enabled
        else None,
    }


def main(out_dir: Path, model: str, rows: int, algorithms: list[str]) -> None:
    accelerate_cpu.install()
    import torch
    from accelerate import PartialState

    for algorithm in algorithms:
        result = one_step(algorithm, model, out_dir / f"run-{algorithm}", rows)
        if PartialState().is_main_process:
            torch.save(result, out_dir / f"{algorithm}.pt")
        PartialState().wait_for_everyone()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4:])
