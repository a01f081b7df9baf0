"""SFT on demonstrations with TRL's ``SFTTrainer``: the data side (the trainer itself is TRL's, unchanged)."""

from __future__ import annotations

from datasets import Dataset

from prefix_rft.data.columns import DEMONSTRATION, PROMPT
from prefix_rft.errors import DataError


def demonstrations_dataset(train_dataset: Dataset, column: str = DEMONSTRATION) -> Dataset:
    """Prompt-completion rows for SFTTrainer: the RL prompt (same template) and one assistant turn per
    demonstration. Rows with several demonstrations give one example each; rows without one are dropped.

    SFTTrainer computes the loss on the completion only for prompt-completion data.
    """
    if column not in train_dataset.column_names:
        raise DataError(
            f"SFT needs demonstrations: the training data has no {column!r} column "
            f"(columns: {train_dataset.column_names}); set data.demonstration_column"
        )
    rows = []
    for row in train_dataset:
        demos = row[column]
        demos = demos if isinstance(demos, (list, tuple)) else [demos]
        for demo in demos:
            if demo:
                rows.append({"prompt": row[PROMPT], "completion": [{"role": "assistant", "content": demo}]})
    if not rows:
        raise DataError(f"SFT needs demonstrations: no row of the training data has a non-empty {column!r}")
    return Dataset.from_list(rows)
