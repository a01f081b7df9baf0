"""The built-in tiny model: a byte-level tokenizer and a small Qwen2, built offline and cached.

No hub is reachable from tests or CI, so ``model=tiny`` builds its checkpoint on first use and saves it
with ``save_pretrained``: everything downstream loads it through the ordinary ``from_pretrained`` path.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

CODE_VERSION = 3  # bump when the builder changes, so stale caches are not reused

TINY_PRESETS: dict[str, dict] = {
    # Randomly initialised: for tests that only need a real architecture.
    "tiny": {"hidden_size": 64, "num_layers": 2, "num_heads": 4, "intermediate_size": 128, "seed": 0},
}

# The testbed model (``builtin:tiny-warm``): a 0.9M-parameter Qwen2 warm-started by SFT on the synthetic
# task to a known skill profile (see SHIPPED_DIR/PROFILE.json). Its weights ship with the package rather
# than being built on first use, for two measured reasons: the build takes 16-20 minutes on 2 CPU cores
# (the default job must finish in 5), and a model trained on another machine can come out measurably
# different. `python -m prefix_rft.testbed_model` rebuilds it from this recipe.
TESTBED_RECIPE: dict = {
    "architecture": {
        "hidden_size": 128,
        "num_layers": 4,
        "num_heads": 4,
        "intermediate_size": 384,
        "seed": 0,
    },
    # Levels 1-2 learned to convergence; 2% of 3-step problems leave level 3 partly solved (the RL gate's
    # level); level 4 is never shown, so it is out of reach (the paper's regime).
    "warm_start": {
        "mixture": {1: 0.49, 2: 0.49, 3: 0.02},
        "num_problems": 20000,
        "max_steps_train": 1000,
        "lr": 1e-3,
        "warmup_steps": 50,
        "batch_size": 32,
        "seed": 0,
        "template": "plain",
    },
}
SHIPPED_DIR = Path(__file__).parent / "weights" / "tiny-warm"

# The second testbed model (``builtin:tiny-fork``): tiny-warm continued by SFT with a small share of 4-step
# problems, so that the 4-step decision (write a fourth equation, or box the answer after three) is
# uncertain rather than a confident error: at the fork the model puts 0.05-0.5 on continuing, and solves
# 2-15% of 4-step problems at T=1. The constant learning rate makes the checkpoint at step N of one run the
# model of a run with ``max_steps_train=N``: the length was chosen among checkpoints by the decision-token
# probe alone (benchmarks/decision_tokens.py; benchmarks/README.md says why this one).
FORK_RECIPE: dict = {
    "base": "tiny-warm",
    "warm_start": {
        "mixture": {1: 0.32, 2: 0.33, 3: 0.33, 4: 0.02},
        "num_problems": 20000,
        # Chosen among the checkpoints 100-700 of one run by the probe's numbers only (benchmarks/README.md).
        "max_steps_train": 700,
        "lr": 1e-4,
        "warmup_steps": 20,
        "batch_size": 32,
        "seed": 1,
        "template": "plain",
        "lr_scheduler_type": "constant_with_warmup",
    },
}
SHIPPED_DIRS = {"tiny-warm": SHIPPED_DIR, "tiny-fork": Path(__file__).parent / "weights" / "tiny-fork"}
BUILTIN_MODELS = (*TINY_PRESETS, *SHIPPED_DIRS)


# Qwen2's pre-tokenizer split (digits one at a time), so the reloaded Qwen2Tokenizer splits identically.
QWEN_SPLIT_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|"""
    r"""\s+(?!\S)|\s+"""
)


def build_tiny_tokenizer():
    """A byte-level tokenizer (256 byte tokens, no merges) with Qwen's specials and a ChatML template.

    Every byte is one token, so any text round-trips exactly and digits are single tokens (easy
    arithmetic for a tiny model). It is a byte-level BPE like Qwen's, just without merges, which is what
    lets ``AutoTokenizer`` reload it as a ``Qwen2Tokenizer`` with identical behaviour.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from prefix_rft.models.chat_templates import CHATML

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    backend = Tokenizer(models.BPE(vocab={ch: i for i, ch in enumerate(alphabet)}, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_SPLIT_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
        padding_side="left",
    )
    tok.chat_template = CHATML
    return tok


def build_tiny_model(
    tokenizer,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    intermediate_size: int = 128,
    max_position_embeddings: int = 512,
    seed: int = 0,
):
    """A randomly initialised ``Qwen2ForCausalLM`` sized for CPU, seeded."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, do_sample=True
    )
    return model


def _cache_root(cache_dir: str | os.PathLike | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("PREFIX_RFT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "prefix_rft"


def preset_dir(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where preset ``name`` is cached (a hash of its spec keeps changed presets apart)."""
    if name not in TINY_PRESETS:
        raise ValueError(f"unknown built-in model {name!r}; expected one of {sorted(BUILTIN_MODELS)}")
    spec = json.dumps({"preset": TINY_PRESETS[name], "version": CODE_VERSION}, sort_keys=True)
    digest = hashlib.sha256(spec.encode()).hexdigest()[:10]
    return _cache_root(cache_dir) / "models" / f"{name}-{digest}"


def ensure_tiny_model(name: str = "tiny", cache_dir: str | os.PathLike | None = None) -> Path:
    """The directory of built-in model ``name``, building it (once) if it is not cached yet.

    ``tiny-warm`` and ``tiny-fork`` are shipped (:data:`SHIPPED_DIRS`). The others are built into a temporary folder that is
    renamed into place, so a crash never leaves a half checkpoint and two racing processes both end up with
    a complete one.
    """
    if name in SHIPPED_DIRS:
        shipped = SHIPPED_DIRS[name]
        if not (shipped / "model.safetensors").is_file():
            raise FileNotFoundError(
                f"the shipped testbed model is missing from {shipped}; reinstall the package or rebuild "
                f"it with `python -m prefix_rft.testbed_model --model {name} --out <dir>`"
            )
        return shipped
    target = preset_dir(name, cache_dir)
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    spec = dict(TINY_PRESETS[name])
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        tokenizer = build_tiny_tokenizer()
        model = build_tiny_model(tokenizer, **spec)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / "config.json").is_file():  # lost a race only if the winner is complete
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
