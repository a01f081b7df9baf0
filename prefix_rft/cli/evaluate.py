"""``prefix-rft-eval``: evaluate a model on math benchmarks: sample answers, grade them with math-verify,
write per-sample results and avg@k / pass@1 scores; rerunning with the same output_dir resumes.

prefix-rft-eval [KEY=VALUE ...]
prefix-rft-eval                                     # tiny model, synthetic problems, CPU
prefix-rft-eval model_path=outputs/prefix_rft/qwen2.5-math-7b-openr1/<run> backend=vllm \\
    data_file=../shared/data/benchmarks/luffy_valid_all.parquet benchmarks=[] \\
    output_dir=outputs/eval/prefix-rft-7b           # all six benchmarks of the paper's table
prefix-rft-eval model_path=Qwen/Qwen2.5-Math-7B benchmarks=[math500,minerva] \\
    data_dir=../shared/data/solutions max_items=50 output_dir=outputs/eval/base-quick

Keys (all documented in prefix_rft/eval/config.py):

* model: ``model_path`` (hub id, builtin:<preset>, checkpoint folder, or LoRA adapter folder),
  ``adapter_path``, ``dtype``, ``chat_template``, ``config_overrides``, ``run_name``.
* data: ``benchmarks`` (names, files, ``hub:<id>[:<split>]`` or ``NAME@SOURCE``), ``data_file``
  (LUFFY parquet), ``data_dir`` (Qwen2.5-Math JSONL folder), ``max_items``, ``synthetic.*``.
* sampling: ``samples`` (k; null = avg@32 for AIME24/AIME25/AMC, 1 for the rest), ``pass_k``,
  ``temperature``, ``top_p``, ``max_new_tokens``, ``batch_size``, ``seed``, ``backend``
  (transformers | vllm), ``vllm.*``, ``prompt_template`` (auto | qwen_math | luffy | plain),
  ``system_prompt``, ``use_chat_template``.
* grading: ``grader_workers`` (math-verify processes), ``grader_timeout`` (seconds per answer).
* output: ``output_dir`` (samples.jsonl + summary.{json,csv,md}); rerunning with the same folder
  resumes; ``overwrite=true`` starts over; ``stop_after=N`` stops after N new samples;
  ``progress`` (a progress bar).
"""

from __future__ import annotations

import sys

from omegaconf import DictConfig, OmegaConf


def main() -> None:
    """Console entry point (``prefix-rft-eval``); Hydra parses the command line."""
    from prefix_rft.cli.help import eval_help, wants_help

    if wants_help(sys.argv[1:]):
        print(eval_help(__doc__.replace("``", "")))
        return

    import hydra

    from prefix_rft.config.command_line import check_command_line
    from prefix_rft.config.compose import conf_dir
    from prefix_rft.errors import Interrupted, report_user_errors
    from prefix_rft.eval.config import register_eval_configs

    register_eval_configs()
    # A typo (unknown key, a value of the wrong type) is one line and exit 2, before Hydra runs anything.
    check_command_line(sys.argv[1:], conf_dir(), "eval", "prefix-rft-eval")

    def task(cfg: DictConfig) -> None:
        from prefix_rft.eval.report import pct
        from prefix_rft.eval.runner import run_evaluation

        # Resolve once: ${now:...} in output_dir must not change between two reads.
        resolved = OmegaConf.to_container(cfg, resolve=True)
        # A config, data or model mistake is the user's to fix: one clear line, no traceback.
        with report_user_errors("prefix-rft-eval"):
            try:
                summary = run_evaluation(resolved)
            except KeyboardInterrupt:
                # The samples graded so far are in the folder: the same command with it resumes.
                raise Interrupted(
                    f"the samples written so far are kept in {resolved['output_dir']}; resume with the same "
                    f"command and output_dir={resolved['output_dir']}"
                ) from None
        for name, b in summary["benchmarks"].items():
            print(
                f"{name:>14}  {b['metric']:>7}  {pct(b['score']):>5}  ({b['n_items']} items, {b['n_samples']} samples)"
            )
        print(f"{'avg':>14}  {'':>7}  {pct(summary['average']['score']):>5}")
        if "average_ood" in summary:
            print(f"{'avg_ood':>14}  {'':>7}  {pct(summary['average_ood']['score']):>5}")
        print(f"results: {resolved['output_dir']}")

    hydra.main(config_path=str(conf_dir()), config_name="eval", version_base="1.3")(task)()


if __name__ == "__main__":
    main()
