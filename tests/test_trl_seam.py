"""The seam to TRL: the private GRPOTrainer hooks our trainers override or call, the loss settings TRL reads,
and the TRL versions they are known to match. The hooks are computed from the trainer classes (the methods
ours define that TRL's trainers also define) and the calls from our sources, so no list here can fall
behind the code. When TRL changes one of them, a test says which and what changed, before a training run
fails somewhere inside a step.

Contracts a signature cannot show, kept in mind when porting: the cost mixin reads the first three items
``_generate`` returns (prompt ids, completion ids, tool mask); ``_get_per_token_logps_and_entropies``
returns ``(logps, entropies, aux_loss)``."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
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
PROJECT_SOURCES = [
    *sorted((REPO_ROOT / "prefix_rft" / "trainers").glob("*.py")),
    REPO_ROOT / "prefix_rft" / "cost" / "trainers.py",
]
# The TRL trainers ours extend; the cost-accounting mixin goes into both kinds.
TRL_TRAINERS = (GRPOTrainer, SFTTrainer)
# Hooks TRL must keep defining itself: if they moved to transformers' Trainer (or away), our overrides
# would stop being called without an error.
TRL_OWN_HOOKS = (
    "_generate",
    "_generate_single_turn",
    "_generate_and_score_completions",
    "_calculate_rewards",
    "_compute_loss",
    "_tokenize_prompts",
)


def project_trainer_classes() -> list[type]:
    """Our classes in the MRO of every trainer the pipeline builds (registry trainers with the cost mixin,
    and the SFT trainer), each once."""
    from prefix_rft.algorithms import ALGORITHMS
    from prefix_rft.cost.trainers import CostAccountingSFTTrainer, with_cost_accounting

    built = [with_cost_accounting(e.trainer) for e in ALGORITHMS.values() if e.trainer is not None]
    found: dict[type, None] = {}
    for cls in [*built, CostAccountingSFTTrainer]:
        for klass in cls.__mro__:
            if klass.__module__.startswith("prefix_rft.") and vars(klass).keys() - {"__module__", "__doc__"}:
                found.setdefault(klass)
    return list(found)


def trl_base(cls: type) -> list[type]:
    """The TRL trainers whose hooks ``cls`` may override (both for a mixin)."""
    bases = [t for t in TRL_TRAINERS if issubclass(cls, t)]
    return bases or list(TRL_TRAINERS)


def overridden_hooks() -> dict[str, tuple[type, type]]:
    """``"Ours.method" -> (our class, TRL trainer)`` for every method one of our trainer classes defines
    that the TRL trainer below it (or one of that trainer's bases) also defines: computed, not listed."""
    hooks: dict[str, tuple[type, type]] = {}
    for cls in project_trainer_classes():
        for name, value in vars(cls).items():
            if not inspect.isfunction(value) or (name.startswith("__") and name != "__init__"):
                continue
            for base in trl_base(cls):
                if hasattr(base, name):
                    hooks[f"{cls.__name__}.{name} ({base.__name__})"] = (cls, base)
    return hooks


OVERRIDDEN = overridden_hooks()


def parameter_names(func) -> list[str]:
    return [p.name for p in inspect.signature(func).parameters.values()]


def test_the_computed_hook_list_holds_every_known_override():
    """The computation itself: it finds the overrides the trainers are built on, _tokenize_prompts too."""
    names = {key.split(" ")[0] for key in OVERRIDDEN}
    assert {
        "PrefixRFTTrainer._generate_single_turn",
        "PrefixRFTTrainer._generate_and_score_completions",
        "DrGRPOTrainer._calculate_rewards",
        "DrGRPOTrainer._compute_loss",
        "PrefixInPromptTrainer._tokenize_prompts",
        "ReLIFTTrainer.training_step",
        "ReLIFTTrainer._save_checkpoint",
        "ReLIFTTrainer._load_optimizer_and_scheduler",
        "CostAccounting._generate",
        "CostAccounting.compute_loss",
        "CostAccountingSFTTrainer.compute_loss",
    } <= names
    # Our own helpers are not TRL hooks.
    assert "PrefixRFTTrainer._plan_prefixes" not in names and "ChordTrainer._mu" not in names


@pytest.mark.parametrize("hook", sorted(OVERRIDDEN))
def test_each_override_takes_the_parameters_trl_passes(hook):
    cls, base = OVERRIDDEN[hook]
    name = hook.split(" ")[0].split(".")[1]
    ours = inspect.signature(vars(cls)[name]).parameters
    theirs = parameter_names(getattr(base, name))
    kinds = {p.kind for p in ours.values()}
    if inspect.Parameter.VAR_POSITIONAL in kinds and inspect.Parameter.VAR_KEYWORD in kinds:
        return  # passes everything through (constructors, the mixin)
    assert list(ours) == theirs, (
        f"TRL {version('trl')} changed {base.__name__}.{name}: it takes {theirs}, but {hook} takes "
        f"{list(ours)}. Port the override, or install a trl within pyproject.toml's range."
    )


def test_no_private_trainer_method_is_a_dead_override():
    """A private method of our trainers that TRL does not define must be called by our own code: otherwise
    it is an override of a hook TRL removed or renamed, and it would silently never run."""
    referenced: set[str] = set()
    for path in (REPO_ROOT / "prefix_rft").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute):
                referenced.add(node.attr)
    dead = [
        f"{cls.__name__}.{name}"
        for cls in project_trainer_classes()
        for name, value in vars(cls).items()
        if inspect.isfunction(value)
        and name.startswith("_")
        and not name.startswith("__")
        and not any(hasattr(base, name) for base in trl_base(cls))
        and name not in referenced
    ]
    assert not dead, (
        f"TRL {version('trl')} does not define {dead} and nothing in prefix_rft calls them: a TRL hook our "
        "trainers override was removed or renamed. Port the trainers."
    )


