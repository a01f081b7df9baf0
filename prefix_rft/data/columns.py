"""Column names of the normalised training rows (:func:`prefix_rft.data.sources.normalise_rows`).

The trainers read these columns; a row's other columns (``data.extra_columns``) reach the reward functions
as keyword arguments of the same name.
"""

PROMPT = "prompt"
ANSWER = "answer"
DEMONSTRATION = "demonstration"
