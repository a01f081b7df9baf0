"""LoRA (peft=lora) end to end on the tiny model: only adapters train, and the saved adapter reloads exactly.

The trainer is built the way the CLI builds it (compose_config -> build_rl_trainer), for Prefix-RFT and
for RFT. QLoRA (peft=qlora) needs bitsandbytes and a CUDA GPU and is skipped without them.
"""

from __future__ import annotations

import pytest
import torch
from fakes import digit_reward

from prefix_rft.config.build import build_rl_trainer
from prefix_rft.config.compose import compose_config
from prefix_rft.config.validate import validate_train_config
from prefix_rft.data.sources import load_train_dataset
from prefix_rft.models.load import load_model, load_tokenizer
from prefix_rft.rewards import rewards


def lora_cfg(tiny_model_dir, out, algorithm: str, *extra: str, peft: str = "lora", cpu: bool = True):
    return compose_config(
        [
            f"algorithm={algorithm}",
            f"peft={peft}",
            f"model.name_or_path={tiny_model_dir}",
            f"output_dir={out}",
            "reward.funcs=[{name:digits}]",
            "data.synthetic.num_train=16",
            "trainer.max_steps=2",
            "trainer.per_device_train_batch_size=8",
            "trainer.num_generations=4",
            "trainer.max_completion_length=16",
            # A large step so two updates visibly move the adapters (lora_B starts at zero).
            "trainer.learning_rate=1e-2",
            "+trainer.save_strategy=no",
            f"trainer.use_cpu={str(cpu).lower()}",
            # As in the recipes: PEFT must route gradients through checkpointed layers.
            "trainer.gradient_checkpointing=true",
            *extra,
        ]
    )


def build(cfg):
    validate_train_config(cfg)
    tokenizer = load_tokenizer(cfg.model)
    model = load_model(cfg.model)
    return build_rl_trainer(cfg, model, tokenizer, load_train_dataset(cfg.data)), tokenizer


