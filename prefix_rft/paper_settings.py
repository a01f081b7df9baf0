"""The settings the papers (and their published scripts) state, as data: each value with its source.

One :class:`Reference` per paper an algorithm comes from (``REFERENCES``, keyed by algorithm name or
arXiv id); :mod:`prefix_rft.fidelity` compares a recipe's composed values with them. ``docs/method.md``
is the project's own account of the Prefix-RFT paper that the ``METHOD`` sources point to.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
from dataclasses import dataclass
from typing import Any

# ----------------------------------------------------------------------------- sources

METHOD = "docs/method.md (Prefix-RFT, arXiv 2507.01679; hyperparameters following LUFFY)"
METHOD_EVAL = "docs/method.md, evaluation (LUFFY's scripts)"
LUFFY_RL = "LUFFY exp_scripts/train.sh (github.com/ElliottYan/LUFFY)"
LUFFY_VERL = "LUFFY luffy/verl/verl/mix_src/config/mix_ppo_trainer.yaml (defaults the scripts keep)"
LUFFY_RL_SFT = "LUFFY exp_scripts/train_rl_sft_loss.sh + mix_ppo_trainer.yaml (sft_loss_coef 1.0)"
LUFFY_SFT = "LUFFY README, SFT command (OpenRLHF train_sft), the SFT baseline Prefix-RFT adopts"
RELIFT_RL = "ReLIFT examples/math-7b/train.sh (github.com/TheRoadQaQ/ReLIFT)"
HPT_RL = (
    "HPT (arXiv 2509.04419) exp_scripts/train.sh of its code (github.com/TsinghuaC3I/Unify-Post-Training)"
)
SRFT_RL = "SRFT (arXiv 2506.19767) Sec. 5.1 and its released train.sh"
OPENRLHF_SFT = (
    "OpenRLHF openrlhf/cli/train_sft.py defaults, kept by LUFFY's SFT command (--lr_scheduler cosine_with_min_lr, "
    "min_lr 0.1 x lr, --adam_betas 0.9 0.95, --l2 0; unchanged from 2024-12 to 2025-04)"
)
REEXAM_SFT = "arXiv 2604.23747, App. A: SFT stage of SFT-then-RL"
REEXAM_RL = "arXiv 2604.23747, App. A: RL stage of SFT-then-RL"
STEPS_500 = "docs/method.md; arXiv 2604.23747 Sec. 3 (500 RL steps for every compared method)"

# Rows of the training sets whose size the manifest needs (SFT epochs).
DATASET_ROWS = {"Elliott/Openr1-Math-46k-8192": 45_792}  # docs/method.md: 45,792 problems with R1 traces


@dataclass(frozen=True)
class PaperValue:
    """A setting as a paper (or its published scripts) states it; ``also`` lists other stated options."""

    value: Any
    source: str
    also: tuple = ()

    def matches(self, value: Any) -> bool:
        """Equal to the stated value or one of its stated options (floats to 1e-9 relative)."""
        return any(same_value(value, v) for v in (self.value, *self.also))


def same_value(a: Any, b: Any) -> bool:
    """Equal as settings: floats to 1e-9 relative, booleans only to booleans (or their equal)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


