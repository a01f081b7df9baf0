"""Regenerate ``math_verify_cases.json`` from a checkout of Math-Verify's repository (its ``tests/`` folder).

python tests/data/make_math_verify_cases.py /path/to/Math-Verify > tests/data/math_verify_cases.json

Reads every ``@pytest.mark.parametrize("gold, pred, expected", [...])`` list of literal cases in the
test files below (without importing them) and keeps the cases whose test compares at math-verify's
default precision and without ``allow_set_relation_comp`` (the settings the project's grader uses).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

FILES = (
    "tests/test_all.py",
    "tests/test_boxed.py",
    "tests/test_numina_cases.py",
    "tests/test_open_thoughts.py",
)
SKIP_TESTS = {"test_set_rel_assymetry", "test_float_precision", "test_sqrt_precision", "test_symbols",
              "test_complex_math_expressions"}  # fmt: skip  # non-default precision or set relations


def cases_of(path: Path) -> list[dict]:
    tree = ast.parse(path.read_text())
    out = []
    for fn in (n for n in tree.body if isinstance(n, ast.FunctionDef)):
        if fn.name in SKIP_TESTS:
            continue
        for dec in fn.decorator_list:
            if not (isinstance(dec, ast.Call) and getattr(dec.func, "attr", "") == "parametrize"):
                continue
            names = [s.strip() for s in ast.literal_eval(dec.args[0]).split(",")]
            if names[:3] != ["gold", "pred", "expected"] or len(names) != 3:
                continue
            for element in dec.args[1].elts:
                try:
                    gold, pred, expected = ast.literal_eval(element)
                except ValueError:  # a non-literal case: left out
                    continue
                out.append(
                    {"test": f"{path.name}::{fn.name}", "gold": gold, "pred": pred, "expected": int(expected)}
                )
    return out


def main(repo: str) -> None:
    root = Path(repo)
    commit = subprocess.run(
        ["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    cases = [c for f in FILES for c in cases_of(root / f)]
    doc = {
        "source": f"https://github.com/huggingface/Math-Verify (commit {commit or 'unknown'}), files {list(FILES)}",
        "licence": "Math-Verify is Apache-2.0 (its LICENCE file); tests/test_all.py carries an MIT notice, "
        "Copyright (c) 2024 The HuggingFace Team. The cases are reproduced as data, unchanged.",
        "cases": cases,
    }
    json.dump(doc, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
