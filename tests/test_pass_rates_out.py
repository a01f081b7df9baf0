"""``prefix-rft-pass-rates --out``: an existing file is refused (without ``--overwrite``) before any model
loads, a folder or a missing folder is one line, and ``--overwrite`` replaces the file."""

from __future__ import annotations

import json

import pytest

from prefix_rft.cli.pass_rates import main

SMALL = [
    "--model",
    "builtin:tiny-warm",
    "--samples",
    "1",
    "--max-new-tokens",
    "8",
    "data.synthetic.num_train=4",
]


def run(args: list[str], capsys) -> tuple[int, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def test_out_is_never_overwritten_silently(tmp_path, capsys, model_cache):
    out = tmp_path / "rates.jsonl"
    code, err = run([*SMALL, "--out", str(out)], capsys)
    assert code == 0, err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 4 and all(0.0 <= r["pass_rate"] <= 1.0 for r in rows)

    out.write_text(out.read_text() + '{"problem": "marker", "pass_rate": 0.5}\n')  # 5 lines now
    before = out.read_text()
    code, err = run([*SMALL[:4], "--out", str(out), "--model", "/nonexistent/model"], capsys)
    # Refused first: the file check comes before the model is even looked at.
    assert code == 2 and err.strip() == (
        f"prefix-rft-pass-rates: refused: --out {out} already exists (5 lines); pass --overwrite to "
        "replace it, or choose another file"
    )
    assert out.read_text() == before

    code, err = run([*SMALL, "--out", str(out), "--overwrite"], capsys)
    assert code == 0, err
    assert len(out.read_text().splitlines()) == 4 and "marker" not in out.read_text()
    assert not list(tmp_path.glob(".*partial"))


@pytest.mark.parametrize(
    "target, expected",
    [("", "is a folder; expected a .jsonl file to write"), ("missing/rates.jsonl", "does not exist")],
)
def test_out_folder_problems_are_one_line(tmp_path, capsys, target, expected):
    out = tmp_path / target
    code, err = run([*SMALL, "--out", str(out)], capsys)
    assert code == 2 and expected in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
