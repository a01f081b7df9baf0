"""Named chat templates for models whose tokenizer lacks the one the paper prompts them with."""

from __future__ import annotations

from prefix_rft.errors import ConfigError

# Llama-3.1-Instruct turn format (header ids around the role, <|eot_id|> closing each turn), for base
# Llama-3.1 checkpoints whose tokenizer ships no chat template. Every turn is closed; transformers'
# continue_final_message cuts the rendered text after the last message's content itself.
LLAMA_31_INSTRUCT = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim }}"
    "{{- '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)

# Qwen-style <|im_start|>/<|im_end|> turns (Qwen2.5-Math base tokenizers already carry an equivalent one).
CHATML = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

CHAT_TEMPLATES: dict[str, str] = {"llama-3.1-instruct": LLAMA_31_INSTRUCT, "chatml": CHATML}


def resolve_chat_template(value: str | None) -> str | None:
    """A template by name from :data:`CHAT_TEMPLATES`, a literal Jinja string, or None (keep the tokenizer's)."""
    if value is None:
        return None
    if value in CHAT_TEMPLATES:
        return CHAT_TEMPLATES[value]
    if "{%" in value or "{{" in value:
        return value
    raise ConfigError(
        f"model.chat_template={value!r} is neither a known template {sorted(CHAT_TEMPLATES)} nor a Jinja string"
    )
