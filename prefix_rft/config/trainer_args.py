"""The ``trainer`` config group: TRL's ``GRPOConfig``/``SFTConfig`` fields, derived instead of retyped.

Hydra needs a dataclass with simple field types to validate overrides, while TRL's configs carry
200-odd fields whose names, types and help strings change between releases. So the structured
config for ``trainer.*`` is *generated* from the installed TRL: every ``GRPOConfig`` and
``SFTConfig`` field appears with a Hydra-friendly type and TRL's own help text. Fields start out
MISSING ("not set"), and only the ones a YAML file or the command line sets are passed to TRL, so
TRL's own defaults apply everywhere else (they differ between GRPO and SFT, e.g. learning_rate).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from typing import Any, Optional

from omegaconf import MISSING, DictConfig, OmegaConf

# Fields that the other config groups own, so that one value never lives in two places.
OWNED_ELSEWHERE = {
    "output_dir": "output_dir (top level)",
    "seed": "seed (top level)",
    "use_vllm": "generation.backend",
    "vllm_mode": "generation.backend",
    "reward_weights": "reward.funcs[*].weight",
}


def hydra_type(tp: Any) -> Any:
    """Map a TRL field annotation to a type OmegaConf can validate (``Any`` when it cannot)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        optional = len(args) < len(typing.get_args(tp))
        simple = [a for a in args if a in (bool, int, float, str)]
        enums = [a for a in args if isinstance(a, type) and issubclass(a, enum.Enum)]
        if len(args) == 1 and simple:
            inner: Any = args[0]
        elif enums and str in args and len(args) == 2:
            inner = str
        else:
            return Any
        return Optional[inner] if optional else inner  # noqa: UP045 - OmegaConf needs typing.Optional
    if tp in (bool, int, float, str):
        return tp
    if origin is list and typing.get_args(tp) and typing.get_args(tp)[0] in (int, float, str):
        return list[typing.get_args(tp)[0]]
    return Any


def _trl_fields() -> dict[str, dataclasses.Field]:
    from trl import GRPOConfig, SFTConfig

    fields: dict[str, dataclasses.Field] = {}
    for cls in (GRPOConfig, SFTConfig):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.init and f.name not in fields and f.name not in OWNED_ELSEWHERE:
                f.type = hints.get(f.name, f.type)
                fields[f.name] = f
    return fields


def trainer_field_specs() -> list[tuple[str, Any, str]]:
    """``(name, Hydra type, help)`` of every ``trainer.*`` field, from the installed TRL."""
    return [
        (name, hydra_type(f.type), (f.metadata or {}).get("help", ""))
        for name, f in sorted(_trl_fields().items())
    ]


def args_class(name: str, specs: list[tuple[str, Any, str]], doc: str) -> type:
    """A dataclass of MISSING-by-default fields ``(name, type, help)`` (the generated groups' schemas)."""
    fields = [(n, tp, dataclasses.field(default=MISSING, metadata={"help": h})) for n, tp, h in specs]
    cls = dataclasses.make_dataclass(name, fields)
    cls.__doc__ = doc
    return cls


TRAINER_ARGS_DOC = (
    "TRL trainer arguments (GRPOConfig and SFTConfig fields); unset fields keep TRL's defaults."
)
# The generated ``algorithm`` group's doc (prefix_rft.config.algorithm_args), here beside its twin so that
# the schema cache can build both classes without importing the registry (and TRL).
ALGORITHM_ARGS_DOC = (
    "Knobs of the registered algorithms; each algorithm reads its own (prefix_rft.algorithms)."
)


@functools.cache
def make_trainer_args_class() -> type:
    """The ``TrainerArgs`` dataclass: one MISSING-by-default field per TRL config field (imports TRL, once)."""
    return args_class("TrainerArgs", trainer_field_specs(), TRAINER_ARGS_DOC)


def __getattr__(name: str) -> Any:
    # ``TrainerArgs`` is built on first use: importing this module must not import TRL (a few seconds).
    if name == "TrainerArgs":
        return make_trainer_args_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def set_trainer_args(trainer_cfg: DictConfig) -> dict[str, Any]:
    """Return the ``trainer.*`` values that were set (not MISSING) as plain Python objects."""
    out: dict[str, Any] = {}
    for key in trainer_cfg:
        if not OmegaConf.is_missing(trainer_cfg, key):
            value = trainer_cfg[key]
            out[key] = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
    return out


class TrainerValues:
    """``trainer.*`` as a ``GRPOConfig`` would hold them, read by attribute: the value set in the config,
    else TRL's default. Lets the start-up checks read TRL settings without building a GRPOConfig (whose
    own checks need the machine the run is for, e.g. a GPU for bf16)."""

    def __init__(self, trainer_cfg: DictConfig, config_cls: type | None = None) -> None:
        if config_cls is None:
            from trl import GRPOConfig as config_cls
        self._values = set_trainer_args(trainer_cfg)
        self._fields = {f.name: f for f in dataclasses.fields(config_cls)}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._values:
            return self._values[name]
        f = self._fields.get(name)
        if f is None:
            raise AttributeError(f"trainer.{name} is not a field of TRL's config")
        if f.default is not dataclasses.MISSING:
            return f.default
        if f.default_factory is not dataclasses.MISSING:
            return f.default_factory()
        raise AttributeError(f"trainer.{name} has no default in TRL's config")


def trl_field_help(name: str) -> str:
    """TRL's help string for one ``trainer.*`` field (for ``prefix-rft-train --help-trainer``)."""
    f = _trl_fields().get(name)
    if f is None:
        raise KeyError(f"trainer.{name} is not a GRPOConfig/SFTConfig field")
    return (f.metadata or {}).get("help", "")
