"""The algorithm registry: one entry per algorithm, the only place its name is tied to its code.

An entry names the RL trainer class, the config class that holds the algorithm's knobs
(``algorithm.*``: fields with defaults and help, checks in ``check``), whether it trains on
demonstrations, and its stages in order: ``sft`` (TRL's SFTTrainer on the demonstrations, settings
``sft_trainer.*``) and ``rl`` (the entry's trainer). The Hydra group ``algorithm`` is generated from
these entries (:mod:`prefix_rft.config.algorithm_args`), the pipeline runs their stages
(:mod:`prefix_rft.pipeline`) and the start-up checks ask them (:mod:`prefix_rft.config.validate`).

Adding an algorithm: write its trainer (a ``GRPOTrainer`` subclass) and its config class next to it,
then one line here (or a call of :func:`register_algorithm` in your own code). A YAML file
``conf/algorithm/<name>.yaml`` is optional: it adds preset values of other groups (``trainer.*``,
the scheduler); without one, ``algorithm=<name>`` selects the registered defaults directly.
"""

from __future__ import annotations

from dataclasses import dataclass

from trl import GRPOTrainer

from prefix_rft.errors import ConfigError
from prefix_rft.trainers.algorithm_config import AlgorithmConfig
from prefix_rft.trainers.chord import ChordConfig, ChordTrainer
from prefix_rft.trainers.hpt import HPTConfig, HPTTrainer
from prefix_rft.trainers.prefix_in_prompt import PrefixInPromptConfig, PrefixInPromptTrainer
from prefix_rft.trainers.prefix_rft import LUFFYConfig, PrefixRFTConfig, PrefixRFTTrainer
from prefix_rft.trainers.relift import ReLIFTConfig, ReLIFTTrainer
from prefix_rft.trainers.rl_sft_loss import RLWithSFTLossConfig, RLWithSFTLossTrainer
from prefix_rft.trainers.srft import SRFTConfig, SRFTTrainer

# What a stage trains: "sft" = TRL's SFTTrainer on the demonstrations (settings sft_trainer.* over
# trainer.*), "rl" = the algorithm's trainer. Each kind's builder: prefix_rft.config.build.STAGE_BUILDERS.
STAGE_KINDS = ("sft", "rl")


@dataclass(frozen=True)
class Algorithm:
    """One registered algorithm."""

    name: str
    # The dataclass of its knobs (algorithm.*): AlgorithmConfig or a subclass.
    config: type[AlgorithmConfig]
    # Trainer of its "rl" stage (GRPOTrainer or a subclass); None for SFT-only algorithms.
    trainer: type | None
    # Stages in the order they run, each from the previous stage's final model.
    stages: tuple[str, ...]
    # Trains on demonstrations whatever its knobs say (its config may add cases: needs_demonstrations()).
    needs_demonstrations: bool
    # What a run with the default knobs shows (the CLI sweep test checks each registered algorithm by it).
    # Metric names its trainer logs besides the loss and TRL's own (e.g. "prefix/ratio_mean").
    metrics: tuple[str, ...] = ()
    # Kinds of trained tokens of its cost report (prefix_rft.cost.estimate.TOKEN_KINDS) it trains on
    # every step, and those it trains on some questions only (e.g. ReLIFT's SFT on the failed ones).
    trains: tuple[str, ...] = ()
    trains_some: tuple[str, ...] = ()
    # Per group of rollouts: rows that are whole demonstrations (LUFFY's off-policy rows), and rollouts
    # that continue a demonstration prefix ("all": every one of them).
    demonstrations_per_group: int = 0
    hybrids_per_group: int | str = 0

    def requires_demonstrations(self, config: AlgorithmConfig) -> bool:
        """Whether this algorithm with these knob values needs a demonstration column."""
        return self.needs_demonstrations or config.needs_demonstrations()


ALGORITHMS: dict[str, Algorithm] = {}


