"""Answer forms that math-verify misreads, rewritten into ones it compares correctly.

Applied to the prediction and the reference answer alike before they are compared. Measured on a table
of forms taken from real benchmark answers (tests/test_answer_forms.py), math-verify alone gets these
wrong: percentages (``50\\%`` against ``50``), a number and its unit inside one ``\\text{10 cm}``, a
unit after ``~``, the Unicode degree sign (``30°``), a thin space as thousands separator
(``1\\,000``) and bold wrappers (``\\textbf{(073)}``). It already handles ``^\\circ``,
``\\text{ cm}`` after a number, ``1,000``, mixed numbers, intervals, ``x = 5`` and unordered lists
of answers, which are left as they are.

A percentage is compared by its number: ``50\\%`` equals ``50``, not ``0.5``.
"""

from __future__ import annotations

import re

# "50\%", "50 %", "50\text{\%}", "50 \text{ percent}" -> "50"
_PERCENT = re.compile(r"\s*(?:\\text\{\s*\\?%\s*\}|\\%|(?<!\\)%)")
# Bold is presentation: \textbf{(073)} -> (073)
_BOLD = re.compile(r"\\(?:textbf|mathbf|boldsymbol)\{([^{}]*)\}")
# A number and its unit in one text box: \text{10 cm} -> 10\text{ cm}
_TEXT_NUMBER_UNIT = re.compile(r"\\(?:text|mbox|textrm)\{\s*(-?\d[\d.,]*)\s*([^{}]*)\}")
# A thin or negative thin space between digit groups: 1\,000 / 32,\!348 -> 1000 / 32,348
_THIN_SPACE_GROUPS = re.compile(r"(?<=\d)\\,(?=\d{3}(?!\d))")
_NEGATIVE_THIN_SPACE = re.compile(r"\\!")
# A single number in parentheses, as bold AIME answers are written: (073) -> 073
_PARENTHESISED_NUMBER = re.compile(r"^\(\s*(-?\d+(?:\.\d+)?)\s*\)$")


def normalize_answer(text: str) -> str:
    """``text`` with the forms above rewritten; anything else is returned unchanged."""
    s = text.strip()
    s = s.replace("°", "^\\circ").replace("\u2212", "-")  # Unicode degree sign and minus
    s = _BOLD.sub(r"\1", s)
    s = _PERCENT.sub("", s)
    s = _TEXT_NUMBER_UNIT.sub(
        lambda m: m.group(1) + (f"\\text{{ {m.group(2).strip()}}}" if m.group(2).strip() else ""), s
    )
    s = _THIN_SPACE_GROUPS.sub("", s)
    s = _NEGATIVE_THIN_SPACE.sub("", s)
    s = s.replace("~", " ")  # LaTeX's unbreakable space ("5~\mathrm{cm}")
    s = _PARENTHESISED_NUMBER.sub(r"\1", s.strip())
    return s.strip()
