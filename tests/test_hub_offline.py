"""A hub model or dataset without network, through the real commands: one line at once (no retries), saying
the hub is not reachable and how to point at a local copy; a model already in the local cache still loads."""

from __future__ import annotations

import time

import pytest

from prefix_rft import hub


def one_line(code: int, err: str, *needles: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("prefix-rft-")]
    assert code == 2 and "Traceback" not in err and len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def no_network(monkeypatch):
    """No HF_HUB_OFFLINE, and a hub endpoint that refuses connections (as a machine without network)."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", *hub._PROXY_VARS):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    hub.hub_unreachable_reason.cache_clear()
    yield
    hub.hub_unreachable_reason.cache_clear()


@pytest.fixture
def offline():
    hub.hub_unreachable_reason.cache_clear()
    yield
    hub.hub_unreachable_reason.cache_clear()


def test_reasons(no_network, monkeypatch):
    assert hub.hub_unreachable_reason() == "cannot connect to 127.0.0.1:9 (Connection refused)"
    hub.hub_unreachable_reason.cache_clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.hub_unreachable_reason() == "HF_HUB_OFFLINE=1 is set"
    hub.hub_unreachable_reason.cache_clear()
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # behind a proxy the proxy decides
    assert hub.hub_unreachable_reason() is None


def test_train_hub_model_offline_is_one_line(train_cli, offline, tmp_path):
    started = time.perf_counter()
    code, _, err = train_cli("model.name_or_path=Org/not-cached-model", f"hydra.run.dir={tmp_path / 'r'}")
    one_line(
        code,
        err,
        "model error: model.name_or_path=Org/not-cached-model: the hub is not reachable (HF_HUB_OFFLINE=1 is set)",
        "huggingface-cli download Org/not-cached-model --local-dir DIR) and set model.name_or_path=DIR",
    )
    assert time.perf_counter() - started < 30


def test_train_hub_data_without_network_is_one_line_without_retries(train_cli, no_network, tmp_path):
    started = time.perf_counter()
    code, out, err = train_cli(
        "data=openr1_math", "data.max_prompt_length=null", f"hydra.run.dir={tmp_path / 'r'}"
    )
    one_line(
        code,
        err,
        "data error: data.path=Elliott/Openr1-Math-46k-8192: the hub is not reachable (cannot connect to "
        "127.0.0.1:9",
        "data.source=local data.path=<file>",
    )
    assert "Retrying" not in out + err
    assert time.perf_counter() - started < 30


def test_eval_hub_model_and_benchmark_offline_are_one_line(eval_cli, offline, tmp_path):
    code, out, err = eval_cli("model_path=Org/not-cached-model", f"output_dir={tmp_path / 'e1'}")
    one_line(code, err, "model_path=Org/not-cached-model: the hub is not reachable", "model_path=DIR")
    assert "samples already" not in out and not (tmp_path / "e1").exists()
    code, out, err = eval_cli("benchmarks=[math500]", f"output_dir={tmp_path / 'e2'}")
    one_line(
        code,
        err,
        "benchmark MATH-500 from hub id=HuggingFaceH4/MATH-500: the hub is not reachable",
        "data_dir=<folder of JSONL files>",
    )
    assert not (tmp_path / "e2").exists()


def test_a_cached_model_passes_offline(offline, tmp_path, monkeypatch):
    from huggingface_hub import constants

    snapshot = tmp_path / "models--Org--cached" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (tmp_path / "models--Org--cached" / "refs").mkdir()
    (tmp_path / "models--Org--cached" / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    assert hub.model_is_cached("Org/cached") and not hub.model_is_cached("Org/other")
    hub.require_hub_or_cache("Org/cached", "model.name_or_path")  # no error: the cache serves it
    with pytest.raises(Exception, match="local hub cache does not hold it"):
        hub.require_hub_or_cache("Org/other", "model.name_or_path")
