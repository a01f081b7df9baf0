"""Pass rates of a model on training prompts: the measurement behind the hard subset
(``data.pass_rate_file`` / ``data.max_pass_rate``, see :mod:`prefix_rft.data.subsets`)."""

from __future__ import annotations

from datasets import Dataset

from prefix_rft.data.subsets import problem_key


def measure_pass_rates(
    model,
    tokenizer,
    ds: Dataset,
    *,
    samples: int = 8,
    temperature: float = 1.0,
    max_new_tokens: int = 256,
    batch_size: int = 16,
    seed: int = 0,
) -> list[dict]:
    """Pass rate (correct samples / ``samples``) of ``model`` on each row of ``ds`` (prompt, answer)."""
    from prefix_rft.eval.heldout import sample_scores

    records = [{"prompt": p, "answer": a} for p, a in zip(ds["prompt"], ds["answer"])]
    scores = sample_scores(
        model, tokenizer, records, samples=samples, temperature=temperature,
        max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed,
    )  # fmt: skip
    return [
        {"problem": problem_key(r["prompt"]), "pass_rate": sum(s) / samples} for r, s in zip(records, scores)
    ]
