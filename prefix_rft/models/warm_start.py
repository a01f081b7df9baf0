"""SFT warm start of a built-in model on synthetic problems, so RL starts from a known skill profile."""

from __future__ import annotations

import tempfile
from pathlib import Path


def warm_start(
    model_dir: str | Path,
    output_dir: str | Path,
    *,
    mixture: dict[int, float],
    num_problems: int = 20000,
    max_steps_train: int = 1000,
    lr: float = 1e-3,
    warmup_steps: int = 50,
    batch_size: int = 32,
    seed: int = 0,
    template: str = "plain",
    lr_scheduler_type: str = "cosine",
    checkpoint_every: int = 0,
    checkpoint_dir: str | Path | None = None,
) -> Path:
    """Fine-tune the model in ``model_dir`` with TRL's SFTTrainer; save it to ``output_dir``.

    ``mixture`` maps a number of steps to its share of the ``num_problems`` synthetic problems. Problems
    come from seed + 10_000, far from the seeds of training and held-out sets; the loss is on the completion
    (the demonstration) only, with the same chat template and prompt template as RL.

    ``checkpoint_every`` > 0 also saves the model every that many steps into ``checkpoint_dir``
    (``checkpoint-<step>``). With a constant learning rate (``lr_scheduler_type="constant_with_warmup"``)
    the checkpoint at step N is the model a run with ``max_steps_train=N`` ends with, so one run measures
    every candidate length of a recipe.
    """
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from prefix_rft.data.prompts import build_prompt
    from prefix_rft.data.synthetic import generate_mixture

    rows = generate_mixture(num_problems, seed=seed + 10_000, weights=mixture)
    dataset = Dataset.from_list(
        [
            {
                "prompt": build_prompt(r["problem"], template),
                "completion": [{"role": "assistant", "content": r["solution"]}],
            }
            for r in rows
        ]
    )
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    if checkpoint_every > 0 and checkpoint_dir is None:
        raise ValueError("checkpoint_every > 0 needs a checkpoint_dir")
    with tempfile.TemporaryDirectory() as scratch:
        args = SFTConfig(
            output_dir=str(checkpoint_dir) if checkpoint_every > 0 else scratch,
            max_steps=max_steps_train,
            per_device_train_batch_size=batch_size,
            learning_rate=lr,
            lr_scheduler_type=lr_scheduler_type,
            warmup_steps=warmup_steps,
            logging_steps=50,
            save_strategy="steps" if checkpoint_every > 0 else "no",
            save_steps=checkpoint_every if checkpoint_every > 0 else 500,
            save_only_model=True,
            report_to="none",
            seed=seed,
            data_seed=seed,
            use_cpu=True,
            bf16=False,
            gradient_checkpointing=False,
            max_length=512,
            disable_tqdm=True,
            dataloader_num_workers=0,
        )
        trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
        trainer.train()
    output_dir = Path(output_dir)
    trainer.model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return output_dir
