"""How to extend the framework, each done once here for real (docs/extending.md walks through them):

* an algorithm: one trainer class, one config class, one registry line, then ``algorithm=<name>``;
* a reward: a function by import path with parameters, reading an extra data column;
* an evaluation benchmark: one registry entry and its file, graded in its answer style.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from trl import GRPOTrainer

from prefix_rft.algorithms import register_algorithm, unregister_algorithm
from prefix_rft.config.compose import compose_config
from prefix_rft.config.validate import validate_train_config
from prefix_rft.errors import ConfigError
from prefix_rft.trainers.algorithm_config import AlgorithmConfig, knob

# ----------------------------------------------------------------------------- an algorithm


@dataclasses.dataclass
class ScaledLossConfig(AlgorithmConfig):
    """The toy algorithm's one knob."""

    loss_scale: float = knob(2.0, "Factor applied to TRL's GRPO loss.")

    def check(self, args) -> None:
        if self.loss_scale <= 0:
            raise ConfigError(f"algorithm.loss_scale={self.loss_scale} must be > 0")

    def trainer_kwargs(self, prefix_scheduler) -> dict:
        return {"knobs": self}


class ScaledLossTrainer(GRPOTrainer):
    """GRPO with its loss multiplied by ``algorithm.loss_scale`` (records both losses for the test)."""

    losses: list[tuple[float, float]] = []

    def __init__(self, *args, knobs: ScaledLossConfig, **kwargs):
        super().__init__(*args, **kwargs)
        self.knobs = knobs

    def _compute_loss(self, model, inputs):
        loss = super()._compute_loss(model, inputs)
        ScaledLossTrainer.losses.append((loss.item(), self.knobs.loss_scale))
        return self.knobs.loss_scale * loss


@pytest.fixture
def scaled_loss_algorithm():
    register_algorithm("scaled_loss", ScaledLossConfig, ScaledLossTrainer)  # the one registry line
    ScaledLossTrainer.losses.clear()
    yield "scaled_loss"
    unregister_algorithm("scaled_loss")


def digit_reward(completions, **kwargs) -> list[float]:
    """Varies between rollouts of the random tiny model (accuracy would be all 0), so RL has a gradient."""
    texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
    return [sum(ch.isdigit() for ch in t) / max(len(t), 1) for t in texts]


def tiny_run(out: Path, model_dir: Path, *overrides: str) -> list[str]:
    return [
        f"output_dir={out}",
        f"model.name_or_path={model_dir}",
        "reward.funcs=[{name:test_extending:digit_reward}]",  # a reward by import path
        "data.synthetic.num_train=16",
        "data.synthetic.train_min_steps=2",
        "data.synthetic.train_max_steps=3",
        "trainer.max_steps=2",
        "trainer.per_device_train_batch_size=8",
        "trainer.num_generations=4",
        "trainer.max_completion_length=32",
        "trainer.learning_rate=1e-3",
        "trainer.save_steps=1000",
        "heldout_eval.enabled=false",
        *overrides,
    ]


def test_a_new_algorithm_is_a_trainer_a_config_and_a_registry_line(
    scaled_loss_algorithm, tiny_model_dir, tmp_path
):
    from prefix_rft.pipeline import run_training

    start = load_file(str(tiny_model_dir / "model.safetensors"))
    # Its knob is part of the generated `algorithm` group: typed, defaulted, checked.
    cfg = compose_config(tiny_run(tmp_path / "default", tiny_model_dir, "algorithm=scaled_loss"))
    assert cfg.algorithm.name == "scaled_loss" and cfg.algorithm.loss_scale == 2.0
    with pytest.raises(Exception, match="loss_scale"):
        compose_config(
            tiny_run(tmp_path, tiny_model_dir, "algorithm=scaled_loss", "algorithm.loss_scale=big")
        )
    with pytest.raises(ConfigError, match="algorithm.loss_scale=-1.0 must be > 0"):
        validate_train_config(
            compose_config(
                tiny_run(tmp_path, tiny_model_dir, "algorithm=scaled_loss", "algorithm.loss_scale=-1")
            )
        )

    run = tmp_path / "run"
    summary = run_training(
        compose_config(tiny_run(run, tiny_model_dir, "algorithm=scaled_loss", "algorithm.loss_scale=3.0"))
    )
    assert summary["algorithm"] == "scaled_loss" and summary["global_step"] == 2
    # The knob reached the trainer's loss, and training moved the weights.
    assert ScaledLossTrainer.losses and all(scale == 3.0 for _, scale in ScaledLossTrainer.losses)
    final = load_file(str(run / "model.safetensors"))
    assert any(not torch.equal(final[k], start[k]) for k in start)
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["algorithm"] == {"name": "scaled_loss", "loss_scale": 3.0}
    assert json.loads((run / "metrics.json").read_text())["algorithm"] == "scaled_loss"


# ----------------------------------------------------------------------------- a reward

SEEN: list[dict] = []


