"""Column names of the normalised training rows (:func:`prefix_rft.data.sources.normalise_rows`).

The trainers read these columns; a row's other columns (``data.extra_columns``) reach the reward functions
as keyword arguments of the same name.
"""

PROMPT = "prompt"
ANSWER = "answer"
DEMONSTRATION = "demonstration"


def first_demonstration(value) -> str | None:
    """A row's first non-empty demonstration (the column holds one string or a list); None if none."""
    if isinstance(value, (list, tuple)):
        value = next((d for d in value if d), None)
    return value or None
