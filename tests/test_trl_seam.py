"""The seam to TRL: the private GRPOTrainer hooks our trainers override or call, and the TRL versions they
are known to match. When TRL changes one of them, this test says which and what changed, before a
training run fails somewhere inside a step."""

from __future__ import annotations

import inspect
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version
from transformers import Trainer
from trl import GRPOTrainer, SFTTrainer

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO_ROOT = Path(__file__).resolve().parents[1]

# hook -> (class that defines it, the leading parameters we pass or receive, in order, with defaults).
# Overridden by PrefixRFTTrainer (and its subclasses RLWithSFTLossTrainer, ReLIFTTrainer):
#   _generate_single_turn, _generate_and_score_completions, _calculate_rewards, _compute_loss;
# called by them: _get_per_token_logps_and_entropies; overridden by ReLIFTTrainer: training_step,
# _save_checkpoint, _load_optimizer_and_scheduler; overridden by the cost-accounting mixin
# (prefix_rft/cost/trainers.py): _generate (it reads the first three items it returns: prompt ids, completion
# ids, tool mask), _generate_and_score_completions, compute_loss; and SFTTrainer.compute_loss.
HOOKS = {
    "_generate": (GRPOTrainer, ["self", "prompts"]),
    "compute_loss": (
        GRPOTrainer,
        ["self", "model", "inputs", "return_outputs=False", "num_items_in_batch=None"],
    ),
    "SFTTrainer.compute_loss": (
        SFTTrainer,
        ["self", "model", "inputs", "return_outputs=False", "num_items_in_batch=None"],
    ),
    "_generate_single_turn": (
        GRPOTrainer,
        ["self", "prompt_ids", "images", "multimodal_fields", "num_generations", "has_tool_images=False"],
    ),
    "_generate_and_score_completions": (GRPOTrainer, ["self", "inputs"]),
    "_calculate_rewards": (GRPOTrainer, ["self", "inputs", "prompts", "completions", "completion_ids_list"]),
    "_compute_loss": (GRPOTrainer, ["self", "model", "inputs"]),
    "_get_per_token_logps_and_entropies": (
        GRPOTrainer,
        [
            "self",
            "model",
            "input_ids",
            "attention_mask",
            "logits_to_keep",
            "batch_size=None",
            "compute_entropy=False",
        ],
    ),
    "training_step": (GRPOTrainer, ["self", "model", "inputs", "num_items_in_batch"]),
    "_save_checkpoint": (GRPOTrainer, ["self", "model", "trial"]),
    "_load_optimizer_and_scheduler": (GRPOTrainer, ["self", "checkpoint"]),
}


def leading_parameters(func, n: int) -> list[str]:
    """The first ``n`` parameters of ``func`` as ``name`` or ``name=default``."""
    params = list(inspect.signature(func).parameters.values())[:n]
    return [p.name if p.default is inspect.Parameter.empty else f"{p.name}={p.default!r}" for p in params]


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_trl_hooks_keep_the_signatures_our_trainers_rely_on(hook):
    owner, expected = HOOKS[hook]
    func = getattr(owner, hook.split(".")[-1], None)
    assert func is not None, (
        f"TRL {version('trl')}: {owner.__name__}.{hook} no longer exists; prefix_rft/trainers/ overrides or "
        f"calls it. Port the trainers to the new TRL or install a version within pyproject.toml's range."
    )
    found = leading_parameters(func, len(expected))
    assert found == expected, (
        f"TRL {version('trl')} changed {owner.__name__}.{hook}: expected parameters {expected}, found "
        f"{found} (full signature {inspect.signature(func)}). prefix_rft/trainers/ relies on the old "
        f"ones: port the trainers, then update this test and pyproject.toml's trl range."
    )


def test_hooks_are_trl_s_own_not_inherited_from_transformers():
    """The generation/reward/loss hooks must be GRPOTrainer's: if TRL moved them to transformers' Trainer
    or removed them, our overrides would silently stop being called."""
    for hook in (
        "_generate_single_turn",
        "_generate_and_score_completions",
        "_calculate_rewards",
        "_compute_loss",
        "_generate",
    ):
        assert hook in vars(GRPOTrainer), f"TRL {version('trl')}: GRPOTrainer no longer defines {hook}"
        assert not hasattr(Trainer, hook)
    # The cost counters hook TRL's own loss of each trainer (transformers' would see other inputs).
    assert "compute_loss" in vars(GRPOTrainer) and "compute_loss" in vars(SFTTrainer)


def test_installed_trl_is_within_the_supported_range():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    (trl_req,) = [Requirement(d) for d in project["dependencies"] if Requirement(d).name == "trl"]
    assert trl_req.specifier, "pyproject.toml must bound trl: the trainers override private TRL hooks"
    assert any(s.operator == "<" for s in trl_req.specifier), (
        "pyproject.toml's trl range needs an upper bound"
    )
    installed = Version(version("trl"))
    assert trl_req.specifier.contains(installed), (
        f"installed trl {installed} is outside the supported range {trl_req.specifier} (pyproject.toml)"
    )
