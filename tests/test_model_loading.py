"""model.config_overrides reach the checkpoint directory itself, so vLLM (which reads config.json) and the
trainer agree on the context window and RoPE base."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from prefix_rft.config.schema import ModelConfig
from prefix_rft.models.load import load_model, with_config_overrides


def model_cfg(**overrides):
    return OmegaConf.structured(
        ModelConfig(name_or_path="unused", dtype="float32", config_overrides=overrides)
    )


def test_overrides_are_written_into_a_patched_checkpoint(tiny_model_dir, tmp_path):
    cfg = model_cfg(max_position_embeddings=1024, rope_theta=5000.0)
    patched = Path(with_config_overrides(cfg, str(tiny_model_dir), cache_dir=tmp_path))
    assert patched != Path(tiny_model_dir) and patched.parent == tmp_path / "patched"
    config = json.loads((patched / "config.json").read_text())
    assert config["max_position_embeddings"] == 1024
    rope = config.get("rope_parameters") or {}
    assert rope.get("rope_theta", config.get("rope_theta")) == 5000.0
    weights = patched / "model.safetensors"
    assert (
        weights.is_symlink() and weights.resolve() == (Path(tiny_model_dir) / "model.safetensors").resolve()
    )
    # the same call again reuses the directory; no overrides means the original path
    assert with_config_overrides(cfg, str(tiny_model_dir), cache_dir=tmp_path) == str(patched)
    assert with_config_overrides(model_cfg(), str(tiny_model_dir), cache_dir=tmp_path) == str(tiny_model_dir)

    original = load_model(model_cfg(), str(tiny_model_dir))
    reloaded = load_model(model_cfg(), str(patched))  # no in-memory overrides needed any more
    assert reloaded.config.max_position_embeddings == 1024
    for (name, a), (_, b) in zip(original.state_dict().items(), reloaded.state_dict().items()):
        assert torch.equal(a, b), name


def test_unknown_override_names_the_key(tiny_model_dir, tmp_path):
    with pytest.raises(ValueError, match="model.config_overrides.no_such_field"):
        with_config_overrides(model_cfg(no_such_field=1), str(tiny_model_dir), cache_dir=tmp_path)
    assert not list((tmp_path / "patched").iterdir())  # nothing half-built is left behind
