"""The command line of ``prefix-rft-train`` / ``prefix-rft-eval`` before Hydra runs it: typos as one line,
and ``--cfg job`` as the settings the run uses.

Hydra reports a bad override (an unknown option of a group, an unknown key, a value of the wrong type)
in several lines, suggests ``+key=value`` for a misspelled key (which adds a key nothing reads), and
exits with status 1. :func:`check_command_line` composes the config first, exactly as Hydra will; when
that fails it finds the override at fault and prints one line, exit status 2: what is wrong, the
closest valid name ("did you mean prefix_rft?") and the valid ones. With ``PREFIX_RFT_DEBUG=1`` Hydra
reports the error itself, with its traceback.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

# A list of valid names longer than this is left out of the line (trainer.* has ~200 TRL fields).
MAX_LISTED = 40


def parse_flags(argv: Sequence[str]):
    """Hydra's own reading of the command line: flags (``--cfg``, ``-m``, ...) and ``overrides``."""
    from hydra._internal.utils import get_args_parser

    args, _ = get_args_parser().parse_known_args(list(argv))
    return args


def closest(name: str, valid: Sequence[str]) -> str | None:
    """The valid name closest to ``name`` (None when none is close)."""
    found = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.5)
    return found[0] if found else None


def _valid_names(what: str, valid: Sequence[str], wrong: str, prefix: str = "") -> str:
    near = closest(wrong, valid)
    listed = f"{what}: {', '.join(valid)}" if len(valid) <= MAX_LISTED else f"{len(valid)} {what}"
    return (f"; did you mean {prefix}{near}? " if near else " ") + f"({listed})"


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


class _Composer:
    """Composes the config of ``config_dir/config_name`` as Hydra's main will: the same search path
    (``--config-dir`` appended), the same overrides."""

    def __init__(self, config_dir: Path, config_name: str, extra_dir: str | None = None) -> None:
        self.config_dir, self.config_name, self.extra_dir = config_dir, config_name, extra_dir

    def _hydra(self):
        from hydra._internal.hydra import Hydra
        from hydra._internal.utils import create_config_search_path
        from hydra.core.global_hydra import GlobalHydra

        search_path = create_config_search_path(f"file://{Path(self.config_dir).resolve()}")
        if self.extra_dir is not None:
            from hydra.core.config_search_path import SearchPathQuery

            # Where Hydra's main puts it: before the structured configs (which must come last).
            search_path.prepend(
                provider="command-line",
                path=f"file://{Path(self.extra_dir).resolve()}",
                anchor=SearchPathQuery(provider="schema"),
            )
        GlobalHydra.instance().clear()
        return Hydra.create_main_hydra2(task_name="prefix-rft", config_search_path=search_path)

    def __call__(self, overrides: list[str]) -> DictConfig:
        from hydra.core.global_hydra import GlobalHydra
        from hydra.types import RunMode
        from omegaconf import open_dict

        try:
            cfg = self._hydra().compose_config(
                config_name=self.config_name,
                overrides=overrides,
                run_mode=RunMode.RUN,
                with_log_configuration=False,
            )
        finally:
            GlobalHydra.instance().clear()
        with open_dict(cfg):
            del cfg["hydra"]
        return cfg

    def group_options(self, group: str) -> list[str]:
        """The options of config group ``group`` (empty when it is not a group)."""
        from hydra.core.global_hydra import GlobalHydra

        try:
            loader = self._hydra().config_loader
            if not loader.repository.group_exists(group):
                return []
            return sorted(loader.get_group_options(group))
        finally:
            GlobalHydra.instance().clear()


