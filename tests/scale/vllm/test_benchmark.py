"""benchmarks/vllm_step_time.py --quick: both trainers step on the vLLM backend, alternating, and the JSON
and table are written; Prefix-RFT samples fewer tokens per step than RFT (its hybrid prefixes are given)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.scale.vllm.conftest import REPO, lane_env


def test_vllm_step_time_quick(tmp_path):
    out = tmp_path / "bench"
    cmd = [sys.executable, "-m", "benchmarks.vllm_step_time", "--quick", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, env=lane_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "ratio PRFT/RFT" in proc.stdout and "Prefix-RFT / RFT step time" in proc.stdout
    data = json.loads((out / "vllm_step_time.json").read_text())
    assert data["options"]["backend"] == "vllm_colocate"
    s = data["summary"]
    assert s["prefix_rft"]["timed_steps"] == s["grpo"]["timed_steps"] == 3
    assert s["prefix_rft"]["median_prefix_tokens_total"] > 0
    assert s["grpo"]["median_prefix_tokens_total"] == 0
    assert 0 < s["ratio_prefix_rft_over_grpo"]["median_total_s"]
