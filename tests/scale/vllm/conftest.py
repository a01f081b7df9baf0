"""Fixtures of the vLLM half of the scale lane: one training process per backend (all algorithms share its
imports and, colocated, its engine), one ``trl vllm-serve`` server for the session, bound to 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
RUN_TRAIN = Path(__file__).resolve().parent / "run_train.py"

# The tiny warm-started model on easy problems (rewards differ within groups, so RL has a gradient), a
# learning rate high enough that a stale engine would drift visibly from the policy within 2-3 steps.
SMALL_RUN = [
    "model.name_or_path=builtin:tiny-warm",
    "data.synthetic.num_train=16",
    "data.synthetic.train_min_steps=2",
    "data.synthetic.train_max_steps=3",
    "trainer.max_steps=2",
    "trainer.per_device_train_batch_size=8",
    "trainer.num_generations=4",
    "trainer.max_completion_length=48",
    "trainer.learning_rate=3e-3",
    "trainer.save_steps=1000",
    "heldout_eval.enabled=false",
    "algorithm.sft_buffer_size=2",  # ReLIFT: its SFT buffer fills within the 2 steps
    "algorithm.mu_warmup_steps=0",  # CHORD: its SFT weight is > 0 from the first step
]
# Every algorithm of the issue; prefix_in_prompt twice (guide=all, guide=failed).
ALGORITHMS = ["rft", "prefix_rft", "luffy", "prefix_in_prompt", "relift", "chord"]
RUNS = [*ALGORITHMS, "prefix_in_prompt_failed"]


def lane_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def train_jobs(out: Path, backend_overrides: list[str]) -> list[str]:
    """The driver's argument list: a sweep over ALGORITHMS, POPE's guide=failed, prefix_rft with LoRA (TRL
    syncs the merged weights), and a resumed prefix_rft run (2 steps with a checkpoint each, then step 3)."""
    common = [f"generation={backend_overrides[0]}", *backend_overrides[1:], *SMALL_RUN]
    return [
        "-m",
        "algorithm=" + ",".join(ALGORITHMS),
        f"hydra.sweep.dir={out}",
        "hydra.sweep.subdir=${algorithm.name}",
        *common,
        "::",
        "algorithm=prefix_in_prompt",
        "algorithm.guide=failed",
        f"hydra.run.dir={out / 'prefix_in_prompt_failed'}",
        *common,
        "::",
        "algorithm=prefix_rft",
        "peft=lora",
        "peft.lora_dropout=0",  # dropout would make the trainer's log-probs noisy, not the engine's
        f"hydra.run.dir={out / 'lora'}",
        *common,
        "::",
        "algorithm=prefix_rft",
        f"hydra.run.dir={out / 'resume'}",
        *common,
        "trainer.save_steps=1",
        "::",
        "algorithm=prefix_rft",
        f"hydra.run.dir={out / 'resume'}",
        *common,
        "trainer.save_steps=1",
        "trainer.max_steps=3",
        "resume_from_checkpoint=latest",
    ]


def run_driver(args: list[str], log: Path, timeout: int = 900) -> None:
    cmd = [sys.executable, str(RUN_TRAIN), *args]
    with log.open("w") as out:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=lane_env(), timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd[:4])}... failed:\n{log.read_text()[-6000:]}"


def read_record(run: Path) -> tuple[list[dict], list[dict]]:
    """(batches, engine requests) the driver recorded for one run folder."""
    lines = [json.loads(x) for x in (run / "engine_record.jsonl").read_text().splitlines()]
    return [r for r in lines if r["kind"] == "batch"], [r for r in lines if r["kind"] == "request"]


def mean_gap(batch: dict) -> float | None:
    """Mean |engine - trainer| log-prob over the generated tokens of one recorded batch (prefix and
    demonstration tokens carry no engine log-prob); None when the batch has no generated token."""
    diffs = [
        abs(e - t)
        for row in batch["rows"]
        for e, t in zip(row["engine"], row["trainer"])
        if e is not None and t is not None
    ]
    return sum(diffs) / len(diffs) if diffs else None


@pytest.fixture(scope="session")
def warm_model_dir() -> Path:
    from prefix_rft.models.tiny import ensure_tiny_model

    return ensure_tiny_model("tiny-warm")


@pytest.fixture(scope="session")
def colocate_runs(tmp_path_factory) -> Path:
    """All runs under ``generation=vllm_colocate`` in one process (one shared engine)."""
    out = tmp_path_factory.mktemp("colocate")
    run_driver(["--shim", "colocate", "--record", "--", *train_jobs(out, ["vllm_colocate"])], out / "log.txt")
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory, warm_model_dir):
    """``trl vllm-serve`` on an untied copy of the tiny model, with the ``+cpu`` metadata shim; yields its port.
    Stopped through its own process group (started here, in a new session)."""
    from tests.scale.shims.vllm_server import write_untied_copy, write_vllm_metadata

    root = tmp_path_factory.mktemp("server")
    model = write_untied_copy(warm_model_dir, root / "model")
    env = lane_env()
    env["PYTHONPATH"] = os.pathsep.join([str(write_vllm_metadata(root / "meta")), env["PYTHONPATH"]])
    port = _free_port()
    trl = Path(sys.executable).with_name("trl")
    cmd = [str(trl), "vllm-serve", "--model", str(model), "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--max_model_len", "512", "--dtype", "float32"]
    log = root / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 420
        while True:
            assert proc.poll() is None, f"vLLM server exited:\n{log.read_text()[-4000:]}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"vLLM server not up in 420 s:\n{log.read_text()[-4000:]}"
            time.sleep(2)
        yield port
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture(scope="session")
def server_runs(tmp_path_factory, vllm_server) -> Path:
    """All runs under ``generation=vllm_server`` against the session's server, in one process."""
    out = tmp_path_factory.mktemp("server_runs")
    backend = [
        "vllm_server",
        "trainer.vllm_server_host=127.0.0.1",
        f"trainer.vllm_server_port={vllm_server}",
    ]
    args = [
        "--shim",
        "server",
        "--sync-dir",
        str(out / "weights"),
        "--record",
        "--",
        *train_jobs(out, backend),
    ]
    run_driver(args, out / "log.txt")
    return out
