#!/usr/bin/env bash
# Train Prefix-RFT and every baseline (every registered algorithm) with one Hydra multirun, evaluate every run, compare them.
#
#   bash recipes/sweep_baselines.sh                                   # tiny model, CPU (about 10-15 min)
#   OUT=outputs/sweep-7b EVAL_ARGS="backend=vllm data_file=luffy_valid_all.parquet benchmarks=[]" \
#     bash recipes/sweep_baselines.sh model=qwen2.5-math-7b generation=vllm_colocate peft=lora
#
# Environment: OUT (folder, default outputs/sweep), ALGOS (comma list, default: every registered algorithm,
# prefix_rft/algorithms.py), SEEDS (comma list, default 42), PYTHON (the project's interpreter),
# EVAL_ARGS (extra prefix-rft-eval overrides), COMPARE_ARGS (e.g. --paper). Arguments go to
# prefix-rft-train as Hydra overrides. Rerunning resumes: finished training runs and evaluated samples
# are kept (resume_from_checkpoint=latest, the evaluation's samples.jsonl).
# Multi-GPU: put `accelerate launch --config_file recipes/accelerate_configs/zero3.yaml -m prefix_rft.cli.train`
# in TRAIN (default: prefix-rft-train).
set -euo pipefail
OUT=${OUT:-outputs/sweep}
ALGOS=${ALGOS:-$(${PYTHON:-python} -c "from prefix_rft.algorithms import ALGORITHMS; print(','.join(ALGORITHMS))")}
SEEDS=${SEEDS:-42}
TRAIN=${TRAIN:-prefix-rft-train}

$TRAIN -m "algorithm=$ALGOS" "seed=$SEEDS" resume_from_checkpoint=latest \
  "hydra.sweep.dir=$OUT/train" 'hydra.sweep.subdir=${algorithm.name}-seed${seed}' "$@"

evals=()
for run in "$OUT"/train/*/; do
  name=$(basename "$run")
  # shellcheck disable=SC2086  # EVAL_ARGS is a list of overrides
  prefix-rft-eval "model_path=$run" "output_dir=$OUT/eval/$name" ${EVAL_ARGS:-}
  evals+=("$OUT/eval/$name")
done
# shellcheck disable=SC2086
prefix-rft-compare "${evals[@]}" --out "$OUT/compare" ${COMPARE_ARGS:-}
echo "comparison: $OUT/compare/comparison.md"