def register_algorithm(
    name: str,
    config: type[AlgorithmConfig] = AlgorithmConfig,
    trainer: type | None = GRPOTrainer,
    stages: tuple[str, ...] = ("rl",),
    needs_demonstrations: bool | None = None,
    *,
    metrics: tuple[str, ...] = (),
    trains: tuple[str, ...] | None = None,
    trains_some: tuple[str, ...] = (),
    demonstrations_per_group: int = 0,
    hybrids_per_group: int | str = 0,
) -> Algorithm:
    """Add (or replace) an algorithm; ``needs_demonstrations`` defaults to "has an SFT stage", ``trains``
    to what its stages train (``sft`` tokens for an SFT stage, ``on_policy`` ones for an RL stage)."""
    from prefix_rft.cost.estimate import TOKEN_KINDS

    if not name or name.startswith("_"):
        raise ValueError(
            f"algorithm name {name!r}: names starting with '_' are reserved for internal presets"
        )
    if not stages or any(s not in STAGE_KINDS for s in stages):
        raise ValueError(f"algorithm {name}: stages {list(stages)} must be a non-empty list of {STAGE_KINDS}")
    if ("rl" in stages) != (trainer is not None):
        raise ValueError(f"algorithm {name}: a trainer class is needed exactly when there is an 'rl' stage")
    needs = "sft" in stages if needs_demonstrations is None else needs_demonstrations
    if trains is None:
        trains = tuple(kind for stage, kind in (("sft", "sft"), ("rl", "on_policy")) if stage in stages)
    if any(k not in TOKEN_KINDS for k in (*trains, *trains_some)):
        raise ValueError(f"algorithm {name}: trains {trains} / {trains_some} must be kinds of {TOKEN_KINDS}")
    if not (hybrids_per_group == "all" or isinstance(hybrids_per_group, int)):
        raise ValueError(f"algorithm {name}: hybrids_per_group must be a number or 'all'")
    entry = Algorithm(
        name,
        config,
        trainer,
        tuple(stages),
        needs,
        metrics=tuple(metrics),
        trains=tuple(trains),
        trains_some=tuple(trains_some),
        demonstrations_per_group=demonstrations_per_group,
        hybrids_per_group=hybrids_per_group,
    )
    ALGORITHMS[name] = entry
    return entry


def unregister_algorithm(name: str) -> None:
    """Remove an algorithm (tests that register a temporary one)."""
    ALGORITHMS.pop(name, None)


def get_algorithm(name: str) -> Algorithm:
    """The entry of ``name``; an unknown name is a :class:`ConfigError` listing the known ones."""
    if name not in ALGORITHMS:
        raise ConfigError(
            f"algorithm.name={name!r} is not a registered algorithm; expected one of {sorted(ALGORITHMS)}"
        )
    return ALGORITHMS[name]


register_algorithm("sft", trainer=None, stages=("sft",))
register_algorithm("rft")
register_algorithm("sft_then_rft", stages=("sft", "rl"))
register_algorithm(
    "rl_sft_loss",
    RLWithSFTLossConfig,
    RLWithSFTLossTrainer,
    metrics=("sft/demo_nll",),
    trains=("on_policy", "sft"),
)
register_algorithm(
    "luffy",
    LUFFYConfig,
    PrefixRFTTrainer,
    metrics=("off_policy/shaping_weight_mean", "prefix/full_demo_fraction"),
    trains=("on_policy", "full_demonstration"),
    demonstrations_per_group=1,
)
register_algorithm(
    "relift",
    ReLIFTConfig,
    ReLIFTTrainer,
    metrics=("relift/buffer_size", "relift/failed_prompt_fraction"),
    trains_some=("sft",),
)
register_algorithm(
    "prefix_rft",
    PrefixRFTConfig,
    PrefixRFTTrainer,
    metrics=("prefix/ratio_mean", "prefix/update_fraction", "entropy/prefix"),
    trains=("on_policy", "prefix"),
    hybrids_per_group=1,
)
register_algorithm(
    "chord",
    ChordConfig,
    ChordTrainer,
    metrics=("chord/mu", "chord/phi_mean", "sft/demo_nll"),
    trains=("on_policy", "sft"),
)
register_algorithm(
    "srft",
    SRFTConfig,
    SRFTTrainer,
    metrics=("srft/sft_weight_mean", "srft/demo_nll", "off_policy/shaping_weight_mean"),
    trains=("on_policy", "full_demonstration", "sft"),
    demonstrations_per_group=1,
)
# HPT: the rollouts of questions its gate sends to SFT are sampled but not trained.
register_algorithm(
    "hpt",
    HPTConfig,
    HPTTrainer,
    metrics=("hpt/sft_fraction", "hpt/solved_mean"),
    trains=(),
    trains_some=("on_policy", "sft"),
)
register_algorithm(
    "prefix_in_prompt",
    PrefixInPromptConfig,
    PrefixInPromptTrainer,
    metrics=("prefix_in_prompt/guided_fraction", "prefix_in_prompt/prefix_tokens"),
    hybrids_per_group="all",
)
