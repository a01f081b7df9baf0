"""Answer forms that math-verify misreads, rewritten into ones it compares correctly.

Applied to the prediction and the reference answer alike before they are compared. Measured on a table
of forms taken from real benchmark answers (tests/test_answer_forms.py), math-verify alone gets these
wrong: percentages (``50\\%`` against ``50``), a number and its unit inside one ``\\text{10 cm}``, a
unit after ``~``, the Unicode degree sign (``30°``), a thin space as thousands separator
(``1\\,000``, ``32,\\! 349``), scientific e-notation (``1e3``) and bold wrappers (``\\textbf{(073)}``).
It already handles ``^\\circ``, ``\\text{ cm}`` after a number, ``1,000``, mixed numbers, intervals,
``x = 5`` and unordered lists of answers, which are left as they are.

The rewrites only ever add matches: the grader (:mod:`prefix_rft.rewards.grader`) also compares the
forms as written, and an answer is right when either comparison says so. So a case math-verify gets
right on its own cannot become wrong here; tests/test_math_verify_cases.py checks that on math-verify's
own test cases.

What the forms mean (decided here, tested in tests/test_answer_forms.py):

* A percentage equals its number and its value: ``50\\%`` (also ``50 percent``, ``50 pct``,
  ``50 percentage``) matches ``50`` (:func:`normalize_answer` drops the sign or word) and ``0.5``
  (:func:`percent_as_value` writes it as ``\\frac{50}{100}``); the grader tries both.
* ``1e3``, ``2.5E-2``: a whole answer in e-notation is the number it denotes (``1000``, ``0.025``).
* A thousands separator is only ever a separator: ``32,\\! 349`` and ``1\\,000`` are 32349 and 1000.
"""

from __future__ import annotations

import re

# "50\%", "50 %", "50\text{\%}", "50 \text{ percent}", "50 percent", "50 pct" -> "50"
_PERCENT = re.compile(
    r"\s*(?:\\text\{\s*(?:\\?%|percent(?:age)?|pct)\s*\}|\\%|(?<!\\)%|(?<=[\d}$\s])(?:percent(?:age)?|pct)\b)"
)
# Bold is presentation: \textbf{(073)} -> (073)
_BOLD = re.compile(r"\\(?:textbf|mathbf|boldsymbol)\{([^{}]*)\}")
# A number and its unit in one text box: \text{10 cm} -> 10\text{ cm}
_TEXT_NUMBER_UNIT = re.compile(r"\\(?:text|mbox|textrm)\{\s*(-?\d[\d.,]*)\s*([^{}]*)\}")
# A LaTeX-spaced separator between digit groups: 1\,000 / 32,\!348 / 32,\! 349 -> 1000 / 32348 / 32349
_SPACED_GROUPS = re.compile(r"(?<=\d)(?:,?\s*\\[,!]\s*,?)\s*(?=\d{3}(?!\d))")
_NEGATIVE_THIN_SPACE = re.compile(r"\\!")
# A single number in parentheses, as bold AIME answers are written: (073) -> 073
_PARENTHESISED_NUMBER = re.compile(r"^\(\s*(-?\d+(?:\.\d+)?)\s*\)$")
# A whole answer in e-notation: 1e3, -2.5E-2 -> 1\times10^{3}, -2.5\times10^{-2}
_E_NOTATION = re.compile(r"^(-?\d+(?:\.\d+)?)[eE]([+-]?\d+)$")


# A number with a percent sign or word: 50\%, 12.5 %, 50\text{\%}, 28 percent -> \frac{50}{100}
_PERCENT_VALUE = re.compile(
    r"(-?\d+(?:\.\d+)?)\s*(?:\\text\{\s*(?:\\?%|percent(?:age)?|pct)\s*\}|\\%|(?<!\\)%|(?:percent(?:age)?|pct)\b)"
)


def percent_as_value(text: str) -> str | None:
    """``text`` with each percentage written as its value (``50\\%`` -> ``\\frac{50}{100}``), after the other
    rewrites; None when it holds no percentage."""
    if not _PERCENT_VALUE.search(text):
        return None
    return normalize_answer(_PERCENT_VALUE.sub(r"\\frac{\1}{100}", text))


def normalize_answer(text: str) -> str:
    """``text`` with the forms above rewritten; anything else is returned unchanged."""
    s = text.strip()
    s = s.replace("°", "^\\circ").replace("\u2212", "-")  # Unicode degree sign and minus
    s = _BOLD.sub(r"\1", s)
    s = _PERCENT.sub("", s)
    s = _TEXT_NUMBER_UNIT.sub(
        lambda m: m.group(1) + (f"\\text{{ {m.group(2).strip()}}}" if m.group(2).strip() else ""), s
    )
    s = _SPACED_GROUPS.sub("", s)
    s = _NEGATIVE_THIN_SPACE.sub("", s)
    s = s.replace("~", " ")  # LaTeX's unbreakable space ("5~\mathrm{cm}")
    s = _PARENTHESISED_NUMBER.sub(r"\1", s.strip())
    s = _E_NOTATION.sub(r"\1\\times10^{\2}", s.strip())
    return s.strip()
