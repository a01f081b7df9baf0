"""The ``slow`` list of conftest.py names real tests, and the markers select what ``make test-fast`` runs."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import SLOW_TESTS

TESTS = Path(__file__).resolve().parent


def test_every_slow_entry_names_an_existing_test():
    missing = []
    for entry in sorted(SLOW_TESTS):
        file, function = entry.split("::")
        path = TESTS / file
        names = (
            {n.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.FunctionDef)}
            if path.is_file()
            else set()
        )
        if function not in names:
            missing.append(entry)
    assert missing == [], f"conftest.SLOW_TESTS names tests that do not exist (renamed?): {missing}"


def test_the_gpu_marker_is_on_the_test_that_needs_a_gpu():
    tree = ast.parse((TESTS / "test_lora.py").read_text())
    marked = {
        f.name
        for f in ast.walk(tree)
        if isinstance(f, ast.FunctionDef)
        for d in f.decorator_list
        if ast.unparse(d) == "pytest.mark.gpu"
    }
    assert marked == {"test_qlora_trains_adapters_on_a_4bit_base"}