_RL = {
    "rl.learning_rate": PaperValue(1e-6, METHOD),
    "rl.lr_scheduler": PaperValue("constant", METHOD),
    "rl.prompts_per_step": PaperValue(128, METHOD),
    "rl.rollouts_per_prompt": PaperValue(8, METHOD),
    "rl.temperature": PaperValue(1.0, METHOD),
    "rl.max_prompt_length": PaperValue(1024, METHOD),
    "rl.max_response_length": PaperValue(8192, METHOD),
    "rl.steps": PaperValue(500, STEPS_500),
    "rl.loss_type": PaperValue("dr_grpo", METHOD + ", step 8"),
    "rl.std_scaling": PaperValue("none", METHOD + ", step 6"),
    "rl.kl_coef": PaperValue(0.0, METHOD),
    "rl.entropy_coef": PaperValue(0.0, METHOD + ": entropy bonus 0.001 optional", also=(0.001,)),
    "rl.clip_epsilon": PaperValue((0.2, 0.2), METHOD + ", step 8"),
}
_EVAL = {
    "eval.temperature": PaperValue(0.6, METHOD_EVAL),
    "eval.top_p": PaperValue(1.0, METHOD_EVAL),
    "eval.max_new_tokens": PaperValue(8192, METHOD_EVAL),
    "eval.AIME24": PaperValue("avg@32", METHOD_EVAL),
    "eval.AIME25": PaperValue("avg@32", METHOD_EVAL),
    "eval.AMC": PaperValue("avg@32", METHOD_EVAL),
    "eval.MATH-500": PaperValue("pass@1", METHOD_EVAL),
    "eval.Minerva": PaperValue("pass@1", METHOD_EVAL),
    "eval.OlympiadBench": PaperValue("pass@1", METHOD_EVAL),
}
_PREFIX = {
    "prefix.num_prefixed": PaperValue(1, METHOD + ", step 2"),
    "prefix.update": PaperValue("entropy_top", METHOD + ", step 9"),
    "prefix.keep_fraction": PaperValue(0.2, METHOD + ", step 9"),
    "prefix.advantage_baseline": PaperValue("group", METHOD + ", step 6"),
    "prefix.schedule": PaperValue("cosine", METHOD + ", step 3"),
    "prefix.ratio_high": PaperValue(0.95, METHOD + ", step 3"),
    "prefix.ratio_low_start": PaperValue(0.95, METHOD + ", step 3"),
    "prefix.ratio_low_end": PaperValue(0.05, METHOD + ", step 3"),
    "prefix.decay_steps": PaperValue(500, METHOD + ", step 3"),
}
_SFT_LUFFY = {
    "sft.learning_rate": PaperValue(5e-5, LUFFY_SFT),
    "sft.warmup_ratio": PaperValue(0.1, LUFFY_SFT),
    "sft.batch_size": PaperValue(64, LUFFY_SFT),
    "sft.epochs": PaperValue(3.0, LUFFY_SFT),
    "sft.max_length": PaperValue(16384, LUFFY_SFT),
    "sft.packing": PaperValue(True, LUFFY_SFT),
    "sft.lr_scheduler": PaperValue("cosine", OPENRLHF_SFT),
    "sft.min_lr_ratio": PaperValue(0.1, OPENRLHF_SFT),
    "sft.adam_betas": PaperValue((0.9, 0.95), OPENRLHF_SFT),
    "sft.weight_decay": PaperValue(0.0, OPENRLHF_SFT),
}
_SFT_REEXAM = {
    "sft.learning_rate": PaperValue(5e-5, REEXAM_SFT),
    "sft.lr_scheduler": PaperValue("cosine", REEXAM_SFT),
    "sft.min_lr_ratio": PaperValue(0.1, REEXAM_SFT),
    "sft.warmup_ratio": PaperValue(0.1, REEXAM_SFT),
    "sft.weight_decay": PaperValue(0.01, REEXAM_SFT),
    "sft.adam_betas": PaperValue((0.9, 0.999), REEXAM_SFT + ": AdamW"),
    "sft.batch_size": PaperValue(64, REEXAM_SFT),
    "sft.epochs": PaperValue(3.0, REEXAM_SFT),
}
_RL_REEXAM = {
    **{k: dataclasses.replace(v, source=REEXAM_RL) for k, v in _RL.items() if k != "rl.entropy_coef"},
    "rl.entropy_coef": PaperValue(0.0, REEXAM_RL),
    "rl.loss_type": PaperValue("dapo", REEXAM_RL + ": token-level loss (DAPO), no length/std normalisation"),
    "rl.clip_epsilon": PaperValue((0.2, 0.28), REEXAM_RL),
    "rl.prompts_per_step": PaperValue(64, REEXAM_RL + ": rollout batch 128, mini-batch 64 per update"),
    "rl.updates_per_rollout_batch": PaperValue(2, REEXAM_RL + ": rollout batch 128, mini-batch 64"),
    "rl.steps": PaperValue(500, REEXAM_RL + ": 500 steps (rollout batches), as LUFFY, ReLIFT and Prefix-RFT"),
}
_LUFFY = {
    **{k: dataclasses.replace(v, source=LUFFY_RL) for k, v in _RL.items()},
    "rl.steps": PaperValue(500, STEPS_500),
    # verl's ppo_mini_batch_size=64 of train_batch_size=128: two optimizer updates per rollout batch.
    "rl.prompts_per_step": PaperValue(64, LUFFY_RL + ": train_batch_size 128, ppo_mini_batch_size 64"),
    "rl.entropy_coef": PaperValue(0.001, LUFFY_RL),
    "rl.loss_type": PaperValue("dr_grpo", LUFFY_RL + ": loss_remove_token_mean, grpo_use_std False"),
    "rl.clip_epsilon": PaperValue((0.2, 0.2), LUFFY_VERL + ": clip_ratio 0.2"),
    "rl.max_grad_norm": PaperValue(1.0, LUFFY_VERL + ": grad_clip 1.0"),
    "luffy.off_policy_rollouts": PaperValue(1, LUFFY_RL + ": n_prefix 1, prefix ratio 1.0"),
    "luffy.off_policy_loss": PaperValue("shaped", LUFFY_RL + ': off_policy_reshape "p_div_p_0.1"'),
    "luffy.shaping_gamma": PaperValue(0.1, LUFFY_RL + ': off_policy_reshape "p_div_p_0.1"'),
    # The script removes clipping from on-policy tokens too (loss_remove_clip=True); the method clips them.
    "luffy.on_policy_clip": PaperValue(
        True,
        "conf/algorithm/luffy.yaml (the method clips on-policy tokens); " + LUFFY_RL + " removes it",
        also=(False,),
    ),
}
_RELIFT = {
    **{k: dataclasses.replace(v, source=RELIFT_RL) for k, v in _RL.items()},
    "rl.steps": PaperValue(500, STEPS_500),
    "rl.prompts_per_step": PaperValue(64, RELIFT_RL + ": train_batch_size 128, ppo_mini_batch_size 64"),
    "rl.entropy_coef": PaperValue(0.001, RELIFT_RL),
    "rl.loss_type": PaperValue("dr_grpo", RELIFT_RL + ": loss_remove_token_mean, grpo_use_std False"),
    "rl.max_grad_norm": PaperValue(0.7, RELIFT_RL + ": grad_clip 0.7"),
    "relift.sft_buffer_size": PaperValue(128, RELIFT_RL + ": sft_data_size 128"),
    "relift.sft_learning_rate": PaperValue(1e-6, RELIFT_RL + ": optim.sft.lr 1e-6"),
    "relift.sft_entropy_coef": PaperValue(0.001, RELIFT_RL + ": sft.entropy_coeff 0.001"),
}
_SRFT = {
    **{k: dataclasses.replace(v, source=SRFT_RL) for k, v in _RL.items()},
    "rl.steps": PaperValue(500, SRFT_RL),
    "rl.prompts_per_step": PaperValue(64, SRFT_RL + ": train_batch_size 128, ppo_mini_batch_size 64"),
    "rl.entropy_coef": PaperValue(0.001, SRFT_RL + ": entropy_coeff 0.001"),
}
_HPT = {
    **{k: dataclasses.replace(v, source=HPT_RL) for k, v in _RL.items()},
    "rl.steps": PaperValue(500, HPT_RL),
    "rl.learning_rate": PaperValue(5e-6, HPT_RL + ": actor lr 5e-6"),
    "rl.prompts_per_step": PaperValue(64, HPT_RL + ": train_batch_size 128, ppo_mini_batch_size 64"),
    "rl.entropy_coef": PaperValue(0.001, HPT_RL + ": entropy_coeff 0.001"),
    "rl.clip_epsilon": PaperValue("none", HPT_RL + ": loss_remove_clip True"),
    "rl.max_grad_norm": PaperValue(80.0, HPT_RL + ": grad_clip 80"),
}
_RL_SFT = {
    **_RL,
    "rl_sft.sft_coef": PaperValue(1.0, LUFFY_RL_SFT),
    "rl_sft.on_policy_rollouts": PaperValue(7, LUFFY_RL_SFT + ": rollout.n 8 with one demonstration"),
}