def called_trl_methods() -> list[tuple[str, int, str, ast.Call]]:
    """``(file, line, method, call)`` for each call in our trainers of a private method that only TRL
    defines (ours call it, TRL implements it)."""
    ours = {name for cls in project_trainer_classes() for name in vars(cls)}
    calls = []
    for path in PROJECT_SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            name = node.func.attr
            if name.startswith("_") and not name.startswith("__") and name not in ours:
                if any(hasattr(t, name) for t in TRL_TRAINERS):
                    calls.append((path.name, node.lineno, name, node))
    return calls


def test_trl_methods_we_call_accept_our_arguments():
    calls = called_trl_methods()
    assert {name for _, _, name, _ in calls} >= {"_get_per_token_logps_and_entropies"}
    for file, line, name, call in calls:
        func = next(getattr(t, name) for t in TRL_TRAINERS if hasattr(t, name))
        if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
            continue
        try:
            inspect.signature(func).bind(None, *call.args, **{k.arg: None for k in call.keywords})
        except TypeError as err:
            raise AssertionError(
                f"TRL {version('trl')}: {file}:{line} calls {name} with {len(call.args)} positional "
                f"arguments and {[k.arg for k in call.keywords]}, which {inspect.signature(func)} does not "
                f"accept ({err}). Port the trainers or install a trl within pyproject.toml's range."
            ) from None


def test_hooks_are_trl_s_own_not_inherited_from_transformers():
    """The generation/reward/loss hooks must be GRPOTrainer's: if TRL moved them to transformers' Trainer
    or removed them, our overrides would silently stop being called."""
    for hook in TRL_OWN_HOOKS:
        assert hook in vars(GRPOTrainer), f"TRL {version('trl')}: GRPOTrainer no longer defines {hook}"
        assert not hasattr(Trainer, hook)
    # The cost counters hook TRL's own loss of each trainer (transformers' would see other inputs).
    assert "compute_loss" in vars(GRPOTrainer) and "compute_loss" in vars(SFTTrainer)


def test_every_field_trl_s_loss_reads_is_honoured_or_refused():
    """Read TRL's _compute_loss: every GRPOConfig field it uses (``self.args.X``, or ``self.X`` copied from
    the config) must be one our replacement honours or one the start-up check refuses."""
    from trl import GRPOConfig

    from prefix_rft.trainers.trl_loss_fields import HONOURED_LOSS_FIELDS, REFUSED_LOSS_FIELDS

    fields = {f.name for f in dataclasses.fields(GRPOConfig)}
    # Trainer attributes set in __init__ from a config field of another name.
    renamed = {
        "epsilon_low": "epsilon",
        "aux_loss_enabled": "router_aux_loss_coef",
        "_entropy_bonus_enabled": "entropy_coef",
    }
    tree = ast.parse(textwrap.dedent(inspect.getsource(GRPOTrainer._compute_loss)))
    read: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, (ast.Name, ast.Attribute)):
            owner = node.value
            if (isinstance(owner, ast.Name) and owner.id == "self") or (
                isinstance(owner, ast.Attribute) and owner.attr == "args"
            ):
                read.add(renamed.get(node.attr, node.attr))
    loss_fields = read & fields
    known = HONOURED_LOSS_FIELDS.keys() | REFUSED_LOSS_FIELDS.keys()
    assert loss_fields - known == set(), (
        f"TRL {version('trl')}'s GRPOTrainer._compute_loss reads {sorted(loss_fields - known)}, which "
        "PrefixRFTTrainer's loss neither honours nor refuses: add each to prefix_rft/trainers/trl_loss_fields.py"
    )
    assert {"top_entropy_quantile", "beta", "delta", "importance_sampling_level"} <= loss_fields


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
