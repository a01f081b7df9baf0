"""Prompt templates: how a problem becomes a conversational prompt."""

from __future__ import annotations

QWEN_MATH_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
# Our own wording of a reasoning system prompt in the style LUFFY uses (think first, box the answer).
LUFFY_SYSTEM_PROMPT = (
    "You are a careful mathematician. Think through the problem step by step, showing your reasoning, "
    "and then give the final answer inside \\boxed{}."
)
PROMPT_TEMPLATES: tuple[str, ...] = ("qwen_math", "luffy", "plain")


def build_prompt(
    problem: str, template: str = "qwen_math", system_prompt: str | None = None
) -> list[dict[str, str]]:
    """A conversational prompt (list of ``{"role", "content"}``) for ``problem``.

    ``qwen_math``: the problem followed by the Qwen math instruction (the paper's prompt);
    ``luffy``: a reasoning system prompt and the bare problem; ``plain``: the bare problem.
    ``system_prompt`` is prepended as a system message when given.
    """
    if template == "qwen_math":
        messages = [{"role": "user", "content": f"{problem}\n{QWEN_MATH_INSTRUCTION}"}]
    elif template == "luffy":
        messages = [{"role": "system", "content": LUFFY_SYSTEM_PROMPT}, {"role": "user", "content": problem}]
    elif template == "plain":
        messages = [{"role": "user", "content": problem}]
    else:
        raise ValueError(
            f"prompt template {template!r} is not valid; expected one of {list(PROMPT_TEMPLATES)}"
        )
    if system_prompt:
        messages = [{"role": "system", "content": system_prompt}, *messages]
    return messages
