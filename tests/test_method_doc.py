"""docs/method.md is the method description the code cites: every citation resolves to a step it has, and
its table of published numbers is the one prefix-rft-compare uses."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from prefix_rft.eval.paper_results import PAPER_RESULTS

REPO_ROOT = Path(__file__).resolve().parents[1]
DOC = REPO_ROOT / "docs" / "method.md"


def tracked_text_files() -> list[Path]:
    try:
        names = subprocess.run(
            ["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: every source file
        names = [str(p.relative_to(REPO_ROOT)) for p in REPO_ROOT.rglob("*") if p.is_file()]
    suffixes = {".py", ".md", ".yaml", ".toml", ".txt", ""}
    return [REPO_ROOT / n for n in names if Path(n).suffix in suffixes and (REPO_ROOT / n).is_file()]


def doc_steps() -> set[int]:
    return {int(n) for n in re.findall(r"^(\d+)\. \*\*", DOC.read_text(), flags=re.MULTILINE)}


def test_the_doc_has_the_nine_numbered_steps():
    assert doc_steps() == set(range(1, 10))


def test_every_citation_of_the_method_resolves():
    # The description that used to live outside the repository is cited by its repository path only.
    old_name = "METHOD" + ".md"
    stale = [
        str(p.relative_to(REPO_ROOT))
        for p in tracked_text_files()
        if old_name in p.read_text(errors="ignore")
    ]
    assert stale == []
    steps = doc_steps()
    cited = 0
    for path in tracked_text_files():
        for match in re.finditer(r"docs/method\.md,? step (\d+)", path.read_text(errors="ignore")):
            cited += 1
            assert int(match.group(1)) in steps, f"{path}: cites step {match.group(1)} of docs/method.md"
    # METHOD + ", step N" in paper_settings.py is the constant's text, not a literal citation.
    from prefix_rft.paper_settings import METHOD, REFERENCES

    assert METHOD.startswith("docs/method.md ")
    sources = [v.source for ref in REFERENCES.values() for v in ref.values.values()]
    for source in sources:
        match = re.search(r"docs/method\.md.*, step (\d+)", source)
        if match:
            cited += 1
            assert int(match.group(1)) in steps, source
    assert cited >= 10


def test_the_published_table_is_the_one_the_comparison_uses():
    rows = {}
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 8 and re.fullmatch(r"\d+\.\d", cells[1]):
            rows[cells[0]] = tuple(float(c) for c in cells[1:])
    names = {
        "base model": "base",
        "SFT": "SFT",
        "RFT": "RFT",
        "SFT -> RFT": "SFT->RFT",
        "LUFFY": "LUFFY",
        "ReLIFT": "ReLIFT",
        "Prefix-RFT": "Prefix-RFT",
    }
    for doc_name, code_name in names.items():
        assert rows[doc_name] == tuple(PAPER_RESULTS[code_name].values()), doc_name
    # Each average is the mean of the six benchmarks, to the printed decimal.
    for name, values in rows.items():
        assert abs(sum(values[:6]) / 6 - values[6]) <= 0.05 + 1e-9, name
