"""The experiment recipes under recipes/: each composes, validates and carries the paper's settings.

Recipes are Hydra primary configs that extend conf/config.yaml (``defaults: [/config, ...]``) and are run
with ``--config-dir recipes --config-name <model>/<recipe>``. No weights or data are downloaded here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf
from trl import GRPOTrainer

from prefix_rft.algorithms import get_algorithm
from prefix_rft.config.build import build_grpo_config
from prefix_rft.config.compose import conf_dir
from prefix_rft.config.schema import register_configs
from prefix_rft.config.trainer_args import set_trainer_args
from prefix_rft.config.validate import validate_train_config
from prefix_rft.trainers.prefix_rft import PrefixRFTTrainer

REPO_ROOT = Path(__file__).resolve().parents[1]
RECIPES = REPO_ROOT / "recipes"
MODELS = ("qwen2.5-math-7b", "qwen2.5-math-1.5b", "llama-3.1-8b")
# Every paper recipe exists for these; the lead's other algorithms get one when conf/algorithm/ has them.
REQUIRED_ALGORITHMS = ("prefix_rft", "rft")
# Single-GPU LoRA recipes -> rollouts per optimizer step (8 or 16 prompts x 8 rollouts).
LORA_RECIPES = {
    "qwen2.5-math-1.5b/prefix_rft_lora_24gb": 64,
    "qwen2.5-math-7b/prefix_rft_lora_80gb": 128,
    "llama-3.1-8b/prefix_rft_lora_80gb": 128,
}
# SFT -> RL as the re-examination (arXiv 2604.23747) ran it, one per model.
STRONG_RECIPES = tuple(f"{m}/sft_then_rft_strong" for m in MODELS)


def recipe_names() -> list[str]:
    """``<model>/<name>`` of every runnable recipe (files and folders starting with '_' are shared parts)."""
    return sorted(
        f"{p.parent.name}/{p.stem}"
        for p in RECIPES.glob("*/*.yaml")
        if p.parent.name != "accelerate_configs"
        and not p.parent.name.startswith("_")
        and not p.name.startswith("_")
    )


def compose_recipe(name: str, *overrides: str):
    """Compose a recipe the way ``--config-dir recipes`` does: recipes/ and conf/ both on the search path.

    The recipe is the primary config, so recipes/ is the config dir and conf/ joins through
    ``hydra.searchpath`` (Hydra looks the primary config up before it applies a searchpath override).
    """
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(RECIPES), version_base="1.3"):
        return compose(
            config_name=name,
            overrides=[
                f"hydra.searchpath=[file://{conf_dir()}]",
                "output_dir=/tmp/prefix-rft-recipe",
                *overrides,
            ],
        )


def documented_command(name: str) -> str:
    """The command line in the recipe's header comment (continuation lines joined)."""
    header = []
    for line in (RECIPES / f"{name}.yaml").read_text().splitlines():
        if not line.startswith("#"):
            break
        header.append(line.lstrip("# ").rstrip())
    text = " ".join(header).replace("\\ ", "")
    match = re.search(r"((?:accelerate launch|prefix-rft-train) .*?--config-name \S+(?: [\w.]+=\S+)*)", text)
    assert match, f"recipes/{name}.yaml has no command line in its header comment"
    return match.group(1)


def num_processes(command: str) -> int:
    """GPUs the documented command uses: the accelerate config's num_processes, else 1."""
    match = re.search(r"--config_file (\S+)", command)
    if not match:
        return 1
    return int(yaml.safe_load((REPO_ROOT / match.group(1)).read_text())["num_processes"])


ALL_RECIPES = recipe_names()


def test_every_model_has_the_required_recipes_and_every_algorithm_one():
    algorithms = sorted(
        p.stem for p in (REPO_ROOT / "conf" / "algorithm").glob("*.yaml") if not p.name.startswith("_")
    )
    assert set(REQUIRED_ALGORITHMS) <= set(algorithms)
    for model in MODELS:
        for algo in algorithms:
            assert f"{model}/{algo}" in ALL_RECIPES, f"missing recipe recipes/{model}/{algo}.yaml"
    assert set(LORA_RECIPES) <= set(ALL_RECIPES)


