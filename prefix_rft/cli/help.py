"""``--help`` of the command-line tools: what each does, its groups and options, the common knobs.

Hydra's own ``--help`` prints the whole composed config (hundreds of unset TRL fields shown as
``???``) and lists every config group of the search path, so ``prefix-rft-train`` and
``prefix-rft-eval`` print these pages instead (Hydra's is still ``--hydra-help``). Nothing heavy is
imported: the group options are the YAML files in ``conf/``.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

TRL_DOCS = "https://huggingface.co/docs/trl/grpo_trainer#trl.GRPOConfig"

# One line per group of conf/ that a user selects (presets/ is pulled in by the algorithm files only).
GROUPS = {
    "model": "the policy model (tiny: built in, offline, CPU)",
    "data": "training data; local: any parquet/JSONL/JSON/CSV file, data.path=FILE",
    "algorithm": "Prefix-RFT or a baseline (knobs: algorithm.*)",
    "reward": "reward functions (reward.funcs=[{name:...,weight:...,params:{...}}])",
    "scale": "paper settings, or cpu sizing (model=tiny selects cpu)",
    "scheduler": "prefix-ratio schedule of the hybrid rollouts",
    "peft": "full fine-tuning, LoRA, or QLoRA (4-bit, bitsandbytes, GPU)",
    "generation": "rollout backend (vllm_*: pip install -e '.[vllm]', GPU)",
}

COMMON_KEYS = [
    ("trainer.max_steps=N", "optimizer steps (-1: train trainer.num_train_epochs epochs)"),
    ("trainer.learning_rate=X", "learning rate (sft_trainer.learning_rate for SFT)"),
    ("trainer.per_device_train_batch_size=N", "rollouts per device per micro-batch"),
    ("trainer.gradient_accumulation_steps=N", "micro-batches per optimizer step"),
    ("trainer.num_generations=N", "rollouts per prompt (a group)"),
    ("trainer.max_completion_length=N", "tokens per rollout"),
    ("trainer.save_steps=N", "checkpoint every N steps (the last step is always saved)"),
    ("trainer.report_to=wandb", "where metrics go besides the console and train.log"),
    ("data.path=FILE", "data=local: the file; data.problem_column / answer_column / demonstration_column"),
    ("algorithm.KNOB=VALUE", "a knob of the algorithm (algorithm=NAME --cfg job lists them)"),
    ("seed=N", "global seed"),
    ("hydra.run.dir=DIR", "the run folder (default outputs/<algorithm>/<model>-<data>/<time>)"),
    (
        "resume_from_checkpoint=latest",
        "continue the run folder's newest checkpoint (or give a checkpoint path)",
    ),
]


def _group_options(conf: Path, group: str) -> list[str]:
    return sorted(p.stem for p in (conf / group).glob("*.yaml") if not p.stem.startswith("_"))


def _defaults(conf: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for entry in OmegaConf.to_container(OmegaConf.load(conf / "config.yaml")).get("defaults", []):
        if isinstance(entry, dict):
            for key, value in entry.items():
                out[key.split("@")[0].removeprefix("override ").strip("/")] = str(value)
    return out


def train_help(conf: Path) -> str:
    """The ``prefix-rft-train --help`` page for the config directory ``conf``."""
    defaults = _defaults(conf)
    defaults["scale"] = "cpu" if defaults.get("model") == "tiny" else defaults.get("scale", "")
    lines = [
        "prefix-rft-train: post-train a language model with Prefix-RFT (arXiv 2507.01679) or one of its",
        "baselines, on Hugging Face TRL. The default job trains Prefix-RFT on the built-in tiny model and",
        "synthetic task on CPU; each run writes one folder (config.yaml, train.log, checkpoints, metrics.json).",
        "",
        "Usage:",
        "  prefix-rft-train [GROUP=OPTION ...] [KEY=VALUE ...]",
        "  prefix-rft-train -m algorithm=rft,prefix_rft seed=1,2,3   a sweep: one run folder each",
        "  prefix-rft-train [overrides] --cfg job                    print the composed config and exit",
        "  prefix-rft-train --help-trainer FIELD                     TRL's help text of trainer.FIELD",
        "",
        "Groups (GROUP=OPTION, * = default):",
    ]
    for group, about in GROUPS.items():
        options = [o + ("*" if o == defaults.get(group) else "") for o in _group_options(conf, group)]
        lines.append(f"  {group:<11} {', '.join(options)}")
        lines.append(f"  {'':<11}   {about}")
    lines += ["", "Common keys (KEY=VALUE):"]
    lines += [f"  {key:<38} {about}" for key, about in COMMON_KEYS]
    lines += [
        "",
        "trainer.* takes any field of TRL's GRPOConfig / SFTConfig (unset fields keep TRL's defaults),",
        f"documented at {TRL_DOCS} ; sft_trainer.* overrides",
        "them for the SFT stage. All other keys: prefix_rft/config/schema.py, or --cfg job.",
        "",
        "Rerun or extend a finished run from its folder (its config.yaml):",
        "  prefix-rft-train --config-dir RUN --config-name config resume_from_checkpoint=latest trainer.max_steps=N",
        "  prefix-rft-train --config-dir RUN --config-name config hydra.run.dir=NEW   # same settings, new folder",
        "",
        "A mistake prints one line naming the key or file; PREFIX_RFT_DEBUG=1 shows the traceback.",
        "Hydra's own options: --hydra-help.",
    ]
    return "\n".join(lines)


def eval_help(doc: str) -> str:
    """The ``prefix-rft-eval --help`` page: the command's docstring (its keys) and where they are defined."""
    return "\n".join(
        [
            doc.strip(),
            "",
            "Every key with its default and meaning: prefix_rft/eval/config.py (EvalConfig); the default job's",
            "values: conf/eval.yaml; prefix-rft-eval [KEY=VALUE ...] --cfg job prints the composed config.",
            "A mistake prints one line naming the key or file; PREFIX_RFT_DEBUG=1 shows the traceback.",
            "Hydra's own options: --hydra-help.",
        ]
    )


def wants_help(argv: list[str]) -> bool:
    """Whether the command line asks for the help page (``--help`` / ``-h``)."""
    return any(a in ("--help", "-h") for a in argv)
