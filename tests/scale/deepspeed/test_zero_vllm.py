"""ZeRO-3 and vLLM together, as on one node of GPUs: ``accelerate launch`` with the shipped zero3 recipe on 2
CPU processes trains ``prefix_rft`` 2 steps with ``generation=vllm_colocate`` (one engine per process).

What the combination adds to the runs of each alone: the weight sync reads ZeRO-3 shards (TRL gathers each
parameter across both ranks before the engine reloads it), and each rank's engine generates that rank's
rows, hybrids included. The engine-vs-trainer log-prob gap after every sync is the check that each engine
holds the full, current weights (an engine with a stale output layer parts by ~1e-2 at this learning rate:
tests/scale/vllm/test_shims.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file

from prefix_rft.models.load import resolve_model_path
from tests.scale.vllm.conftest import mean_gap

MODEL = "builtin:tiny-warm"
# The vLLM tests' bound (tests/scale/vllm/test_training.py): both sides compute in float32, so the engine's
# mean log-prob of the generated tokens differs from the trainer's only by kernel order (~1e-6).
GAP_BOUND = 1e-4


@pytest.fixture(scope="module")
def run(launch, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("zero3-vllm")
    launch(3, "train_zero_vllm.py", str(out / "run"), MODEL, cwd=out)
    return out / "run"


def batches(run: Path, rank: int) -> list[dict]:
    lines = [json.loads(x) for x in (run / f"engine_record.rank{rank}.jsonl").read_text().splitlines()]
    requests = [r for r in lines if r["kind"] == "request"]
    assert requests, f"rank {rank}'s engine generated nothing"
    return [r for r in lines if r["kind"] == "batch"]


def test_both_ranks_ran_under_zero3(run):
    record = json.loads((run / "launch.json").read_text())
    assert "error" not in record, record.get("traceback")
    ranks = record["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1]
    for report in ranks:
        assert report["num_processes"] == 2 and report["distributed_type"] == "DistributedType.DEEPSPEED"
        assert report["backend"] == "gloo" and report["zero_stage"] == 3
        assert report["global_step"] == 2


@pytest.mark.parametrize("rank", [0, 1])
def test_each_rank_engine_generated_hybrids_that_start_with_the_demonstration(run, rank):
    steps = batches(run, rank)
    assert [b["step"] for b in steps] == [0, 1]
    n_prefixed = 0
    for batch in steps:
        for row in batch["rows"]:
            L, completion, demo = row["prefix_len"], row["completion"], row["demo"]
            if row["whole_demo"]:
                n_prefixed += 1
                assert all(x is None for x in row["engine"])  # never sampled
                continue
            if L:
                n_prefixed += 1
                # exactly the demonstration's first L tokens, which the engine did not sample
                assert completion[:L] == demo[:L]
                assert all(x is None for x in row["engine"][:L])
            assert len(completion) - L <= batch["max_completion_length"] - L
            assert all(x is not None for x in row["engine"][L:])
    assert n_prefixed > 0, f"rank {rank} trained no hybrid row"


@pytest.mark.parametrize("rank", [0, 1])
def test_each_rank_engine_matches_the_trainer_after_every_sync(run, rank):
    for batch in batches(run, rank):
        gap = mean_gap(batch)
        assert gap is not None, f"rank {rank} step {batch['step']}: no generated token"
        assert gap <= GAP_BOUND, f"rank {rank} step {batch['step']}: gap {gap:.2e}"


def test_the_ranks_generated_different_problems(run):
    # one group per rank per step, each from its own rank's engine (not one rank's rows twice)
    for on_rank0, on_rank1 in zip(batches(run, 0), batches(run, 1)):
        prompts0 = {tuple(r["prompt"]) for r in on_rank0["rows"]}
        assert prompts0.isdisjoint(tuple(r["prompt"]) for r in on_rank1["rows"])


def test_logprob_gap_is_logged_every_step(run):
    history = [json.loads(line) for line in (run / "log_history.jsonl").read_text().splitlines()]
    logged = [row["generation/logprob_gap"] for row in history if "generation/logprob_gap" in row]
    assert len(logged) == 2 and max(logged) <= GAP_BOUND, logged
    assert (run / "train.log").read_text().count("logprob gap") == 2  # in the progress line of each step


def test_weights_changed(run):
    start = load_file(str(Path(resolve_model_path(MODEL)) / "model.safetensors"))
    # ZeRO-3 gathered the full weights at save (the shipped recipe's zero3_save_16bit_model)
    final = load_file(str(run / "model.safetensors"))
    assert {n: final[n].shape for n in start} == {n: t.shape for n, t in start.items()}
    moved = max((final[n].float() - start[n].float()).abs().max().item() for n in start)
    assert moved > 1e-5, "2 steps under ZeRO-3 + vLLM left the weights unchanged"
