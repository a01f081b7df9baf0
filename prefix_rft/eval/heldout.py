"""The quick held-out accuracy a training run prints before and after training."""

from __future__ import annotations

import torch


@torch.no_grad()
def sample_scores(
    model,
    tokenizer,
    records: list[dict],
    *,
    samples: int = 4,
    temperature: float = 0.6,
    max_new_tokens: int = 96,
    batch_size: int = 32,
    seed: int = 0,
) -> list[list[float]]:
    """Grades (1/0) of ``samples`` sampled completions per record ({prompt, answer}), in record order."""
    from prefix_rft.eval.loop import graded_batches

    was_training = model.training
    model.eval()
    torch.manual_seed(seed)
    device = next(model.parameters()).device
    old_side, tokenizer.padding_side = tokenizer.padding_side, "left"

    def generate(batch: list[dict]) -> list[str]:
        texts = [
            tokenizer.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=False)
            for r in batch
        ]
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        out = model.generate(
            **enc,
            do_sample=temperature > 0,
            temperature=temperature if temperature > 0 else None,
            top_p=1.0,
            max_new_tokens=max_new_tokens,
            num_return_sequences=samples,
            pad_token_id=tokenizer.pad_token_id,
        )
        return tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)

    scores: list[float] = []
    try:
        for _, _, graded in graded_batches(
            records, generate, lambda r: ("boxed", r["answer"]), batch_size=batch_size, per_item=samples
        ):
            scores.extend(g.score for g in graded)
    finally:
        tokenizer.padding_side = old_side
        model.train(was_training)
    return [scores[i * samples : (i + 1) * samples] for i in range(len(records))]


def heldout_accuracy(
    model, tokenizer, records: list[dict], *, samples: int = 4, **kwargs
) -> dict[str, float]:
    """avg@k accuracy of ``model`` on ``records`` ({prompt, answer[, num_steps]}), overall and by steps.

    ``kwargs``: temperature, max_new_tokens, batch_size, seed (see :func:`sample_scores`).
    """
    if not records:
        return {}
    per_record = sample_scores(model, tokenizer, records, samples=samples, **kwargs)
    flat = [x for row in per_record for x in row]
    result = {"accuracy": sum(flat) / len(flat)}
    by_steps: dict[int, list[float]] = {}
    for r, row in zip(records, per_record):
        if "num_steps" in r:
            by_steps.setdefault(r["num_steps"], []).extend(row)
    for steps, vals in sorted(by_steps.items()):
        result[f"accuracy/steps_{steps}"] = sum(vals) / len(vals)
    return result