@dataclass(frozen=True)
class Reference:
    """A paper, the label printed for it, and its stated settings."""

    label: str
    values: dict[str, PaperValue]


REFERENCES: dict[str, Reference] = {
    "prefix_rft": Reference("Prefix-RFT (arXiv 2507.01679, docs/method.md)", {**_RL, **_PREFIX, **_EVAL}),
    "rft": Reference("RFT baseline of Prefix-RFT (docs/method.md)", {**_RL, **_EVAL}),
    "sft": Reference("SFT baseline of Prefix-RFT (LUFFY's SFT, docs/method.md)", {**_SFT_LUFFY, **_EVAL}),
    "sft_then_rft": Reference(
        "SFT -> RFT baseline of Prefix-RFT (LUFFY's SFT, then RFT; docs/method.md)",
        {**_SFT_LUFFY, **_RL, **_EVAL},
    ),
    "rl_sft_loss": Reference(
        "RL with SFT loss baseline (docs/method.md; LUFFY's scripts)", {**_RL_SFT, **_EVAL}
    ),
    "luffy": Reference("LUFFY (arXiv 2504.14945; its published scripts)", {**_LUFFY, **_EVAL}),
    "relift": Reference("ReLIFT (arXiv 2506.07527; its published scripts)", {**_RELIFT, **_EVAL}),
    "srft": Reference("SRFT (arXiv 2506.19767; its paper and released script)", {**_SRFT, **_EVAL}),
    # CHORD's published math runs (Qwen2.5-7B-Instruct, its own batch sizes) are not this comparison's set-up:
    # its recipes are held to the shared settings; its own values are in conf/algorithm/chord.yaml.
    "chord": Reference(
        "CHORD (arXiv 2508.11408) on the shared RL settings (docs/method.md)", {**_RL, **_EVAL}
    ),
    # The prefix-in-prompt family's papers (QuestA, POPE, PrefixRL) train other models with other set-ups:
    # its recipes keep the shared settings; those papers' values are in conf/algorithm/prefix_in_prompt.yaml.
    "hpt": Reference("HPT (arXiv 2509.04419; its published scripts)", {**_HPT, **_EVAL}),
    "prefix_in_prompt": Reference(
        "prefix in the prompt (QuestA / POPE / PrefixRL family) on the shared RL settings (docs/method.md)",
        {**_RL, **_EVAL},
    ),
    "2604.23747": Reference(
        "SFT-then-RL re-examination (arXiv 2604.23747)", {**_SFT_REEXAM, **_RL_REEXAM, **_EVAL}
    ),
}


# Recipes compared with another paper than their algorithm's by default (globs over "<model>/<name>").
RECIPE_REFERENCES = {"*/sft_then_rft_strong": "2604.23747"}


def default_reference(recipe: str, algorithm: str) -> str:
    """The reference a recipe is compared with unless ``--reference`` says otherwise."""
    for pattern, reference in RECIPE_REFERENCES.items():
        if fnmatch.fnmatch(recipe, pattern):
            return reference
    return algorithm
