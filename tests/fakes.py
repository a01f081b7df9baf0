"""Stand-ins shared by the trainer tests: a reward that varies on any model, and deterministic rollouts."""

from __future__ import annotations


def digit_reward(completions, **kwargs) -> list[float]:
    """The share of digit characters: it varies between rollouts of a random model (accuracy would be all 0),
    so advantages and gradients are non-zero."""
    texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
    return [sum(ch.isdigit() for ch in t) / max(len(t), 1) for t in texts]


def fixed_generate(tok):
    """A replacement for GRPOTrainer._generate_single_turn: a deterministic completion per (prompt, row),
    of varying length and digit count within a group, so rewards, advantages and token counts all vary."""
    eos = tok.convert_tokens_to_ids("<|im_end|>")

    def generate(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        out = []
        for i, prompt in enumerate(prompt_ids):
            seed = (sum(prompt) + 7 * i) % 97
            text = "ab1" * (1 + seed % 5) + str(seed) + "x" * (i % 3)
            out.append(tok(text=text, add_special_tokens=False)["input_ids"] + [eos])
        return out, None

    return generate


def greedy_accuracy_by_level(path, recorded: dict, problems: int = 60) -> dict[int, dict]:
    """Greedy held-out results of the model at ``path`` on the first ``problems`` profile problems of each
    level, each checked within 3 standard errors of the greedy accuracy recorded in its PROFILE.json (the
    first 60 of the 200 profile problems are a subset, so this is a loose, machine-robust bound)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from prefix_rft.eval.heldout import heldout_accuracy
    from prefix_rft.testbed_model import profile_records

    model = AutoModelForCausalLM.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    results = {}
    for level in (1, 2, 3, 4):
        records = profile_records(problems, levels=(level,))
        result = heldout_accuracy(
            model, tok, records, samples=1, temperature=0.0, max_new_tokens=64, batch_size=problems
        )
        expected = recorded["profile"][f"steps_{level}"]["greedy/accuracy"]
        se = max((expected * (1 - expected) / problems) ** 0.5, 0.02)
        assert abs(result["accuracy"] - expected) <= 3 * se, (level, result["accuracy"], expected)
        results[level] = result
    return results