def steps_reward(completions, num_steps, per_step: float = 1.0, **kwargs) -> list[float]:
    """A toy reward with a parameter, reading an extra column (the synthetic task's number of steps)."""
    SEEN.append({"num_steps": list(num_steps), "per_step": per_step, "n": len(completions)})
    return [per_step * n for n in num_steps]


def test_a_new_reward_by_import_path_with_parameters_and_an_extra_column(tiny_model_dir, tmp_path):
    from prefix_rft.config.build import build_grpo_config
    from prefix_rft.data.sources import load_train_dataset
    from prefix_rft.pipeline import run_training

    reward = (
        "reward.funcs=[{name:accuracy},{name:test_extending:steps_reward,weight:0.5,params:{per_step:0.25}}]"
    )
    overrides = tiny_run(tmp_path / "run", tiny_model_dir, "algorithm=rft", "data.extra_columns=[num_steps]")
    cfg = compose_config([*overrides, reward])
    validate_train_config(cfg)
    assert build_grpo_config(cfg).reward_weights == [1.0, 0.5]
    rows = load_train_dataset(cfg.data)
    assert rows.column_names == ["prompt", "answer", "demonstration", "num_steps"]
    steps_of = {r["prompt"][-1]["content"]: r["num_steps"] for r in rows}

    SEEN.clear()
    run_training(cfg)
    assert SEEN and all(call["per_step"] == 0.25 for call in SEEN)
    assert sum(call["n"] for call in SEEN) == 2 * 8  # 2 steps x 8 rollouts, every one scored
    assert all(2 <= n <= 3 for call in SEEN for n in call["num_steps"])  # the column's real values
    assert set(steps_of.values()) <= {2, 3}
    history = [json.loads(line) for line in (tmp_path / "run" / "log_history.jsonl").read_text().splitlines()]
    means = [row["rewards/steps_reward/mean"] for row in history if "rewards/steps_reward/mean" in row]
    assert means and all(0.5 <= m <= 0.75 for m in means)

    # A parameter the function does not take, or a name that is neither registered nor importable, is
    # a config error naming it.
    bad = "reward.funcs=[{name:test_extending:steps_reward,params:{per_stp:1}}]"
    with pytest.raises(ConfigError, match="per_stp"):
        validate_train_config(compose_config([*overrides, bad]))
    with pytest.raises(ConfigError, match="no_such_module"):
        validate_train_config(compose_config([*overrides, "reward.funcs=[{name:no_such_module:f}]"]))
    with pytest.raises(Exception, match="extra_columns.*nope"):
        load_train_dataset(compose_config([*overrides, "data.extra_columns=[nope]"]).data)


# ----------------------------------------------------------------------------- an evaluation benchmark


class LetterGenerator:
    """Stands in for a model: answers every question with the letter its text asks for, in a box."""

    def __init__(self):
        from prefix_rft.models.tiny import build_tiny_tokenizer

        self.tokenizer = build_tiny_tokenizer()
        self.calls = 0

    def generate(self, prompt_ids, sampling, seeds) -> list[str]:
        self.calls += len(prompt_ids)
        texts = self.tokenizer.batch_decode(prompt_ids)
        # "pick X" in the question -> answer X (the toy benchmark's questions say which letter is right)
        return [f"The answer is \\boxed{{{t.split('pick ')[1][0]}}}." for t in texts]


def test_a_new_benchmark_is_a_registry_entry_and_its_file(tmp_path):
    from prefix_rft.eval.runner import run_evaluation
    from prefix_rft.eval.suites import REGISTRY, BenchmarkSpec, canonical_name, register_benchmark
    from prefix_rft.rewards.grader import Grader

    spec = register_benchmark(
        BenchmarkSpec(
            "Toy-MC",
            samples=2,
            aliases=("toy_mc",),
            jsonl_file="toy_mc.jsonl",
            answer_style="choice",
            ood=True,
        )
    )
    try:
        rows = [
            {"question": f"Which letter? pick {'ABCD'[i % 4]}", "answer": "ABCD"[(i * 3) % 4]}
            for i in range(6)
        ]
        (tmp_path / "toy_mc.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        generator = LetterGenerator()
        with Grader() as grader:
            summary = run_evaluation(
                {
                    "benchmarks": ["toy-mc"],  # any alias, case and separators ignored
                    "data_dir": str(tmp_path),
                    "output_dir": str(tmp_path / "eval"),
                    "progress": False,
                },
                generator=generator,
                grader=grader,
            )
    finally:
        REGISTRY.pop(spec.name)
    assert canonical_name("toy_mc") == "Toy-MC"
    bench = summary["benchmarks"]["Toy-MC"]
    assert generator.calls == 6 * 2 and bench["metric"] == "avg@2"  # the registered default samples
    # The model picks A B C D A B, the answers are A D C B A D: items 0, 2 and 4 are right.
    assert bench["score"] == 0.5 and summary["average_ood"]["score"] == 0.5  # averaged apart (ood=True)
    samples = [json.loads(line) for line in (tmp_path / "eval" / "samples.jsonl").read_text().splitlines()]
    assert [s["pred"] for s in samples if s["sample"] == 0] == list("ABCDAB")  # graded as letters
