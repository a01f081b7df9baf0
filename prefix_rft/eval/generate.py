"""Generation backends for evaluation: transformers ``generate`` (CPU or one GPU) and vLLM, one interface.

Both take prompts as token ids (rendered here with the policy tokenizer, so the two backends see the
same text and no backend adds a second BOS) and return one completion string per prompt; a prompt
listed n times gets n independent samples.

Models: ``model_path`` may be a hub id, ``builtin:<preset>``, a full checkpoint folder, or a LoRA
adapter folder (it has ``adapter_config.json``; its base model is read from there). ``adapter_path``
puts an adapter on top of ``model_path``. transformers merges the adapter into the weights; vLLM
serves it through a ``LoRARequest``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from prefix_rft.config.model_options import ModelOptions
from prefix_rft.errors import ConfigError, MissingExtraError, ModelLoadError

logger = logging.getLogger(__name__)


class BackendUnavailable(MissingExtraError):
    """The configured generation backend cannot run here (e.g. vllm is not installed)."""


@dataclass
class SamplingSettings:
    """Decoding settings shared by both backends (LUFFY's evaluation: temperature 0.6, top_p 1.0, 8192)."""

    temperature: float = 0.6
    top_p: float = 1.0
    max_new_tokens: int = 8192
    seed: int = 0


@dataclass
class ModelSource:
    """Where the weights come from: base model path plus an optional LoRA adapter folder."""

    base: str
    adapter: str | None = None
    # Tokenizer folder: the adapter/checkpoint's own when it saved one, else the base model's.
    tokenizer: str = ""
    # How prefix_rft.models.load loads weights and tokenizer (dtype, chat_template, revision, ...).
    options: ModelOptions = field(default_factory=ModelOptions)


def _has_tokenizer(folder: Path) -> bool:
    return (folder / "tokenizer_config.json").is_file()


def resolve_model_source(
    model_path: str, adapter_path: str | None = None, options: ModelOptions | None = None, **fields: Any
) -> ModelSource:
    """Work out base weights, adapter and tokenizer folder for ``model_path`` / ``adapter_path``.

    A folder with ``adapter_config.json`` and no ``config.json`` is an adapter: its
    ``base_model_name_or_path`` becomes the base (``builtin:`` presets are built on first use).
    ``options`` (or its ``fields`` as keywords, e.g. ``dtype="float32"``): how the model is loaded.
    """
    options = options or ModelOptions(**fields)
    from prefix_rft.models.load import check_model_path, resolve_model_path

    base, adapter = model_path, adapter_path
    folder = Path(model_path)
    if (
        folder.is_dir()
        and (folder / "adapter_config.json").is_file()
        and not (folder / "config.json").is_file()
    ):
        if adapter_path is not None:
            raise ConfigError(
                f"model_path={model_path} is a LoRA adapter folder and adapter_path={adapter_path} is set too; "
                "give the base model as model_path and the adapter as adapter_path"
            )
        adapter = model_path
        base = _adapter_base(folder)
        check_model_path(base, f"base_model_name_or_path of {folder / 'adapter_config.json'}")
    else:
        check_model_path(model_path, "model_path")
    if adapter is not None:
        if not (Path(adapter) / "adapter_config.json").is_file():
            raise ModelLoadError(
                f"adapter_path={adapter} has no adapter_config.json (not a LoRA adapter folder)"
            )
    base = resolve_model_path(base)
    tokenizer = adapter if adapter is not None and _has_tokenizer(Path(adapter)) else base
    return ModelSource(base=base, adapter=adapter, tokenizer=tokenizer, options=options)


def _adapter_base(folder: Path) -> str:
    config = json.loads((folder / "adapter_config.json").read_text())
    base = config.get("base_model_name_or_path")
    if not base:
        raise ModelLoadError(
            f"{folder / 'adapter_config.json'} has no base_model_name_or_path; set model_path to the base"
        )
    return base


def load_eval_tokenizer(source: ModelSource):
    """The tokenizer with the configured chat template and a pad token (see prefix_rft.models.load)."""
    from prefix_rft.models.load import load_tokenizer

    return load_tokenizer(source.options, source.tokenizer)


def encode_prompts(
    tokenizer, prompts: list[list[dict[str, str]]], use_chat_template: bool = True
) -> list[list[int]]:
    """Token ids of conversational prompts: chat template with a generation prompt, or the raw text.

    Raw mode joins the messages' contents with blank lines and lets the tokenizer add its usual
    specials (a BOS where the model has one); the chat template already carries its own.
    """
    ids = []
    for messages in prompts:
        if use_chat_template:
            text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            ids.append(tokenizer(text, add_special_tokens=False)["input_ids"])
        else:
            text = "\n\n".join(m["content"] for m in messages)
            ids.append(tokenizer(text, add_special_tokens=True)["input_ids"])
    return ids


class Generator(Protocol):
    """What the runner needs from a backend."""

    tokenizer: Any

    def generate(
        self, prompt_ids: list[list[int]], sampling: SamplingSettings, seeds: list[int]
    ) -> list[str]:
        """One completion per prompt (same order); ``seeds``: one per prompt (see :func:`sample_seed`)."""
        ...


def sample_seed(base: int, key: str) -> int:
    """The seed of one sample, from the run seed and its (benchmark, item, sample index) key.

    Distinct per sample, so the copies of a prompt never share a random stream, and independent of
    batching, so a resumed run draws the same sample again where the backend seeds per prompt (vLLM).
    """
    return (base * 1_000_003 + zlib.crc32(key.encode())) % (2**31 - 1)


class TransformersGenerator:
    """``model.generate`` with left padding; adapters are merged into the weights for speed."""

    def __init__(self, source: ModelSource, device: str | None = None) -> None:
        import torch

        from prefix_rft.models.load import load_model

        self.tokenizer = load_eval_tokenizer(source)
        model = load_model(source.options, source.base)
        if source.adapter is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, source.adapter).merge_and_unload()
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()

    def generate(
        self, prompt_ids: list[list[int]], sampling: SamplingSettings, seeds: list[int]
    ) -> list[str]:
        """Sample one completion per prompt in a single left-padded batch (seeded by the first seed)."""
        import torch

        if not prompt_ids:
            return []
        pad = self.tokenizer.pad_token_id
        width = max(len(ids) for ids in prompt_ids)
        input_ids = torch.full((len(prompt_ids), width), pad, dtype=torch.long)
        attention = torch.zeros((len(prompt_ids), width), dtype=torch.long)
        for row, ids in enumerate(prompt_ids):  # left padding: generation continues every row at its end
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            attention[row, width - len(ids) :] = 1
        torch.manual_seed(seeds[0])  # generate() has one random stream per call, not one per row
        decoding: dict[str, Any] = {"do_sample": False}
        if sampling.temperature > 0:
            # top_k=0: no top-k cut (a generation_config default of 50 would change the sampling).
            decoding = {
                "do_sample": True,
                "temperature": sampling.temperature,
                "top_p": sampling.top_p,
                "top_k": 0,
            }
        with torch.no_grad():
            out = self.model.generate(
                input_ids=input_ids.to(self.device),
                attention_mask=attention.to(self.device),
                max_new_tokens=sampling.max_new_tokens,
                pad_token_id=pad,
                **decoding,
            )
        return self.tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)


