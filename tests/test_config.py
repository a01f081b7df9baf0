"""Config composition, overrides, schema errors and the TRL argument mapping."""

from __future__ import annotations

import logging

import pytest
from omegaconf import OmegaConf
from trl import GRPOTrainer

from prefix_rft.algorithms import get_algorithm
from prefix_rft.config.build import build_grpo_config, build_peft_config
from prefix_rft.config.compose import compose_config
from prefix_rft.config.trainer_args import TrainerArgs, set_trainer_args, trl_field_help
from prefix_rft.config.validate import ConfigError, validate_train_config


def cfg_with(*overrides: str):
    return compose_config(["output_dir=/tmp/prefix-rft-test", *overrides])


def test_default_config_is_prefix_rft_on_tiny_model():
    cfg = cfg_with()
    assert cfg.algorithm.name == "prefix_rft"
    assert cfg.model.name_or_path == "builtin:tiny-warm"
    assert cfg.scheduler.name == "cosine"
    # the tiny model file shrinks the paper's settings to CPU scale; the algorithm's loss settings stay
    args = set_trainer_args(cfg.trainer)
    assert args["max_completion_length"] == 64
    assert args["loss_type"] == "dr_grpo" and args["scale_rewards"] == "none" and args["beta"] == 0.0
    validate_train_config(cfg)


def test_paper_hyperparameters_survive_on_real_models():
    cfg = cfg_with("model=qwen2.5-math-7b")
    args = set_trainer_args(cfg.trainer)
    assert args["learning_rate"] == 1e-6 and args["max_completion_length"] == 8192
    assert args["num_generations"] == 8 and args["max_steps"] == 500 and args["temperature"] == 1.0
    assert cfg.scheduler.decay_steps == 500 and cfg.scheduler.high == 0.95 and cfg.scheduler.low_end == 0.05
    assert cfg.model.config_overrides.max_position_embeddings == 16384


def test_command_line_overrides_and_groups():
    cfg = cfg_with("algorithm=rft", "trainer.learning_rate=3e-6", "scheduler=uniform", "peft=lora")
    assert get_algorithm(cfg.algorithm.name).trainer is GRPOTrainer
    assert OmegaConf.is_missing(cfg.algorithm, "num_prefixed")  # RFT has no prefix knobs
    assert set_trainer_args(cfg.trainer)["learning_rate"] == 3e-6
    assert cfg.scheduler.name == "uniform" and cfg.peft.enabled
    lora = build_peft_config(cfg)
    assert lora.r == 16 and lora.lora_alpha == 32


def test_unknown_key_is_rejected_with_its_name():
    with pytest.raises(Exception, match="algorithm.foo"):
        cfg_with("algorithm.foo=1")
    # Hydra's '+' appends keys even to typed configs; validation still rejects them by name
    cfg = cfg_with("+trainer.not_a_trl_field=1")
    with pytest.raises(ConfigError, match="not_a_trl_field"):
        validate_train_config(cfg)


def test_wrong_type_is_rejected():
    with pytest.raises(Exception, match="learning_rate"):
        cfg_with("trainer.learning_rate=fast")
    with pytest.raises(Exception, match="num_prefixed"):
        cfg_with("algorithm.num_prefixed=one")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["algorithm.num_prefixed=9"], "algorithm.num_prefixed=9"),
        (["algorithm.prefix_update=middle"], "algorithm.prefix_update='middle'"),
        (["algorithm.keep_fraction=0"], "algorithm.keep_fraction"),
        (["data.demonstration_column=null"], "data.demonstration_column"),
        (["trainer.max_completion_length=400"], "model.max_context_length"),
        (["generation.backend=sglang"], "generation.backend='sglang'"),
        (["trainer.beta=0.04"], "trainer.beta"),
        (["trainer.loss_type=dapo"], "trainer.loss_type='dapo'"),
        (["reward.funcs=[{name:accuracy},{name:speed}]"], "speed"),
        (["scheduler.high=1.5"], "high"),
    ],
)
def test_semantic_errors_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        validate_train_config(cfg_with(*overrides))


def test_a_knob_of_another_algorithm_is_ignored_and_reported(caplog):
    """A sweep's shared override (or the CPU scale's ReLIFT buffer) must not stop the other algorithms."""
    from prefix_rft.config.algorithm_args import algorithm_from_config

    cfg = cfg_with("algorithm=rft", "algorithm.num_prefixed=1")
    with caplog.at_level(logging.INFO, logger="prefix_rft.config.validate"):
        validate_train_config(cfg)
    assert "algorithm=rft does not read algorithm.num_prefixed=1, algorithm.sft_buffer_size=8" in caplog.text
    entry, config = algorithm_from_config(cfg)
    assert entry.name == "rft" and not hasattr(config, "num_prefixed")


def test_trainer_args_cover_trl_fields_with_help():
    fields = {f for f in TrainerArgs.__dataclass_fields__}
    assert {"learning_rate", "num_generations", "loss_type", "max_completion_length", "push_to_hub"} <= fields
    assert {"completion_only_loss", "max_length"} <= fields  # SFTConfig-only fields are there too
    assert "output_dir" not in fields  # owned by the top level
    assert "learning rate" in trl_field_help("learning_rate").lower()


def test_only_set_trainer_fields_reach_trl():
    cfg = cfg_with("generation=vllm_server", "trainer.vllm_server_port=8123")
    args = build_grpo_config(cfg)
    assert args.use_vllm is True and args.vllm_mode == "server" and args.vllm_server_port == 8123
    assert args.output_dir == "/tmp/prefix-rft-test" and args.seed == 42
    assert args.loss_type == "dr_grpo" and args.scale_rewards == "none"
    # an unset field keeps TRL's own default
    assert args.epsilon_high is None and args.warmup_steps == 0
    assert OmegaConf.is_missing(cfg.trainer, "warmup_steps")


def test_every_model_config_composes():
    for model in ("tiny", "qwen2.5-math-1.5b", "qwen2.5-math-7b", "llama-3.1-8b"):
        cfg = cfg_with(f"model={model}", "data.max_prompt_length=1024")
        if model != "tiny":
            validate_train_config(cfg)
        assert cfg.model.name_or_path
    assert cfg_with("model=llama-3.1-8b").model.chat_template == "llama-3.1-instruct"


@pytest.mark.parametrize(
    ("override", "env", "where"),
    [
        (None, "ACCELERATE_USE_DEEPSPEED", "accelerate launch with a DeepSpeed config"),
        (None, "ACCELERATE_USE_FSDP", "accelerate launch with a FSDP config"),
        ("trainer.deepspeed=ds.json", None, "trainer.deepspeed"),
    ],
)
def test_relift_refuses_sharded_training_before_loading_anything(monkeypatch, override, env, where):
    """ReLIFT's second optimizer cannot update ZeRO/FSDP-sharded parameters: one config error at start-up."""
    cfg = compose_config(["algorithm=relift", *([override] if override else [])])
    if env:
        monkeypatch.setenv(env, "true")
    with pytest.raises(ConfigError, match=f"algorithm=relift needs DDP or a single process, not {where}:"):
        validate_train_config(cfg)
    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED", raising=False)
    monkeypatch.delenv("ACCELERATE_USE_FSDP", raising=False)
    if not override:
        validate_train_config(cfg)  # DDP or one process: accepted
