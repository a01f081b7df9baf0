"""The accelerate CPU shim (tests/scale/shims/accelerate_cpu.py) still patches what exists, and is still needed.

Fails loudly when accelerate changes: the patched method must exist with the signature the shim calls, and
unpatched it must still answer "no backend" for a DeepSpeed rank on this CPU-only machine (the reason the
shim exists). When accelerate learns to pick gloo itself, the second test fails: drop the shim then.
"""

from __future__ import annotations

import inspect

import pytest
import torch
from accelerate.state import PartialState
from accelerate.utils import DistributedType
from ds_harness import accelerate_cpu

DEEPSPEED_RANK_ENV = {"ACCELERATE_USE_DEEPSPEED": "true", "LOCAL_RANK": "0", "WORLD_SIZE": "2", "RANK": "0"}


@pytest.fixture
def deepspeed_rank_env(monkeypatch):
    for key, value in DEEPSPEED_RANK_ENV.items():
        monkeypatch.setenv(key, value)


def prepare(cpu: bool = False):
    # _prepare_backend reads only the environment and its arguments; a bare instance is enough to call it.
    return PartialState._prepare_backend(object.__new__(PartialState), cpu)


def test_the_patched_method_still_exists_with_the_signature_the_shim_calls():
    assert accelerate_cpu._ORIGINAL is PartialState.__dict__["_prepare_backend"] or (
        PartialState.__dict__["_prepare_backend"] is accelerate_cpu._prepare_backend_with_gloo
    )
    params = list(inspect.signature(accelerate_cpu._ORIGINAL).parameters)
    assert params == ["self", "cpu", "sagemaker_dp", "backend"], params


def test_unpatched_accelerate_finds_no_backend_for_a_deepspeed_rank_on_cpu(deepspeed_rank_env):
    assert not torch.cuda.is_available()
    accelerate_cpu.uninstall()
    backend, distributed_type = prepare()
    # The failure the shim exists for: no backend, so PartialState would declare one process.
    assert (backend, distributed_type) == (None, DistributedType.NO)


def test_patched_accelerate_answers_gloo_and_only_for_deepspeed_ranks(deepspeed_rank_env, monkeypatch):
    accelerate_cpu.install()
    try:
        assert prepare() == ("gloo", DistributedType.NO)
        # cpu=True already forms a gloo group in accelerate itself: untouched.
        assert prepare(cpu=True) == ("gloo", DistributedType.MULTI_CPU)
        monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "false")
        assert prepare() == (None, DistributedType.NO)
        monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
        monkeypatch.delenv("LOCAL_RANK")
        assert prepare() == (None, DistributedType.NO)
    finally:
        accelerate_cpu.uninstall()
    assert PartialState.__dict__["_prepare_backend"] is accelerate_cpu._ORIGINAL
