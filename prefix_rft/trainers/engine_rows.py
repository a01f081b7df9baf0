"""Which rows go to the generation engine, and with what token budget each.

Hybrid rollouts continue a demonstration prefix of ``L`` tokens, so their continuation may take
``max_completion_length - L`` tokens; whole-demonstration rows need no generation at all. TRL samples every
row of a call with one ``max_tokens`` and expects the same number of rows from every process on its vLLM
paths (it slices the gathered results by process index). These helpers keep both rules:

* :func:`rows_to_generate`: the rows that need sampling, padded (where vLLM needs equal counts across
  processes) with skipped rows up to the largest count, so every process sends as many rows;
* :func:`per_row_budgets`: a context in which TRL's vLLM call samples each row with its own ``max_tokens``
  (colocate: one ``SamplingParams`` per prompt; server: one request per distinct budget, sent by the main
  process). The transformers backend has one ``max_new_tokens`` per call: there the caller cuts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from accelerate.utils import gather_object


def rows_to_generate(trainer, wanted: Sequence[int], num_rows: int) -> list[int]:
    """Sorted row indices to send to the engine: ``wanted``, padded with other rows up to the largest
    ``len(wanted)`` over processes when TRL's vLLM path needs equal counts (several processes). Empty
    when no process wants any row (then no engine call is made). Collective with vLLM and several processes."""
    wanted = sorted(wanted)
    if not trainer.use_vllm or trainer.accelerator.num_processes == 1:
        return wanted
    count = torch.tensor([len(wanted)], device=trainer.accelerator.device)
    target = int(trainer.accelerator.gather(count).max())
    taken = set(wanted)
    fillers = [i for i in range(num_rows) if i not in taken][: target - len(wanted)]
    return sorted(wanted + fillers)


@contextmanager
def per_row_budgets(trainer, budgets: Sequence[int]) -> Iterator[None]:
    """Within the block, TRL's next vLLM generation samples row ``i`` of the call with at most
    ``budgets[i]`` tokens (each >= 1). No effect on the transformers backend. Collective in server mode
    (the main process needs every process's budgets)."""
    budgets = [max(int(b), 1) for b in budgets]
    if not trainer.use_vllm or not budgets:
        yield
        return
    generation = trainer.vllm_generation
    if generation.mode == "colocate":
        if generation.tensor_parallel_size != 1:
            # The call holds the whole tensor-parallel group's rows; one budget for all (the caller cuts).
            yield
            return
        llm = generation.llm
        generate = llm.generate

        def generate_with_budgets(prompts, sampling_params=None, *args, **kwargs):
            if (
                sampling_params is not None
                and not isinstance(sampling_params, list)
                and len(prompts) == len(budgets)
            ):
                sampling_params = [_with_max_tokens(sampling_params, b) for b in budgets]
            return generate(prompts, sampling_params, *args, **kwargs)

        with _instance_attribute(llm, "generate", generate_with_budgets):
            yield
        return
    all_budgets = gather_object(list(budgets))
    if not trainer.accelerator.is_main_process:
        yield
        return
    client = generation.vllm_client
    request = client.generate

    def generate_by_budget(prompts, *args, **kwargs):
        if len(prompts) != len(all_budgets) or kwargs.get("n", 1) != 1:
            return request(prompts, *args, **kwargs)
        return _split_by_budget(request, prompts, all_budgets, args, kwargs)

    with _instance_attribute(client, "generate", generate_by_budget):
        yield


@contextmanager
def _instance_attribute(obj, name: str, value) -> Iterator[None]:
    """Set ``obj.name`` for the block, then restore what the instance had (or let the class's show again)."""
    had = name in vars(obj)
    previous = vars(obj).get(name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        if had:
            setattr(obj, name, previous)
        else:
            delattr(obj, name)


def _with_max_tokens(params, max_tokens: int):
    clone = params.clone()
    clone.max_tokens = min(max_tokens, params.max_tokens) if params.max_tokens else max_tokens
    return clone


def _split_by_budget(request, prompts, budgets, args, kwargs) -> dict:
    """One server request per distinct budget (the OpenAI-style API takes one ``max_tokens``), results put
    back in row order."""
    limit = kwargs.get("max_tokens")
    parts: list[tuple[list[int], dict]] = []
    for budget in sorted(set(budgets)):
        rows = [i for i, b in enumerate(budgets) if b == budget]
        capped = min(budget, limit) if limit else budget
        parts.append((rows, request([prompts[i] for i in rows], *args, **{**kwargs, "max_tokens": capped})))
    merged: dict[str, list | None] = {}
    for key in parts[0][1]:
        if any(part[key] is None for _, part in parts):
            merged[key] = None
            continue
        values: list = [None] * len(prompts)
        for rows, part in parts:
            for row, value in zip(rows, part[key]):
                values[row] = value
        merged[key] = values
    return merged
