"""Is the model hub reachable? Decided once, in about a second, before anything asks it for files.

Without network, ``huggingface_hub`` retries every request with back-off (20+ warning lines and 30-60 s
per file) before the caller's error arrives. So a model or dataset named by hub id is preceded by
:func:`require_hub_or_cache`: when ``HF_HUB_OFFLINE=1`` is set, or a direct connection to the hub
endpoint fails, the process switches the hub libraries to offline mode (files already in the local
cache still load, without a single request); a model that is not cached is then refused with one
line that says the hub is not reachable and how to point at a local copy. Behind a proxy
(``HTTPS_PROXY``...) no direct probe is made: the proxy decides.
"""

from __future__ import annotations

import functools
import os
import socket
from urllib.parse import urlparse

_TRUE = {"1", "on", "yes", "true"}
_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def offline_requested() -> bool:
    """Whether the user set ``HF_HUB_OFFLINE`` (or the older ``TRANSFORMERS_OFFLINE``/``HF_DATASETS_OFFLINE``)."""
    names = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
    return any(os.environ.get(n, "").strip().lower() in _TRUE for n in names)


@functools.lru_cache(maxsize=1)
def hub_unreachable_reason(timeout: float = 3.0) -> str | None:
    """None when the hub endpoint (``HF_ENDPOINT``, default huggingface.co) accepts a connection (or a proxy
    is configured), else why not, e.g. ``HF_HUB_OFFLINE=1 is set`` or ``cannot resolve huggingface.co``."""
    if offline_requested():
        return "HF_HUB_OFFLINE=1 is set"
    if any(os.environ.get(v) for v in _PROXY_VARS):
        return None
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host = url.hostname or "huggingface.co"
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except socket.gaierror:
        return f"cannot resolve {host} (no network?)"
    except OSError as err:
        return f"cannot connect to {host}:{port} ({err.strerror or type(err).__name__})"


def go_offline() -> None:
    """Put huggingface_hub, transformers and datasets into offline mode for this process and its children."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from huggingface_hub import constants

    constants.HF_HUB_OFFLINE = True
    try:
        import datasets.config as datasets_config

        datasets_config.HF_HUB_OFFLINE = datasets_config.HF_DATASETS_OFFLINE = True
    except ImportError:  # datasets is a dependency, but the hub check must not need it
        pass


def model_is_cached(hub_id: str, revision: str | None = None) -> bool:
    """Whether the local hub cache holds ``hub_id``'s ``config.json`` (a model downloaded before)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(hub_id, "config.json", revision=revision)
    return isinstance(found, str)


def require_hub_or_cache(hub_id: str, key: str, kind: str = "model", revision: str | None = None) -> None:
    """Before ``hub_id`` is loaded: if the hub is not reachable, go offline, and refuse a model that the local
    cache does not hold, with one line naming ``key``. Datasets are left to their loader (its cache check
    is its own), which then fails at once; :func:`unreachable_hint` words that error."""
    reason = hub_unreachable_reason()
    if reason is None:
        return
    go_offline()
    if kind == "model" and not model_is_cached(hub_id, revision):
        from prefix_rft.errors import ModelLoadError

        raise ModelLoadError(unreachable_hint(hub_id, key, reason))


def unreachable_hint(hub_id: str, key: str, reason: str, local: str | None = None) -> str:
    """The one line for a hub id that cannot be fetched: why, and (``local``, default: for a model) how to
    point at a local copy instead. ``key``: the config key that named it (``model.name_or_path``), or a
    description ending in the id's role (``benchmark math500 (hub id``...)."""
    local = local or (
        f"download it where you have network (huggingface-cli download {hub_id} --local-dir DIR) "
        f"and set {key}=DIR"
    )
    return f"{key}={hub_id}: the hub is not reachable ({reason}) and the local hub cache does not hold it; {local}"