@pytest.mark.parametrize("name", ALL_RECIPES)
def test_recipe_composes_validates_and_documents_its_command(name):
    cfg = compose_recipe(name)
    validate_train_config(cfg)
    model, recipe = name.split("/")
    assert cfg.model.short_name == model
    assert cfg.algorithm.name == recipe.split("_lora")[0].removesuffix("_strong")
    command = documented_command(name)
    assert f"--config-dir recipes --config-name {name}" in command
    config_file = re.search(r"--config_file (\S+)", command)
    if config_file:
        assert (REPO_ROOT / config_file.group(1)).is_file(), config_file.group(1)
    if num_processes(command) > 1:
        # Hydra's default run folder has a timestamp that each process computes for itself.
        assert command.endswith(f"hydra.run.dir=outputs/{name}")
    assert cfg.resume_from_checkpoint == "latest"

    # The paper's data and run settings (docs/method.md).
    assert cfg.data.source == "hub" and cfg.data.path == "Elliott/Openr1-Math-46k-8192"
    assert cfg.data.max_prompt_length == 1024
    args = set_trainer_args(cfg.trainer)
    assert args["num_generations"] == 8 and args["temperature"] == 1.0
    assert args["max_completion_length"] == 8192
    assert args["lr_scheduler_type"] == "constant"
    assert args["scale_rewards"] == "none" and args["beta"] == 0.0
    if name in STRONG_RECIPES:
        # arXiv 2604.23747, App. A: token-level loss, clip-higher, 500 rollout batches of two updates each.
        assert args["loss_type"] == "dapo" and (args["epsilon"], args["epsilon_high"]) == (0.2, 0.28)
        assert args["max_steps"] == 1000 and args["entropy_coef"] == 0.0
    else:
        assert args["loss_type"] == "dr_grpo" and args["max_steps"] == 500
    assert args["bf16"] is True and args["gradient_checkpointing"] is True
    assert args["vllm_max_model_length"] == 1024 + 8192
    if model.startswith("qwen"):
        assert cfg.model.config_overrides.max_position_embeddings == 16384  # the 16k setting
    else:
        assert cfg.model.chat_template == "llama-3.1-instruct"

    # Rollouts per optimizer step = per device x processes x accumulation; groups of 8 per prompt.
    rollouts = (
        args["per_device_train_batch_size"] * num_processes(command) * args["gradient_accumulation_steps"]
    )
    if name in LORA_RECIPES:
        assert cfg.peft.enabled and cfg.peft.target_modules == "all-linear"
        assert args["learning_rate"] == 1e-5  # LoRA: 10x the full fine-tuning rate (documented choice)
        assert cfg.generation.backend == "transformers"
        assert rollouts == LORA_RECIPES[name]
    else:
        assert not cfg.peft.enabled
        assert args["learning_rate"] == 1e-6
        if name in STRONG_RECIPES:  # 64 prompts per update, rollout batches of 128 prompts
            assert (
                rollouts == 64 * 8 and args["steps_per_generation"] == 2 * args["gradient_accumulation_steps"]
            )
        else:
            assert rollouts == 128 * 8, "paper recipes train on 128 prompts x 8 rollouts per step"
        rl = "rl" in get_algorithm(cfg.algorithm.name).stages
        assert cfg.generation.backend == ("vllm_colocate" if rl else "transformers")
    if "sft" in get_algorithm(cfg.algorithm.name).stages:
        sft = set_trainer_args(cfg.sft_trainer)
        demos = (
            sft["per_device_train_batch_size"] * num_processes(command) * sft["gradient_accumulation_steps"]
        )
        # LUFFY's SFT (and the re-examination's): 64 demonstrations per step, 3 epochs, lr 5e-5, cosine to
        # a floor of 0.1 x lr, 10% warmup; the trainer.max_steps budget is the RL stage's.
        assert demos == 64
        assert sft["num_train_epochs"] == 3 and "max_steps" not in sft
        assert sft["learning_rate"] == 5e-5 and sft["warmup_steps"] == 0.1
        assert sft["lr_scheduler_type"] == "cosine_with_min_lr" and sft["lr_scheduler_kwargs"] == {
            "min_lr_rate": 0.1
        }
        assert (sft["adam_beta2"], sft["weight_decay"]) == (
            (0.999, 0.01) if name in STRONG_RECIPES else (0.95, 0.0)
        )


