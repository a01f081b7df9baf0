"""The ``README.md`` model card written into a run's stage folder at every checkpoint.

TRL writes its own card there, which links the base model as a hub id; a local checkpoint (every
``builtin:`` model, any folder) has none, and the card then read "fine-tuned version of
[None](https://huggingface.co/None)". This card names the base model as it was given
(``model.name_or_path``: a hub id, a path or a built-in preset), links it only when it is a hub id, and
says which algorithm and stage trained the weights.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import MethodType

CARD_FILE = "README.md"


def model_card_text(base_model: str, algorithm: str, stage: str, is_hub_id: bool) -> str:
    """The card's markdown: what the folder holds, from which base model, trained how."""
    base = f"[{base_model}](https://huggingface.co/{base_model})" if is_hub_id else f"`{base_model}`"
    return (
        "# Model trained with prefix-rft\n\n"
        f"Base model: {base}.\n\n"
        f"Trained by the `{stage}` stage of algorithm `{algorithm}` "
        "(Prefix-RFT, arXiv 2507.01679, and its baselines on TRL). The run's `config.yaml` one folder up or "
        "in this folder records every setting.\n"
    )


def install_model_card(trainer, base_model: str, algorithm: str, stage: str) -> None:
    """Make ``trainer`` write :func:`model_card_text` instead of TRL's card (main process only)."""
    from prefix_rft.models.load import BUILTIN_PREFIX, _looks_local

    is_hub_id = not (
        base_model.startswith(BUILTIN_PREFIX)
        or _looks_local(base_model)
        or os.path.exists(os.path.expanduser(base_model))
    )

    def create_model_card(self, *args, **kwargs) -> None:  # TRL's signature: model_name, dataset_name, tags
        if not self.is_world_process_zero():
            return
        out = Path(self.args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / CARD_FILE).write_text(model_card_text(base_model, algorithm, stage, is_hub_id))

    trainer.create_model_card = MethodType(create_model_card, trainer)