def explain(overrides: list[str], compose: _Composer) -> str | None:
    """What is wrong with ``overrides`` (one line), or None when no single override is at fault."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    parsed = []
    for text in overrides:
        try:
            parsed.extend(parser.parse_overrides([text]))
        except HydraException as err:
            return f"cannot read the override '{text}': {_first_line(err)}"
    groups, keys = [], []
    for text, override in zip(overrides, parsed, strict=True):
        name = override.key_or_group
        if name.startswith("hydra.") or name == "hydra":
            groups.append(text)  # Hydra's own settings (the search path) shape the composition
            continue
        if override.is_delete():
            continue
        options = [] if "." in name else compose.group_options(name)
        if options:
            value = override.value()
            if isinstance(value, str) and value not in options:
                return f"{name}={value} is not an option of {name}" + _valid_names("options", options, value)
            groups.append(text)
        else:
            keys.append((text, override))
    try:
        base = compose(groups)
    except Exception:  # noqa: BLE001 - a group choice that composes badly: reported as Hydra words it
        return None
    for text, override in keys:
        problem = _key_problem(base, override.key_or_group, override.is_add())
        if problem is None and not override.is_add():
            problem = _value_problem(base, override.key_or_group, override.value(), text)
        if problem:
            return problem
    return None


def _key_problem(cfg: DictConfig, key: str, adding: bool) -> str | None:
    node: Any = cfg
    parts = key.split(".")
    for i, part in enumerate(parts):
        if not isinstance(node, DictConfig):
            return None  # a list index or a leaf: left to the value check
        if part not in node:
            if adding and i == len(parts) - 1:
                return None  # '+key=value' adds a key: the schema check of the run refuses unknown ones
            where = ".".join(parts[:i])
            valid = [str(k) for k in node.keys() if str(k) != "hydra"]
            prefix = f"{where}." if where else ""
            what = f"keys of {where}" if where else "top-level keys"
            return f"{key} is not a config key" + _valid_names(what, valid, part, prefix)
        node = node._get_node(part) if not OmegaConf.is_missing(node, part) else None
        if node is None:
            return None
    return None


def _value_problem(cfg: DictConfig, key: str, value: Any, text: str) -> str | None:
    from omegaconf.errors import OmegaConfBaseException

    raw = text.split("=", 1)[1] if "=" in text else value
    try:
        OmegaConf.update(cfg, key, value, merge=True)
    except OmegaConfBaseException as err:
        message = _first_line(err)
        return f"{key}={raw} is not valid: {message}"
    return None


def check_command_line(
    argv: Sequence[str], config_dir: Path, config_name: str, prog: str
) -> tuple[Any, DictConfig | None]:
    """Compose the config of ``argv`` as Hydra will; a failure ends the program with one line (exit 2).

    Returns Hydra's reading of the flags and the composed config (None for a sweep, ``-m``, which
    Hydra expands itself).
    """
    from prefix_rft.errors import debug_requested

    args = parse_flags(argv)
    if args.multirun or args.config_path or debug_requested():
        return args, None
    overrides = list(args.overrides)
    if args.config_dir is not None and not Path(args.config_dir).is_dir():
        print(f"{prog}: config error: --config-dir {args.config_dir} is not a folder", file=sys.stderr)
        raise SystemExit(2)
    compose = _Composer(config_dir, args.config_name or config_name, args.config_dir)
    try:
        return args, compose(overrides)
    except Exception as err:  # noqa: BLE001 - Hydra and OmegaConf raise many kinds; all become one line
        message = (
            explain(list(args.overrides), compose) or f"the command line does not compose: {_first_line(err)}"
        )
    print(f"{prog}: config error: {message}", file=sys.stderr)
    raise SystemExit(2)


def job_view(cfg: DictConfig, algorithm_knobs: dict[str, dict[str, Any]] | None = None) -> str:
    """``--cfg job`` as the run sees it: the set values only (unset ``trainer.*`` fields keep TRL's
    defaults) and, of the ``algorithm`` group, the chosen algorithm's knobs with their values.

    ``algorithm_knobs``: each algorithm's knobs and defaults (the schema's, by default).
    """
    if algorithm_knobs is None:
        from prefix_rft.config.schema_cache import SchemaSpec

        algorithm_knobs = SchemaSpec.cached().algorithms
    data = _set_values(cfg)
    algorithm = data.get("algorithm")
    if isinstance(algorithm, dict) and algorithm.get("name") in algorithm_knobs:
        own = algorithm_knobs[algorithm["name"]]
        data["algorithm"] = {k: algorithm.get(k, own[k]) for k in own}
    header = (
        "# The job's settings. trainer.* / sft_trainer.* fields not listed keep TRL's defaults "
        "(prefix-rft-train --help-trainer FIELD); algorithm.* shows the chosen algorithm's knobs.\n"
    )
    return header + OmegaConf.to_yaml(OmegaConf.create(data))


def _set_values(node: Any) -> Any:
    """The config as plain data without its unset (MISSING) values; interpolations are kept as written."""
    if isinstance(node, DictConfig):
        out = {}
        for key in node:
            if OmegaConf.is_missing(node, key):
                continue
            out[key] = _set_values(node._get_node(key))
        return out
    if OmegaConf.is_config(node):  # a list
        return OmegaConf.to_container(node, resolve=False)
    return node._value() if hasattr(node, "_value") else node
