"""A short SFT warm start on easy synthetic problems, so the tiny policy has a non-zero reward for RL."""

from __future__ import annotations

import tempfile
from pathlib import Path


def warm_start(
    model_dir: str | Path,
    output_dir: str | Path,
    *,
    num_problems: int = 3000,
    min_steps: int = 1,
    max_steps: int = 2,
    max_steps_train: int = 400,
    lr: float = 3e-3,
    batch_size: int = 32,
    seed: int = 0,
    template: str = "qwen_math",
) -> Path:
    """Fine-tune the model in ``model_dir`` with TRL's SFTTrainer on easy problems; save to ``output_dir``.

    Problems use seeds far from the ones of the training/eval sets (seed + 10_000), and the loss is on
    the completion (the demonstration) only, with the same chat template and prompt as RL.
    """
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from prefix_rft.data.prompts import build_prompt
    from prefix_rft.data.synthetic import generate_problems

    rows = generate_problems(num_problems, seed=seed + 10_000, min_steps=min_steps, max_steps=max_steps)
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
    with tempfile.TemporaryDirectory() as scratch:
        args = SFTConfig(
            output_dir=scratch,
            max_steps=max_steps_train,
            per_device_train_batch_size=batch_size,
            learning_rate=lr,
            lr_scheduler_type="cosine",
            warmup_steps=20,
            logging_steps=50,
            save_strategy="no",
            report_to="none",
            seed=seed,
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
