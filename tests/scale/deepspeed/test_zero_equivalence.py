"""One step on 2 DeepSpeed processes x b rows equals one single-process step of 2b rows (prefix_rft, sft).

The DeepSpeed side is a real ``accelerate launch`` (ZeRO-2 and ZeRO-3, 2 CPU processes, float32) of
equivalence_step.py; the reference is the same trainer, built the same way, in this process without
DeepSpeed. Plain SGD at lr 1 (the change is the gradient itself), no clipping, identical rollouts (see
equivalence_step.py). Prefix-RFT keeps its default entropy-based prefix-token selection: the threshold is
taken over the prefix tokens of both processes together, the same tokens the single process holds.

Tolerance (measured on ZeRO-2: differences <= 1.2e-7 on weights of magnitude ~1, i.e. one float32 rounding; loss
relative difference ~2e-7): weights within 1e-6 absolute, where one step moves them by ~1e-3; the logged
loss within 1e-5 relative. ReLIFT is not here: it refuses DeepSpeed (test_zero_algorithms.py).
"""

from __future__ import annotations

import pytest
import torch
from equivalence_step import one_step

from prefix_rft.models.load import resolve_model_path

MODEL = "builtin:tiny-warm"
ROWS_PER_PROCESS = 4  # one group of 4 rollouts (or 4 demonstrations) on each process


ALGORITHMS = ["prefix_rft", "sft"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The single-process step of 2 x ROWS_PER_PROCESS rows, per algorithm (computed once)."""
    done = {}

    def get(algorithm: str) -> dict:
        if algorithm not in done:
            out = tmp_path_factory.mktemp(f"reference-{algorithm}")
            done[algorithm] = one_step(algorithm, MODEL, out, 2 * ROWS_PER_PROCESS)
        return done[algorithm]

    return get


@pytest.fixture(scope="module")
def deepspeed_steps(launch, tmp_path_factory):
    """``deepspeed_steps(stage)``: the folder of one launch that stepped every algorithm of ALGORITHMS."""
    done = {}

    def get(stage: int):
        if stage not in done:
            out = tmp_path_factory.mktemp(f"zero{stage}-steps")
            launch(stage, "equivalence_step.py", str(out), MODEL, str(ROWS_PER_PROCESS), *ALGORITHMS, cwd=out)
            done[stage] = out
        return done[stage]

    return get


@pytest.mark.parametrize("stage", [2, 3])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_two_processes_step_equals_one_process_with_twice_the_batch(
    deepspeed_steps, reference, stage, algorithm
):
    from safetensors.torch import load_file

    ds = torch.load(deepspeed_steps(stage) / f"{algorithm}.pt", weights_only=True)
    assert (ds["num_processes"], ds["deepspeed"], ds["zero_stage"]) == (2, True, stage)
    ref = reference(algorithm)
    assert (ref["num_processes"], ref["deepspeed"]) == (1, False)

    assert ds["loss"] == pytest.approx(ref["loss"], rel=1e-5)
    assert ref["loss"] != 0.0
    start = load_file(f"{resolve_model_path(MODEL)}/model.safetensors")
    names = set(start) & set(ref["weights"])
    assert names and names <= set(ds["weights"])
    moved = max((ref["weights"][n] - start[n].float()).abs().max().item() for n in names)
    assert moved > 1e-4, "the step hardly changed the weights: the comparison would prove nothing"
    for name in sorted(names):
        torch.testing.assert_close(
            ds["weights"][name], ref["weights"][name], rtol=0, atol=1e-6, msg=lambda m, n=name: f"{n}: {m}"
        )
