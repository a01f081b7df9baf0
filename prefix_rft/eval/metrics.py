"""Evaluation metrics: the unbiased pass@k estimator, avg@k, and their aggregation over benchmarks.

With n samples of a problem of which c are correct, pass@k is the probability that at least one of
k samples drawn without replacement from the n is correct (Chen et al., 2021, "Evaluating Large
Language Models Trained on Code"): ``1 - C(n-c, k) / C(n, k)``. The binomials overflow floats for the
n used here only in extreme cases, but their ratio is computed as a product that never does:
``C(n-c, k) / C(n, k) = prod_{i=n-c+1}^{n} (1 - k / i)``.

avg@k is the mean correctness of the k samples of a problem (the papers' "avg@32"); pass@1 estimated
from n samples is the same number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples of which ``c`` are correct (needs ``1 <= k <= n``)."""
    if n < 1 or not 0 <= c <= n:
        raise ValueError(f"pass@k needs n >= 1 and 0 <= c <= n; got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"pass@k needs 1 <= k <= n; got k={k} with n={n} samples")
    if n - c < k:  # every draw of k contains a correct sample
        return 1.0
    prob_all_wrong = 1.0
    for i in range(n - c + 1, n + 1):
        prob_all_wrong *= 1.0 - k / i
    return 1.0 - prob_all_wrong


def avg_at_k(correct: Sequence[bool | float]) -> float:
    """Mean correctness of one problem's samples (avg@k with k = ``len(correct)``)."""
    if not correct:
        raise ValueError("avg@k needs at least one sample")
    return sum(float(x) for x in correct) / len(correct)


def aggregate_benchmark(items: Mapping[str, Sequence[bool | float]], ks: Iterable[int] = (1,)) -> dict:
    """Scores of one benchmark from ``{item id: [correct of sample 0, 1, ...]}``.

    Returns ``n_items``, ``n_samples`` (total), ``samples_per_item`` (the minimum over items, so a
    partial run is visible), ``accuracy`` (the mean over items of each item's avg@k: the benchmark
    score) and ``pass@k`` for every requested k that every item has enough samples for (the others
    are omitted rather than estimated from too few samples).
    """
    if not items:
        return {"n_items": 0, "n_samples": 0, "samples_per_item": 0, "accuracy": None}
    counts = [len(v) for v in items.values()]
    if min(counts) == 0:
        empty = [key for key, v in items.items() if not v]
        raise ValueError(f"items without samples cannot be scored: {empty[:5]}")
    per_item = min(counts)
    result: dict = {
        "n_items": len(items),
        "n_samples": sum(counts),
        "samples_per_item": per_item,
        "accuracy": sum(avg_at_k(v) for v in items.values()) / len(items),
    }
    for k in sorted(set(ks)):
        if k <= per_item:
            result[f"pass@{k}"] = sum(
                pass_at_k(len(v), int(sum(float(x) for x in v)), k) for v in items.values()
            ) / len(items)
    return result


def unweighted_average(scores: Mapping[str, float | None]) -> float | None:
    """Plain mean of benchmark scores (every benchmark counts once, whatever its size); None if empty."""
    values = [v for v in scores.values() if v is not None]
    return sum(values) / len(values) if values else None