@pytest.mark.parametrize("name", [n for n in ALL_RECIPES if n.endswith("/prefix_rft") or "_lora_" in n])
def test_prefix_rft_recipes_keep_the_method_settings(name):
    cfg = compose_recipe(name)
    algo, sched = cfg.algorithm, cfg.scheduler
    assert get_algorithm(algo.name).trainer is PrefixRFTTrainer and algo.num_prefixed == 1
    assert (
        algo.prefix_update == "entropy_top"
        and algo.keep_fraction == 0.2
        and algo.advantage_baseline == "group"
    )
    assert (sched.name, sched.high, sched.low_start, sched.low_end, sched.decay_steps) == (
        "cosine",
        0.95,
        0.95,
        0.05,
        500,
    )


@pytest.mark.parametrize("name", [n for n in ALL_RECIPES if not n.endswith("/sft")])
def test_trl_accepts_the_batch_geometry(name):
    """GRPOConfig builds from the recipe (bf16 off only because this machine has no GPU)."""
    cfg = compose_recipe(name, "trainer.bf16=false", "+trainer.use_cpu=true")
    args = build_grpo_config(cfg)
    assert args.generation_batch_size % 8 == 0
    steps = (args.gradient_accumulation_steps, args.steps_per_generation)
    assert max(steps) % min(steps) == 0  # whole rollout rounds per optimizer step, or updates per round
    if name in LORA_RECIPES:
        assert args.use_vllm is False
    else:
        assert args.use_vllm is True and args.vllm_mode == "colocate"
        if name in STRONG_RECIPES:  # two optimizer updates per rollout round
            assert args.steps_per_generation == 2 * args.gradient_accumulation_steps
            assert args.generation_batch_size * 8 == 128 * 8  # per process here; 8 GPUs: 128 prompts x 8
        else:
            assert args.steps_per_generation == args.gradient_accumulation_steps  # one rollout round per step


def test_rft_recipe_differs_from_prefix_rft_only_in_the_algorithm():
    prefix = compose_recipe("qwen2.5-math-7b/prefix_rft")
    rft = compose_recipe("qwen2.5-math-7b/rft")
    assert get_algorithm(rft.algorithm.name).trainer is GRPOTrainer
    assert OmegaConf.is_missing(rft.algorithm, "num_prefixed")
    assert set_trainer_args(rft.trainer) == set_trainer_args(prefix.trainer)
    assert rft.data == prefix.data and rft.model == prefix.model


def test_the_cli_runs_a_recipe_with_config_dir_and_config_name():
    """The documented form, through the real entry point (``--cfg job`` prints the config and stops)."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "prefix_rft.cli.train",
            "--config-dir",
            "recipes",
            "--config-name",
            "qwen2.5-math-7b/prefix_rft",
            "trainer.max_steps=7",
            "--cfg",
            "job",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    printed = yaml.safe_load(result.stdout)
    assert printed["model"]["name_or_path"] == "Qwen/Qwen2.5-Math-7B"
    assert printed["algorithm"]["name"] == "prefix_rft"
    assert printed["data"]["path"] == "Elliott/Openr1-Math-46k-8192"
    trainer = printed["trainer"]
    assert trainer["max_steps"] == 7 and trainer["learning_rate"] == 1e-6
    assert trainer["per_device_train_batch_size"] == 2 and trainer["gradient_accumulation_steps"] == 64


def test_a_recipe_switches_to_the_vllm_server_on_the_command_line():
    """The README's server form: generation=vllm_server over the recipe's colocated default."""
    cfg = compose_recipe(
        "qwen2.5-math-7b/prefix_rft",
        "generation=vllm_server",
        "trainer.gradient_accumulation_steps=128",
        "trainer.bf16=false",
        "+trainer.use_cpu=true",
    )
    validate_train_config(cfg)
    args = build_grpo_config(cfg)
    assert args.use_vllm is True and args.vllm_mode == "server"
    assert (args.vllm_server_host, args.vllm_server_port) == ("0.0.0.0", 8000)
    # 4 training processes x 2 per device x 128 accumulation steps = 128 prompts x 8 rollouts
    assert 4 * args.per_device_train_batch_size * args.gradient_accumulation_steps == 128 * 8