class VllmGenerator:
    """vLLM offline inference (``vllm.LLM`` + ``SamplingParams``); LoRA adapters via ``LoRARequest``."""

    def __init__(
        self,
        source: ModelSource,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.85,
        max_model_len: int | None = None,
        max_lora_rank: int = 64,
    ) -> None:
        try:
            from vllm import LLM
        except ImportError as err:
            raise BackendUnavailable(
                "backend=vllm needs the vllm package (pip install -e '.[vllm]' on a CUDA machine); "
                f"it could not be imported ({err}). Use backend=transformers to evaluate without it."
            ) from err
        self.tokenizer = load_eval_tokenizer(source)
        opts = source.options
        kwargs: dict[str, Any] = {}
        if opts.config_overrides:
            kwargs["hf_overrides"] = dict(opts.config_overrides)
        if source.adapter is not None:
            kwargs.update(enable_lora=True, max_lora_rank=max_lora_rank)
        self.llm = LLM(
            model=source.base,
            tokenizer=source.tokenizer,
            revision=opts.revision,
            dtype=opts.dtype,
            trust_remote_code=opts.trust_remote_code,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            seed=0,
            **kwargs,
        )
        self.lora_request = None
        if source.adapter is not None:
            from vllm.lora.request import LoRARequest

            self.lora_request = LoRARequest("eval-adapter", 1, str(Path(source.adapter).resolve()))

    def generate(
        self, prompt_ids: list[list[int]], sampling: SamplingSettings, seeds: list[int]
    ) -> list[str]:
        """All prompts in one ``LLM.generate`` call (vLLM schedules the batching itself)."""
        from vllm import SamplingParams

        if not prompt_ids:
            return []
        # One SamplingParams per prompt: a shared seed would make the copies of a prompt identical.
        params = [
            SamplingParams(
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                max_tokens=sampling.max_new_tokens,
                seed=s,
            )
            for s in seeds
        ]
        outputs = self.llm.generate(
            [{"prompt_token_ids": ids} for ids in prompt_ids],
            params,
            lora_request=self.lora_request,
            use_tqdm=False,
        )
        return [o.outputs[0].text for o in outputs]


# Backend name -> engine class (the eval config's `backend`).
GENERATORS: dict[str, type] = {"transformers": TransformersGenerator, "vllm": VllmGenerator}


def make_generator(backend: str, source: ModelSource, vllm=None) -> Generator:
    """The generator of ``backend`` for ``source``; ``vllm``: a VllmEvalConfig (engine options, vllm only)."""
    if backend not in GENERATORS:
        raise ValueError(f"backend={backend!r} is not valid; expected one of {list(GENERATORS)}")
    if backend == "vllm" and vllm is not None:
        return VllmGenerator(source, **dataclasses.asdict(vllm))
    return GENERATORS[backend](source)
