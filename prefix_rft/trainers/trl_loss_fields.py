"""TRL loss settings that a trainer with its own ``_compute_loss`` would silently ignore.

``DrGRPOTrainer`` (:mod:`prefix_rft.trainers.base`, and every trainer built on it) replaces TRL's
``GRPOTrainer._compute_loss`` with the pure functions of :mod:`prefix_rft.losses`. TRL's loss reads more ``GRPOConfig`` fields than that
replacement does; a value set for one of them would be accepted by TRL and then have no effect. So each
field TRL's loss reads is listed here, either as honoured (read, with the same meaning, by the
replacement or by TRL code the replacement keeps) or as refused: set to anything but the value the
replacement behaves as, it stops the run at start-up with one line naming the field.
``tests/test_trl_seam.py`` reads TRL's ``_compute_loss`` and fails when it reads a field listed in
neither table, so a TRL upgrade cannot add a silently ignored setting.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from prefix_rft.errors import ConfigError

# Fields TRL's _compute_loss reads that the replacement honours, and where.
HONOURED_LOSS_FIELDS: dict[str, str] = {
    "loss_type": "checked against the reductions prefix_rft.losses.aggregate_loss implements",
    "epsilon": "the clip range (TRL's epsilon_low)",
    "epsilon_high": "the upper clip range",
    "max_completion_length": "the dr_grpo normaliser",
    "steps_per_generation": "the token normaliser of the supervised terms",
    "entropy_coef": "the static entropy bonus, token mean over the completion",
    "use_vllm": "vLLM's importance-sampling ratio multiplies the policy loss",
    "vllm_importance_sampling_correction": "TRL leaves the ratio out of the batch when it is false",
}

# Field -> (what TRL would do with it, the values the replacement behaves as). The first accepted value
# is the one the error message suggests.
REFUSED_LOSS_FIELDS: dict[str, tuple[str, tuple[Any, ...]]] = {
    "beta": ("a KL term against a reference model", (0.0,)),
    "use_bias_correction_kl": ("an importance-weighted KL term (beta)", (True,)),
    "importance_sampling_level": ("sequence-level importance ratios", ("token",)),
    "off_policy_mask_threshold": ("masking of off-policy sequences (OPSM)", (None,)),
    "top_entropy_quantile": ("a loss restricted to the highest-entropy tokens", (1.0,)),
    "delta": ("two-sided clipping of the importance ratio", (None,)),
    "use_adaptive_entropy": ("an entropy coefficient adapted each step", (False,)),
    "entropy_target": ("the target of the adaptive entropy coefficient", (0.2,)),
    "entropy_coef_min": ("the floor of the adaptive entropy coefficient", (0.0,)),
    "entropy_coef_max": ("the ceiling of the adaptive entropy coefficient", (1.0,)),
    "entropy_coef_delta": ("the step of the adaptive entropy coefficient", (0.005,)),
    "router_aux_loss_coef": ("a mixture-of-experts load-balancing loss", (None, 0.0)),
    "sapo_temperature_pos": ("the SAPO loss (loss_type=sapo)", (1.0,)),
    "sapo_temperature_neg": ("the SAPO loss (loss_type=sapo)", (1.05,)),
    "vespo_k_pos": ("the VESPO loss (loss_type=vespo)", (2.0,)),
    "vespo_lambda_pos": ("the VESPO loss (loss_type=vespo)", (3.0,)),
    "vespo_k_neg": ("the VESPO loss (loss_type=vespo)", (3.0,)),
    "vespo_lambda_neg": ("the VESPO loss (loss_type=vespo)", (2.0,)),
}


@functools.cache
def _grpo_fields() -> frozenset[str]:
    from trl import GRPOConfig

    return frozenset(f.name for f in dataclasses.fields(GRPOConfig))


def refuse_unhonoured_loss_fields(args: Any, trainer: str) -> None:
    """Raise :class:`ConfigError` naming the first refused TRL loss field ``args`` sets to a value
    ``trainer`` would ignore.

    ``args``: a ``GRPOConfig`` or the start-up view of ``trainer.*`` (TRL's defaults filled in), read by
    attribute. Fields this TRL version does not have are skipped.
    """
    fields = _grpo_fields()
    for name, (effect, accepted) in REFUSED_LOSS_FIELDS.items():
        if name not in fields:
            continue
        value = getattr(args, name)
        if not any(value is None if a is None else (value is not None and value == a) for a in accepted):
            raise ConfigError(
                f"trainer.{name}={value!r} is not supported by {trainer}, whose loss replaces TRL's: "
                f"{effect} would be silently ignored; leave it at {accepted[0]!r}"
            )
