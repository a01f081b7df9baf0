"""The fidelity manifest: recipes against the values their papers state (prefix_rft/fidelity.py)."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from prefix_rft.algorithms import ALGORITHMS as REGISTRY
from prefix_rft.cli.manifest import main
from prefix_rft.fidelity import EXPLANATIONS, REFERENCES, manifest

REPO_ROOT = Path(__file__).resolve().parents[1]
MODELS = ("qwen2.5-math-7b", "qwen2.5-math-1.5b", "llama-3.1-8b")
# Every registered algorithm has a paper recipe per model, compared with the paper it comes from.
ALGORITHMS = tuple(REGISTRY)
PAPER_RECIPES = [f"{m}/{a}" for m in MODELS for a in ALGORITHMS]
STRONG_RECIPES = [f"{m}/sft_then_rft_strong" for m in MODELS]  # compared with arXiv 2604.23747
LORA_RECIPES = sorted(f"{p.parent.name}/{p.stem}" for p in (REPO_ROOT / "recipes").glob("*/*_lora_*.yaml"))


@functools.cache
def _rows(name: str, overrides: tuple[str, ...], reference: str | None, num_processes: int | None):
    _, rows = manifest(name, overrides, reference, num_processes)
    return {r.setting: r for r in rows}


def rows_by_setting(name: str, *overrides: str, reference=None, num_processes=None):
    """The manifest rows by setting (cached: composing a recipe takes a fraction of a second)."""
    return _rows(name, overrides, reference, num_processes)


def test_every_algorithm_has_its_paper_recipes():
    assert len(PAPER_RECIPES) >= 33  # the 11 algorithms of the paper's comparison, 3 models each
    for name in PAPER_RECIPES + LORA_RECIPES + STRONG_RECIPES:
        assert (REPO_ROOT / "recipes" / f"{name}.yaml").is_file(), name


@pytest.mark.parametrize("name", PAPER_RECIPES + LORA_RECIPES + STRONG_RECIPES)
def test_recipes_have_no_unexplained_difference(name):
    rows = rows_by_setting(name)
    unexplained = {s: (r.recipe, r.paper.value) for s, r in rows.items() if r.unexplained}
    assert not unexplained, f"{name}: differs from its paper without an explanation: {unexplained}"
    # the core settings are compared, not skipped
    entry = REGISTRY[name.split("/")[1].split("_lora")[0].removesuffix("_strong")]
    expected = {"eval.temperature", "eval.AIME24"}
    if "rl" in entry.stages:
        expected |= {"rl.learning_rate", "rl.prompts_per_step", "rl.rollouts_per_prompt", "rl.temperature"}
        expected |= {"rl.max_response_length", "rl.loss_type", "rl.kl_coef", "rl.entropy_coef"}
    if "sft" in entry.stages:
        expected |= {"sft.learning_rate", "sft.batch_size", "sft.epochs"}
    if "prefix" in entry.trains:  # trains on demonstration prefixes: its schedule and update are compared
        expected |= {"prefix.keep_fraction", "prefix.schedule", "prefix.update"}
    assert expected <= set(rows), expected - set(rows)


def test_the_paper_recipes_match_the_paper_where_no_deviation_is_documented():
    """Prefix-RFT and RFT follow docs/method.md exactly; the explained differences of the baselines are these."""
    for model in MODELS:
        for algorithm in ("prefix_rft", "rft"):
            assert not any(r.differs for r in rows_by_setting(f"{model}/{algorithm}").values())
    luffy = rows_by_setting("qwen2.5-math-7b/luffy")
    assert {s for s, r in luffy.items() if r.differs} == {"rl.prompts_per_step", "rl.entropy_coef"}
    for model in MODELS:  # LUFFY's SFT, the baseline Prefix-RFT adopts: only packing differs, on purpose
        for algorithm in ("sft", "sft_then_rft"):
            rows = rows_by_setting(f"{model}/{algorithm}")
            assert {s for s, r in rows.items() if r.differs} == {"sft.packing"}
            assert rows["sft.epochs"].recipe == 3.0 and rows["sft.batch_size"].recipe == 64
            assert rows["sft.min_lr_ratio"].recipe == 0.1 and rows["sft.adam_betas"].recipe == (0.9, 0.95)


@pytest.mark.parametrize(
    ("name", "override", "setting", "value"),
    [
        ("qwen2.5-math-7b/rft", "trainer.temperature=0.7", "rl.temperature", 0.7),
        ("qwen2.5-math-7b/prefix_rft", "algorithm.keep_fraction=0.5", "prefix.keep_fraction", 0.5),
        ("qwen2.5-math-7b/prefix_rft", "trainer.gradient_accumulation_steps=32", "rl.prompts_per_step", 64),
        ("llama-3.1-8b/luffy", "algorithm.shaping_gamma=0.2", "luffy.shaping_gamma", 0.2),
        ("qwen2.5-math-1.5b/relift", "algorithm.sft_buffer_size=64", "relift.sft_buffer_size", 64),
        ("qwen2.5-math-7b/rl_sft_loss", "trainer.beta=0.01", "rl.kl_coef", 0.01),
        # an explained deviation stops being explained when its value changes
        ("qwen2.5-math-7b/sft", "sft_trainer.max_length=4096", "sft.max_length", 4096),
        ("qwen2.5-math-7b/sft", "sft_trainer.num_train_epochs=1", "sft.epochs", 1.0),
        ("qwen2.5-math-7b/sft", "sft_trainer.lr_scheduler_type=cosine", "sft.min_lr_ratio", 0.0),
        ("qwen2.5-math-7b/sft_then_rft_strong", "trainer.epsilon_high=0.2", "rl.clip_epsilon", (0.2, 0.2)),
        ("llama-3.1-8b/sft_then_rft_strong", "sft_trainer.weight_decay=0.0", "sft.weight_decay", 0.0),
        (
            "qwen2.5-math-7b/sft_then_rft_strong",
            "trainer.max_steps=100",
            "rl.steps",
            50,
        ),  # the truncated variant
        ("qwen2.5-math-7b/rl_sft_loss", "algorithm.sft_coef=0.3", "rl_sft.sft_coef", 0.3),
    ],
)
def test_changing_a_recipe_value_is_reported(name, override, setting, value):
    before = rows_by_setting(name)
    assert not before[setting].unexplained
    after = rows_by_setting(name, override)
    assert after[setting].recipe == pytest.approx(value)
    assert after[setting].differs and after[setting].unexplained
    assert sum(r.unexplained for r in after.values()) == 1  # only that one


def test_matching_the_paper_removes_a_difference():
    rows = rows_by_setting("qwen2.5-math-7b/sft", "sft_trainer.packing=true")
    assert not any(r.differs for r in rows.values())
    rows = rows_by_setting("qwen2.5-math-7b/luffy", "+trainer.entropy_coef=0.001")
    assert not rows["rl.entropy_coef"].differs


def test_the_number_of_gpus_sizes_the_batch():
    rows = rows_by_setting("qwen2.5-math-7b/prefix_rft", num_processes=4)
    assert rows["rl.prompts_per_step"].recipe == 64 and rows["rl.prompts_per_step"].unexplained


def test_the_strong_recipes_are_the_re_examination_s_sft_then_rl():
    for name in STRONG_RECIPES:
        rows = rows_by_setting(name)  # compared with arXiv 2604.23747 by default
        assert rows == rows_by_setting(name, reference="2604.23747")
        assert not any(r.differs for r in rows.values()), name
        assert {"sft.epochs", "sft.min_lr_ratio", "sft.weight_decay", "rl.updates_per_rollout_batch"} <= set(
            rows
        )
    # One update per rollout batch (steps_per_generation = accumulation): 500 steps are then 500 updates.
    rows = rows_by_setting(
        "qwen2.5-math-1.5b/sft_then_rft_strong", "trainer.steps_per_generation=16", "trainer.max_steps=500"
    )
    assert {s: r.recipe for s, r in rows.items() if r.differs} == {"rl.updates_per_rollout_batch": 1}
    assert rows["rl.steps"].recipe == 500
    # What separates the Prefix-RFT paper's SFT -> RFT baseline from it.
    rows = rows_by_setting("qwen2.5-math-7b/sft_then_rft", reference="2604.23747")
    assert {s for s, r in rows.items() if r.differs} == {
        "sft.weight_decay",
        "sft.adam_betas",
        "rl.prompts_per_step",
        "rl.updates_per_rollout_batch",
        "rl.loss_type",
        "rl.clip_epsilon",
    }


def test_every_paper_value_names_its_source_and_every_explanation_is_used():
    for ref in REFERENCES.values():
        assert all(v.source for v in ref.values.values())
    used = set()
    for name in PAPER_RECIPES + LORA_RECIPES + STRONG_RECIPES:
        for r in rows_by_setting(name).values():
            if r.explanation:
                used.add(r.explanation)
    assert {e.reason for e in EXPLANATIONS} == used


def test_the_command_line(capsys):
    assert main(["qwen2.5-math-7b/luffy"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Fidelity manifest: qwen2.5-math-7b/luffy vs LUFFY (arXiv 2504.14945")
    assert "rl.entropy_coef" in out and "differs, explained" in out and "eval.AIME24" not in out
    assert "2 of 27 settings differ from the paper (2 explained, 0 unexplained)." in out

    assert main(["recipes/qwen2.5-math-7b/rft.yaml", "--all"]) == 0
    assert "eval.AIME24" in capsys.readouterr().out  # --all lists the matching settings too

    assert main(["qwen2.5-math-7b/rft", "trainer.temperature=0.7", "--strict"]) == 1
    assert "DIFFERS, unexplained" in capsys.readouterr().out
    assert main(["qwen2.5-math-7b/nope"]) == 2
    assert main(["qwen2.5-math-7b/rft", "trainer.no_such_key=1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "nope" in err and "no_such_key" in err
