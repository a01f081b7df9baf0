"""Reference answers the grader cannot read, found when the training data loads rather than after a run
that trained at reward 0.000 and loss 0.

Each reference answer is graded against itself, boxed as a completion would box it, by the same grader
the reward uses (math-verify, without the string shortcut; see
:meth:`prefix_rft.rewards.grader.Grader.self_grade`). An answer that fails can never be matched: no
completion earns a reward on its row. Such rows are reported (their share and source row numbers); they
are dropped under ``data.on_bad_row=skip``; when no row is usable, training is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from prefix_rft.errors import DataError

logger = logging.getLogger(__name__)

SOURCE_ROW = "_source_row"  # the row's index in the source, kept through subsetting for messages


def gold_style(reward_funcs: Sequence) -> str | None:
    """The answer style the ``accuracy`` reward grades with (``boxed`` or ``choice``), or None without it
    (a custom reward: its references are its own business)."""
    for entry in reward_funcs or ():
        if entry.get("name") in ("accuracy", "accuracy_reward"):
            return (entry.get("params") or {}).get("style", "boxed")
    return None


def unusable_rows(answers: Sequence[str]) -> list[int]:
    """Indices (into ``answers``) of reference answers the boxed grader cannot match with anything."""
    from prefix_rft.rewards.grader import Grader

    with Grader(num_workers=1) as grader:
        usable = grader.self_grade([str(a) for a in answers])
    return [i for i, ok in enumerate(usable) if not ok]


def check_gold_answers(ds, style: str | None, where: str, on_bad_row: str):
    """``ds`` after the check above (``style``: the reward's answer style; only ``boxed`` is checked);
    ``where`` names the data in messages. Removes the :data:`SOURCE_ROW` column."""
    rows = ds[SOURCE_ROW] if SOURCE_ROW in ds.column_names else list(range(len(ds)))
    if style == "boxed" and len(ds):
        bad = unusable_rows(ds["answer"])
        if len(bad) == len(ds):
            examples = ", ".join(repr(ds["answer"][i]) for i in bad[:3])
            raise DataError(
                f"none of the {len(ds)} reference answers of {where} can be graded (e.g. {examples}): math-verify "
                "does not read them even against themselves, so every reward would be 0; fix data.answer_column "
                "or the answers"
            )
        if bad:
            shown = ", ".join(str(rows[i]) for i in bad[:10]) + (", ..." if len(bad) > 10 else "")
            action = "dropped (data.on_bad_row=skip)" if on_bad_row == "skip" else "kept, they score 0"
            logger.warning(
                "%d of %d reference answers of %s (%.1f%%) cannot be graded, even against themselves (rows %s; "
                "first: %r): %s",
                len(bad),
                len(ds),
                where,
                100 * len(bad) / len(ds),
                shown,
                ds["answer"][bad[0]],
                action,
            )
            if on_bad_row == "skip":
                drop = set(bad)
                ds = ds.select([i for i in range(len(ds)) if i not in drop])
    if SOURCE_ROW in ds.column_names:
        ds = ds.remove_columns(SOURCE_ROW)
    return ds
