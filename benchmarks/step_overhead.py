"""Per-step wall time and peak memory: PrefixRFTTrainer (1 hybrid, entropy_top) vs TRL GRPOTrainer (Dr. GRPO).

python -m benchmarks.step_overhead            # tiny-warm model, batch 16, G 8, 64 tokens, 40 timed steps each
python -m benchmarks.step_overhead --quick    # random tiny model, small batch, 3 timed steps (< 1 minute)

Both trainers run in one invocation, each in its own worker process (so each has its own RSS), on the
same model, data, batch, lengths and reward. The steps alternate A B A B ...: a worker only starts a
step when told to, and every other worker is then idle (blocked on a pipe), so the two never compete
for cores and a change in machine load hits both alike. Inside each step the script times
``_generate_and_score_completions`` (generation + reward + advantages), ``_compute_loss`` (forward +
loss) and ``accelerator.backward``; the rest is the optimizer step, gradient clipping and bookkeeping.
Peak memory per step is the resident-set high-water mark (VmHWM, reset through
``/proc/self/clear_refs`` at the step's start) minus the RSS at the start, and on CUDA
``torch.cuda.max_memory_allocated``.

The reward is the fraction of digit characters in the completion: it varies between rollouts of any
model, so advantages and gradients are non-zero without depending on the model solving the task.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python benchmarks/step_overhead.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import format_table, machine_info, median, output_dir, pyplot, save_figure, write_json

NAME = "step_overhead"
TRAINERS = ("prefix_rft", "grpo")
PHASES = ("generate", "loss", "backward", "other")


def digit_reward(completions, **kwargs) -> list[float]:
    """Fraction of digit characters: varies between rollouts, so gradients are non-zero."""
    texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
    return [sum(ch.isdigit() for ch in t) / max(len(t), 1) for t in texts]


# ---------------------------------------------------------------------------- memory probes
def _status_kib(field: str) -> int | None:
    try:
        match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _ru_maxrss_kib() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


# ---------------------------------------------------------------------------- worker
def _dataset(n: int, seed: int):
    from datasets import Dataset

    from prefix_rft.data.prompts import build_prompt
    from prefix_rft.data.synthetic import generate_problems

    rows = generate_problems(n, seed=seed, min_steps=1, max_steps=4)
    return Dataset.from_list(
        [
            {"prompt": build_prompt(r["problem"]), "answer": r["answer"], "demonstration": r["solution"]}
            for r in rows
        ]
    )


def _build_trainer(kind: str, opts: dict[str, Any], scratch: str):
    """One trainer; the GRPOConfig is identical for both kinds."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from prefix_rft.models.tiny import ensure_tiny_model
    from prefix_rft.prefix.schedulers import build_scheduler
    from prefix_rft.trainers.prefix_rft import PrefixRFTConfig, PrefixRFTTrainer

    model_dir = ensure_tiny_model(opts["model"])
    use_cuda = opts["device"] == "cuda"
    engine: dict[str, Any] = {}
    if opts.get("backend", "transformers") == "vllm_colocate":  # benchmarks/vllm_step_time.py
        engine = {"use_vllm": True, "vllm_mode": "colocate", "vllm_gpu_memory_utilization": 0.3}
    args = GRPOConfig(
        **engine,
        output_dir=scratch,
        per_device_train_batch_size=opts["batch"],
        num_generations=opts["num_generations"],
        max_completion_length=opts["max_completion_length"],
        learning_rate=opts["learning_rate"],
        max_steps=opts["warmup"] + opts["steps"],
        loss_type="dr_grpo",
        scale_rewards="none",
        beta=0.0,
        epsilon=0.2,
        temperature=1.0,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        gradient_checkpointing=False,
        bf16=False,
        use_cpu=not use_cuda,
        seed=opts["seed"],
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    common = dict(
        model=AutoModelForCausalLM.from_pretrained(model_dir),
        reward_funcs=[digit_reward],
        args=args,
        train_dataset=_dataset(max(64, opts["batch"] * (opts["warmup"] + opts["steps"])), opts["seed"]),
        processing_class=AutoTokenizer.from_pretrained(model_dir),
    )
    if kind == "grpo":
        return GRPOTrainer(**common)
    return PrefixRFTTrainer(
        **common,
        algorithm=PrefixRFTConfig(num_prefixed=1, prefix_update="entropy_top", keep_fraction=0.2),
        # The paper's schedule, shortened so the ratio range moves within the benchmark's steps.
        prefix_scheduler=build_scheduler(
            "cosine", high=0.95, low_start=0.95, low_end=0.05, decay_steps=opts["warmup"] + opts["steps"]
        ),
    )


class _Timers:
    """Accumulated seconds per phase within the current step (wrapped methods add to it)."""

    def __init__(self) -> None:
        self.seconds = {p: 0.0 for p in PHASES}
        self.cpu_seconds = {p: 0.0 for p in PHASES}
        self.batch: dict[str, float] = {}

    def reset(self) -> None:
        self.seconds = {p: 0.0 for p in PHASES}
        self.cpu_seconds = {p: 0.0 for p in PHASES}

    def wrap(self, phase: str, fn, sync):
        def timed(*args, **kwargs):
            sync()
            t0, c0 = time.perf_counter(), time.process_time()
            out = fn(*args, **kwargs)
            sync()
            self.seconds[phase] += time.perf_counter() - t0
            self.cpu_seconds[phase] += time.process_time() - c0
            if phase == "generate":
                self._describe(out)
            return out

        return timed

    def _describe(self, out: dict) -> None:
        mask = out["completion_mask"].float()
        self.batch["completion_tokens_mean"] = mask.sum(1).mean().item()
        self.batch["completion_width"] = int(mask.size(1))
        if "prefix_mask" in out:
            prefix = out["prefix_mask"].float()
            self.batch["prefix_tokens_total"] = prefix.sum().item()
            self.batch["generated_tokens_total"] = (mask - prefix * mask).sum().item()
        else:
            self.batch["prefix_tokens_total"] = 0.0
            self.batch["generated_tokens_total"] = mask.sum().item()


def _worker(kind: str, conn, opts: dict[str, Any]) -> None:
    """Build one trainer and train it, running each step only when the parent says ``go``."""
    import tempfile

    import torch
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback

    if opts["threads"]:
        torch.set_num_threads(opts["threads"])
    use_cuda = opts["device"] == "cuda"
    if opts.get("backend", "transformers") != "transformers" and not use_cuda:
        # vLLM on CPU: the scale lane's shims (TRL's weight sync does not run on vLLM-CPU as shipped).
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        from tests.scale.shims import vllm_colocate

        vllm_colocate.install(share_engine=False)
    if opts.get("backend", "transformers") != "transformers":
        # Each worker's engine forms its own one-process group; two on the default port would collide.
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            os.environ["MASTER_PORT"] = str(sock.getsockname()[1])
    sync = torch.cuda.synchronize if use_cuda else (lambda: None)
    timers = _Timers()
    with tempfile.TemporaryDirectory() as scratch:
        trainer = _build_trainer(kind, opts, scratch)
        trainer._generate_and_score_completions = timers.wrap(
            "generate", trainer._generate_and_score_completions, sync
        )
        trainer._compute_loss = timers.wrap("loss", trainer._compute_loss, sync)
        trainer.accelerator.backward = timers.wrap("backward", trainer.accelerator.backward, sync)

        class Baton(TrainerCallback):
            """Blocks at each step's start until the parent hands over; reports the step at its end."""

            def on_step_begin(self, args, state, control, **kwargs):
                conn.send(("ready", None))
                msg = conn.recv()
                if msg != "go":
                    raise RuntimeError(f"worker {kind}: expected 'go', got {msg!r}")
                timers.reset()
                self.rss0 = _status_kib("VmRSS")
                self.hwm_ok = _reset_peak_rss()
                self.maxrss0 = _ru_maxrss_kib()
                if use_cuda:
                    torch.cuda.reset_peak_memory_stats()
                    self.cuda0 = torch.cuda.memory_allocated()
                sync()
                self.t0, self.c0 = time.perf_counter(), time.process_time()

            def on_step_end(self, args, state, control, **kwargs):
                sync()
                total, cpu = time.perf_counter() - self.t0, time.process_time() - self.c0
                row = {"step": state.global_step, "total_s": total, "cpu_s": cpu, **timers.batch}
                row.update({f"{p}_s": timers.seconds[p] for p in PHASES[:-1]})
                row["other_s"] = total - sum(timers.seconds[p] for p in PHASES[:-1])
                row.update({f"{p}_cpu_s": timers.cpu_seconds[p] for p in PHASES[:-1]})
                hwm = _status_kib("VmHWM")
                if self.hwm_ok and hwm is not None and self.rss0 is not None:
                    row["peak_rss_delta_mib"] = (hwm - self.rss0) / 1024
                    row["memory_probe"] = "VmHWM-reset"
                else:  # lifetime peak: only shows growth beyond every earlier step
                    row["peak_rss_delta_mib"] = (_ru_maxrss_kib() - self.maxrss0) / 1024
                    row["memory_probe"] = "ru_maxrss"
                row["rss_mib"] = (_status_kib("VmRSS") or 0) / 1024
                if use_cuda:
                    row["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
                    row["cuda_peak_delta_mib"] = (torch.cuda.max_memory_allocated() - self.cuda0) / 2**20
                conn.send(("result", row))

        trainer.add_callback(Baton())
        trainer.remove_callback(PrinterCallback)  # the per-step log dicts would drown the table
        try:
            trainer.train()
        except BaseException as err:  # tell the parent instead of leaving it waiting
            conn.send(("error", f"{type(err).__name__}: {err}"))
            raise
        conn.send(("done", None))


# ---------------------------------------------------------------------------- parent
def _expect(conn, kind: str, want: str):
    msg, payload = conn.recv()
    if msg == "error":
        raise RuntimeError(f"worker {kind} failed: {payload}")
    if msg != want:
        raise RuntimeError(f"worker {kind}: expected {want!r}, got {msg!r}")
    return payload


def run(opts: dict[str, Any]) -> dict[str, Any]:
    """Train both trainers step by step, alternating; returns per-step rows and summaries."""
    ctx = mp.get_context("spawn")
    workers = {}
    for kind in TRAINERS:
        parent_conn, child_conn = ctx.Pipe()
        proc = ctx.Process(target=_worker, args=(kind, child_conn, opts), daemon=True)
        proc.start()
        workers[kind] = (proc, parent_conn)
    rows: dict[str, list[dict]] = {k: [] for k in TRAINERS}
    try:
        for kind in TRAINERS:  # both built and blocked at their first step before any timing starts
            _expect(workers[kind][1], kind, "ready")
        total = opts["warmup"] + opts["steps"]
        for step in range(total):
            for kind in TRAINERS:  # A B A B ...
                conn = workers[kind][1]
                conn.send("go")
                row = _expect(conn, kind, "result")
                row["warmup"] = step < opts["warmup"]
                rows[kind].append(row)
                # Wait until this worker is idle again (logging done, next batch fetched) before the
                # other one starts, so no two steps ever share the cores.
                _expect(conn, kind, "ready" if step < total - 1 else "done")
    finally:
        for proc, _ in workers.values():
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
    return {"steps": rows, "summary": summarise(rows)}


def summarise(rows: dict[str, list[dict]]) -> dict[str, dict[str, float]]:
    """Medians over the timed (non-warm-up) steps, and the Prefix-RFT / GRPO ratio of each."""
    summary: dict[str, dict[str, float]] = {}
    keys = ["total_s", "cpu_s", *(f"{p}_s" for p in PHASES), *(f"{p}_cpu_s" for p in PHASES[:-1])]
    keys += ["peak_rss_delta_mib", "completion_tokens_mean"]
    keys += ["prefix_tokens_total", "generated_tokens_total", "cuda_peak_mib"]
    for kind, kind_rows in rows.items():
        timed = [r for r in kind_rows if not r["warmup"]]
        summary[kind] = {
            f"median_{k}": median([r[k] for r in timed if k in r]) for k in keys if any(k in r for r in timed)
        }
        # The fastest step is the least disturbed by other processes on a shared machine.
        summary[kind]["min_total_s"] = min(r["total_s"] for r in timed)
        summary[kind]["min_cpu_s"] = min(r["cpu_s"] for r in timed)
        summary[kind]["timed_steps"] = len(timed)
    a, b = summary["prefix_rft"], summary["grpo"]
    summary["ratio_prefix_rft_over_grpo"] = {
        k: a[k] / b[k] for k in a if k in b and k != "timed_steps" and b[k] not in (0, 0.0)
    }
    return summary


def report(result: dict[str, Any]) -> str:
    """The printed table: median seconds per phase, memory and batch shape per trainer, and the ratio."""
    s = result["summary"]
    cols = [
        ("total_s", "step s"),
        ("cpu_s", "step CPU s"),
        ("generate_s", "generate s"),
        ("loss_s", "loss fwd s"),
        ("backward_s", "backward s"),
        ("other_s", "optim+other s"),
        ("peak_rss_delta_mib", "peak RSS +MiB"),
        ("completion_tokens_mean", "tokens/completion"),
        ("generated_tokens_total", "generated tok/step"),
    ]
    if "median_cuda_peak_mib" in s["grpo"]:
        cols.append(("cuda_peak_mib", "CUDA peak MiB"))
    rows = []
    for kind in TRAINERS:
        rows.append(
            [kind] + [s[kind].get(f"median_{k}", float("nan")) for k, _ in cols] + [s[kind]["min_total_s"]]
        )
    ratio = s["ratio_prefix_rft_over_grpo"]
    rows.append(
        ["ratio PRFT/GRPO"]
        + [ratio.get(f"median_{k}", float("nan")) for k, _ in cols]
        + [ratio["min_total_s"]]
    )
    return format_table(["trainer (median)"] + [c for _, c in cols] + ["fastest step s"], rows)


def plot(result: dict[str, Any], path: Path) -> Path:
    """Left: stacked median phase times per trainer; right: step time per step (both trainers)."""
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    s = result["summary"]
    bottom = [0.0] * len(TRAINERS)
    for phase in PHASES:
        vals = [s[k].get(f"median_{phase}_s", 0.0) for k in TRAINERS]
        ax1.bar(TRAINERS, vals, bottom=bottom, label=phase)
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax1.set_ylabel("median seconds per step")
    ax1.set_title("where the step time goes")
    ax1.legend()
    for kind in TRAINERS:
        steps = result["steps"][kind]
        ax2.plot([r["step"] for r in steps], [r["total_s"] for r in steps], marker="o", label=kind)
    ax2.set_xlabel("optimizer step (warm-up included)")
    ax2.set_ylabel("seconds")
    ax2.set_title("step time, alternating A B A B")
    ax2.legend()
    return save_figure(fig, path)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="random tiny model, small batch, 3 timed steps")
    p.add_argument("--steps", type=int, default=None, help="timed steps per trainer (default 40; quick 3)")
    p.add_argument("--warmup", type=int, default=None, help="untimed first steps (default 2; quick 1)")
    p.add_argument("--model", default=None, help="built-in preset: tiny-warm (default) or tiny (quick)")
    p.add_argument("--batch", type=int, default=None, help="per-device batch (rollouts); default 16, quick 8")
    p.add_argument(
        "--num-generations", type=int, default=None, help="rollouts per prompt; default 8, quick 4"
    )
    p.add_argument("--max-completion-length", type=int, default=None, help="default 64, quick 32")
    p.add_argument("--learning-rate", type=float, default=2e-5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads per worker (default 1 on CPU: idle OpenMP threads spin and inflate CPU time "
        "when other processes share the cores; 0 = torch's default)",
    )
    p.add_argument("--out", default=None, help=f"output folder (default benchmarks/results/{NAME}/)")
    return p.parse_args(argv)


def options(ns: argparse.Namespace) -> dict[str, Any]:
    """Flags -> worker options, with the quick or full defaults filled in."""
    quick = ns.quick
    pick = lambda value, full, fast: value if value is not None else (fast if quick else full)  # noqa: E731
    device = ns.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    opts = {
        "steps": pick(ns.steps, 40, 3),
        "warmup": pick(ns.warmup, 2, 1),
        "model": pick(ns.model, "tiny-warm", "tiny"),
        "batch": pick(ns.batch, 16, 8),
        "num_generations": pick(ns.num_generations, 8, 4),
        "max_completion_length": pick(ns.max_completion_length, 64, 32),
        "learning_rate": ns.learning_rate,
        "seed": ns.seed,
        "device": device,
        "threads": ns.threads if ns.threads is not None else (1 if device == "cpu" else 0),
        "quick": quick,
    }
    if opts["batch"] % opts["num_generations"]:
        raise SystemExit(f"--batch {opts['batch']} must be a multiple of --num-generations")
    if opts["steps"] < 1:
        raise SystemExit("--steps must be >= 1")
    return opts


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table, write ``step_overhead.json`` and ``step_overhead.png``."""
    ns = parse_args(argv)
    opts = options(ns)
    out = output_dir(NAME, ns.out)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    start = time.perf_counter()
    result = run(opts)
    result["options"] = opts
    result["machine"] = machine_info()
    result["wall_s"] = time.perf_counter() - start
    table = report(result)
    result["table"] = table
    write_json(out / f"{NAME}.json", result)
    plot(result, out / f"{NAME}.png")
    print(table)
    print(
        f"\n{opts['steps']} timed steps per trainer after {opts['warmup']} warm-up, model {opts['model']}, "
        f"device {opts['device']}; wall {result['wall_s']:.0f}s; results in {out}"
    )
    return result


if __name__ == "__main__":
    main()
