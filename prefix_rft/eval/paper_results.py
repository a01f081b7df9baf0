"""Published results to compare against: the paper's Qwen2.5-Math-7B table (percentages).

Copied from docs/method.md ("Published numbers"): AIME24, AIME25
and AMC are avg@32, MATH-500, Minerva and OlympiadBench pass@1, avg is the unweighted mean of the
six. Column names are the canonical benchmark names of :mod:`prefix_rft.eval.suites`.
"""

from __future__ import annotations

PAPER_MODEL = "Qwen2.5-Math-7B"
PAPER_COLUMNS = ("AIME24", "AIME25", "AMC", "MATH-500", "Minerva", "OlympiadBench", "avg")

_ROWS = {
    "base": (11.5, 4.9, 31.3, 43.6, 7.4, 15.6, 19.0),
    "SFT": (22.2, 22.3, 52.8, 82.6, 40.8, 43.7, 44.1),
    "RFT": (25.1, 15.3, 62.0, 84.4, 39.3, 46.8, 45.5),
    "SFT->RFT": (25.8, 23.1, 62.7, 87.2, 39.7, 50.4, 48.2),
    "LUFFY": (29.4, 23.1, 65.6, 87.6, 37.5, 57.2, 50.1),
    "ReLIFT": (28.2, 20.1, 64.9, 87.4, 33.8, 52.5, 47.8),
    "Prefix-RFT": (31.8, 26.4, 68.2, 88.4, 40.3, 55.7, 51.8),
}

# {method: {column: percentage}} for Qwen2.5-Math-7B, in the paper's row order.
PAPER_RESULTS: dict[str, dict[str, float]] = {
    method: dict(zip(PAPER_COLUMNS, values)) for method, values in _ROWS.items()
}
