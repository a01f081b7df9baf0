"""How a model is loaded: the options shared by training (``model.*``) and evaluation (top-level keys).

One dataclass, inherited by :class:`prefix_rft.config.schema.ModelConfig` and
:class:`prefix_rft.eval.config.EvalConfig`, and read by :mod:`prefix_rft.models.load`.
Kept free of heavy imports (the evaluation command does not load TRL).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

# OmegaConf cannot validate PEP 604 unions, so ``Optional[...]`` is used in config dataclasses.
# ruff: noqa: UP045


@dataclass
class ModelOptions:
    """Options of ``from_pretrained`` and of the tokenizer's chat template."""

    # Hub revision (branch, tag or commit) of the weights.
    revision: Optional[str] = None
    # Weight dtype: auto, bfloat16, float16 or float32.
    dtype: str = "auto"
    # attn_implementation passed to from_pretrained (eager, sdpa, flash_attention_2); None = transformers' choice.
    attn_implementation: Optional[str] = None
    # Allow custom modelling code from the hub.
    trust_remote_code: bool = False
    # Chat template: None keeps the tokenizer's own, a name from prefix_rft.models.chat_templates, or a Jinja string.
    chat_template: Optional[str] = None
    # Overrides applied to the model's config before loading (e.g. rope_theta / max_position_embeddings
    # for the 16k-context Qwen2.5-Math variant).
    config_overrides: dict[str, Any] = field(default_factory=dict)