def snapshot(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def logits_of(model, input_ids: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(input_ids=input_ids).logits


@pytest.fixture
def digits_reward(monkeypatch):
    monkeypatch.setitem(rewards.REWARD_FUNCS, "digits", digit_reward)


@pytest.mark.parametrize(
    ("algorithm", "trainer_cls"), [("prefix_rft", "PrefixRFTTrainer"), ("rft", "GRPOTrainer")]
)
def test_lora_trains_only_adapters_and_reloads(
    tiny_model_dir, tmp_path, digits_reward, algorithm, trainer_cls
):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    cfg = lora_cfg(tiny_model_dir, tmp_path / "run", algorithm)
    trainer, tokenizer = build(cfg)
    assert type(trainer).__name__ == trainer_cls
    model = trainer.model
    assert isinstance(model, PeftModel)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable), trainable

    before = snapshot(model)
    trainer.train()
    assert trainer.state.global_step == 2
    after = snapshot(model)
    assert before.keys() == after.keys()
    base_names = [n for n in before if "lora_" not in n]
    assert base_names
    changed_base = [n for n in base_names if not torch.equal(before[n], after[n])]
    assert not changed_base, f"base weights changed: {changed_base}"
    changed_b = [n for n in before if "lora_B" in n and not torch.equal(before[n], after[n])]
    assert changed_b, "no lora_B weight changed after two steps"

    adapter_dir = tmp_path / "adapter"
    trainer.save_model(str(adapter_dir))
    assert (adapter_dir / "adapter_config.json").is_file()
    assert (adapter_dir / "adapter_model.safetensors").is_file()
    assert not (adapter_dir / "model.safetensors").exists()  # the adapter only, not a full copy

    input_ids = torch.tensor([tokenizer("12+7=19, so the answer is \\boxed{19}.")["input_ids"]])
    trained = logits_of(trainer.model, input_ids)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    base_logits = logits_of(base, input_ids)
    reloaded = PeftModel.from_pretrained(base, str(adapter_dir))
    torch.testing.assert_close(logits_of(reloaded, input_ids), trained, rtol=0, atol=1e-6)
    assert not torch.allclose(base_logits, trained, atol=1e-6), "the adapter does not change the model"


def test_qlora_config_composes(tiny_model_dir, tmp_path):
    cfg = lora_cfg(tiny_model_dir, tmp_path, "prefix_rft", "reward.funcs=[{name:accuracy}]", peft="qlora")
    validate_train_config(cfg)
    assert cfg.peft.enabled and cfg.peft.load_in_4bit and cfg.peft.target_modules == "all-linear"
    try:
        from prefix_rft.config.build import build_quantization_config

        quantization = build_quantization_config(cfg)
    except ImportError as err:  # bitsandbytes-specific classes are optional on CPU machines
        pytest.skip(f"BitsAndBytesConfig unavailable: {err}")
    assert quantization.load_in_4bit and quantization.bnb_4bit_quant_type == "nf4"
    assert quantization.bnb_4bit_compute_dtype == torch.bfloat16 and quantization.bnb_4bit_use_double_quant


@pytest.mark.gpu
def test_qlora_trains_adapters_on_a_4bit_base(tiny_model_dir, tmp_path, digits_reward):
    if not torch.cuda.is_available():
        pytest.skip("QLoRA needs a CUDA GPU (bitsandbytes 4-bit kernels); none is available")
    pytest.importorskip("bitsandbytes", reason="QLoRA needs bitsandbytes (pip install bitsandbytes)")
    from prefix_rft.config.build import build_quantization_config

    cfg = lora_cfg(tiny_model_dir, tmp_path, "prefix_rft", "model.dtype=bfloat16", peft="qlora", cpu=False)
    quantization = build_quantization_config(cfg)
    validate_train_config(cfg)
    model = load_model(cfg.model, quantization_config=quantization)
    assert getattr(model, "is_loaded_in_4bit", False)
    trainer = build_rl_trainer(cfg, model, load_tokenizer(cfg.model), load_train_dataset(cfg.data))
    before = snapshot(trainer.model)
    trainer.train()
    after = snapshot(trainer.model)
    assert any("lora_B" in n and not torch.equal(before[n], after[n]) for n in before)
    assert all(torch.equal(before[n], after[n]) for n in before if "lora_" not in n)


def test_merged_lora_model_is_a_plain_checkpoint_with_the_same_outputs(
    tiny_model_dir, tmp_path, digits_reward
):
    from transformers import AutoModelForCausalLM

    from prefix_rft.models.load import save_merged_model

    trainer, tokenizer = build(lora_cfg(tiny_model_dir, tmp_path / "run", "rft", "peft.merge_on_save=true"))
    trainer.train()
    input_ids = torch.tensor([tokenizer("3+4=7. \\boxed{7}")["input_ids"]])
    trained = logits_of(trainer.model, input_ids)
    merged_dir = tmp_path / "merged"
    save_merged_model(trainer.model, tokenizer, merged_dir)
    assert (merged_dir / "model.safetensors").is_file() and not (merged_dir / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(merged_dir)
    assert not any("lora_" in n for n, _ in merged.named_parameters())
    torch.testing.assert_close(logits_of(merged, input_ids), trained, rtol=1e-5, atol=1e-5)


def test_sft_then_rft_with_lora_hands_a_merged_sft_model_to_rl(tiny_model_dir, tmp_path, digits_reward):
    """The staged baseline with peft=lora: SFT adapter merged into stage1_sft/merged, RL adds a fresh adapter."""
    import json

    from prefix_rft.pipeline import run_training

    cfg = lora_cfg(tiny_model_dir, tmp_path / "run", "sft_then_rft", "heldout_eval.enabled=false")
    summary = run_training(cfg)
    run = tmp_path / "run"
    done = json.loads((run / "stage1_sft" / "stage_complete.json").read_text())
    assert done["model_dir"] == str(run / "stage1_sft" / "merged")
    assert (run / "stage1_sft" / "merged" / "model.safetensors").is_file()
    assert (run / "stage2_rl" / "adapter_config.json").is_file()
    assert [s["stage"] for s in summary["stages"]] == ["sft", "rl"] and summary["global_step"] == 2
