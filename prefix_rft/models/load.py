"""Loading policy models and tokenizers: hub ids, local checkpoints and the built-in tiny models.

Every function takes the loading options as a :class:`~prefix_rft.config.model_options.ModelOptions`
(training's ``model`` group and the evaluation config both are one) and the checkpoint path; the path
defaults to ``model.name_or_path`` where the options carry one (training's ``ModelConfig``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from prefix_rft.config.model_options import ModelOptions
from prefix_rft.errors import ConfigError, ModelLoadError
from prefix_rft.models.chat_templates import resolve_chat_template

logger = logging.getLogger(__name__)

BUILTIN_PREFIX = "builtin:"
DTYPES = {"auto": "auto", "bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def resolve_model_path(name_or_path: str) -> str:
    """Map ``builtin:<preset>`` to a locally built checkpoint directory; return anything else unchanged.

    Built-in presets are created on first use (see :mod:`prefix_rft.models.tiny`) so that tests and the
    default CPU job never need a model hub.
    """
    if name_or_path.startswith(BUILTIN_PREFIX):
        from prefix_rft.models.tiny import BUILTIN_MODELS, ensure_tiny_model

        preset = name_or_path[len(BUILTIN_PREFIX) :]
        if preset not in BUILTIN_MODELS:
            raise ModelLoadError(
                f"{name_or_path} is not a built-in model; expected one of "
                f"{[BUILTIN_PREFIX + name for name in BUILTIN_MODELS]}"
            )
        return str(ensure_tiny_model(preset))
    return name_or_path


def _looks_local(name_or_path: str) -> bool:
    """A path rather than a hub id ("name" or "org/name")."""
    p = name_or_path
    return os.path.isabs(p) or p.startswith((".", "~")) or p.endswith("/") or p.count("/") > 1


def check_model_path(name_or_path: str, key: str = "model.name_or_path") -> None:
    """Refuse, before anything is loaded, a model location that cannot work: a local path that does not
    exist or holds no saved model (``config.json``), an unknown ``builtin:`` preset, or a hub id when the
    hub is not reachable and the local cache does not hold it (:func:`prefix_rft.hub.require_hub_or_cache`).
    Other hub failures are left to ``from_pretrained`` (:func:`load_tokenizer` / :func:`load_model` report them)."""
    expected = (
        "a checkpoint folder (with config.json), a hub id such as Qwen/Qwen2.5-Math-7B, or builtin:tiny-warm"
    )
    if name_or_path.startswith(BUILTIN_PREFIX):
        from prefix_rft.models.tiny import BUILTIN_MODELS

        if name_or_path[len(BUILTIN_PREFIX) :] not in BUILTIN_MODELS:
            raise ModelLoadError(
                f"{key}={name_or_path} is not a built-in model; expected one of "
                f"{[BUILTIN_PREFIX + name for name in BUILTIN_MODELS]}"
            )
        return
    path = os.path.expanduser(name_or_path)
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise ModelLoadError(f"{key}={name_or_path} is a file; expected {expected}")
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise ModelLoadError(
                f"{key}={name_or_path} holds no config.json (not a saved model); expected {expected}"
            )
        from prefix_rft.training.checkpoint_integrity import damage
        from prefix_rft.training.run_folder import intact_alternative

        problem = damage(Path(path))
        if problem is not None:
            raise ModelLoadError(
                f"{key}={name_or_path} is damaged ({problem}); {intact_alternative(Path(path))}"
            )
    elif _looks_local(name_or_path):
        raise ModelLoadError(f"{key}={name_or_path} does not exist; expected {expected}")
    else:  # a hub id: without network, fail now in one line rather than after a minute of retries
        from prefix_rft.hub import require_hub_or_cache

        require_hub_or_cache(name_or_path, key)


def _load_failure(what: str, path: str, err: Exception) -> ModelLoadError:
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return ModelLoadError(f"cannot load the {what} of {path}: {first}")


def apply_config_overrides(config, overrides: dict) -> None:
    """Set ``model.config_overrides`` on a transformers config (e.g. Qwen2.5-Math's 16k window)."""
    for key, value in overrides.items():
        if key == "rope_theta" and getattr(config, "rope_parameters", None) is not None:
            # transformers 5 keeps rope_theta inside rope_parameters.
            config.rope_parameters["rope_theta"] = value
        elif hasattr(config, key) or key == "rope_theta":
            setattr(config, key, value)
        else:
            raise ConfigError(f"model.config_overrides.{key}: {type(config).__name__} has no such field")


def with_config_overrides(
    model_cfg: ModelOptions, path: str, cache_dir: str | os.PathLike | None = None
) -> str:
    """A checkpoint directory whose ``config.json`` carries ``model.config_overrides``, or ``path`` if none.

    vLLM (which TRL starts from the model's ``name_or_path``) reads the checkpoint's own config, so an
    override applied only in memory would leave trainer and sampler with different context windows and
    RoPE bases. The patched directory holds symlinks to the original files and a rewritten config.json;
    it is built once per (checkpoint, overrides) in the prefix_rft cache.
    """
    overrides = dict(model_cfg.config_overrides or {})
    if not overrides:
        return path
    import hashlib
    import json
    import shutil
    import tempfile
    from pathlib import Path

    from transformers import AutoConfig

    from prefix_rft.models.tiny import _cache_root

    src = Path(path)
    if not src.is_dir():
        from huggingface_hub import snapshot_download

        src = Path(snapshot_download(path, revision=model_cfg.revision))
    key = json.dumps({"src": str(src.resolve()), "overrides": overrides}, sort_keys=True, default=str)
    target = (
        _cache_root(cache_dir) / "patched" / f"{src.name}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"
    )
    if (target / "config.json").is_file():
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{src.name}-", dir=target.parent))
    try:
        for item in src.iterdir():
            if item.name != "config.json":
                (tmp / item.name).symlink_to(item.resolve())
        config = AutoConfig.from_pretrained(str(src), trust_remote_code=model_cfg.trust_remote_code)
        apply_config_overrides(config, overrides)
        config.save_pretrained(str(tmp))
        try:
            tmp.rename(target)
        except OSError:  # another process finished first: use its copy
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("checkpoint with config overrides %s: %s", overrides, target)
    return str(target)


def load_tokenizer(model_cfg: ModelOptions, path: str | None = None):
    """The policy tokenizer, with the configured chat template and a pad token."""
    from transformers import AutoTokenizer

    path = path or resolve_model_path(model_cfg.name_or_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            path, revision=model_cfg.revision, trust_remote_code=model_cfg.trust_remote_code
        )
    except OSError as err:  # not found locally, not on the hub, or the hub is unreachable
        raise _load_failure("tokenizer", path, err) from err
    template = resolve_chat_template(model_cfg.chat_template)
    if template is not None:
        tokenizer.chat_template = template
    if tokenizer.chat_template is None:
        raise ConfigError(
            f"the tokenizer of {path} has no chat template; set model.chat_template "
            "(e.g. chatml or llama-3.1-instruct)"
        )
    if tokenizer.pad_token is None:
        # Generation pads on the left; reusing EOS as pad is safe because TRL masks by attention.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(model_cfg: ModelOptions, path: str | None = None, quantization_config=None):
    """The policy model through ``from_pretrained`` (the same path for hub ids and built-in models)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    if model_cfg.dtype not in DTYPES:
        raise ConfigError(f"model.dtype={model_cfg.dtype!r} is not valid; expected one of {sorted(DTYPES)}")
    path = path or resolve_model_path(model_cfg.name_or_path)
    try:
        config = AutoConfig.from_pretrained(
            path, revision=model_cfg.revision, trust_remote_code=model_cfg.trust_remote_code
        )
    except OSError as err:
        raise _load_failure("config", path, err) from err
    apply_config_overrides(config, dict(model_cfg.config_overrides or {}))
    kwargs = {}
    if model_cfg.attn_implementation:
        kwargs["attn_implementation"] = model_cfg.attn_implementation
    if quantization_config is not None:
        kwargs["quantization_config"] = quantization_config
    return AutoModelForCausalLM.from_pretrained(
        path,
        config=config,
        revision=model_cfg.revision,
        dtype=DTYPES[model_cfg.dtype],
        trust_remote_code=model_cfg.trust_remote_code,
        **kwargs,
    )


def save_merged_model(model, tokenizer, out_dir) -> str:
    """Fold a PEFT adapter into its base model and save it (with the tokenizer) as a plain checkpoint.

    The merge happens in place (no second copy of a multi-billion-parameter model): call it when the
    adapter is no longer needed, as the last step of a run.
    """
    merged = model.merge_and_unload()
    merged.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    return str(out_dir)
