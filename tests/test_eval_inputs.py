"""``prefix-rft-eval`` inputs that are the user's to fix, through the command in this process: a missing
``data_dir`` is named as a folder problem (not blamed on the hub), a benchmark missing from ``data_dir`` is not
fetched from the hub, and a nonexistent ``model_path`` is refused before any sample count and leaves no folder."""

from __future__ import annotations

import json


def one_line(code: int, err: str, *needles: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("prefix-rft-")]
    assert code == 2 and "Traceback" not in err and len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_missing_data_dir_is_a_folder_problem(eval_cli, tmp_path):
    out = tmp_path / "e"
    code, stdout, err = eval_cli("benchmarks=[math500]", f"data_dir={tmp_path / 'nope'}", f"output_dir={out}")
    line = one_line(code, err, f"data_dir={tmp_path / 'nope'} does not exist; expected a folder of benchmark")
    assert "hub" not in line and not out.exists() and "samples already" not in stdout


def test_benchmark_missing_from_data_dir_is_not_fetched(eval_cli, tmp_path):
    folder = tmp_path / "solutions"
    folder.mkdir()
    (folder / "aime24.jsonl").write_text(json.dumps({"problem": "1+1?", "answer": "2"}) + "\n")
    code, _, err = eval_cli("benchmarks=[math500]", f"data_dir={folder}", f"output_dir={tmp_path / 'e'}")
    one_line(code, err, f"benchmark MATH-500: data_dir={folder} has no math500.jsonl (it holds aime24.jsonl)")
    assert not (tmp_path / "e").exists()


def test_nonexistent_model_path_refused_before_anything(eval_cli, tmp_path):
    out = tmp_path / "e"
    code, stdout, err = eval_cli(f"model_path={tmp_path / 'no-model'}", f"output_dir={out}")
    one_line(code, err, f"model_path={tmp_path / 'no-model'} does not exist")
    assert "samples already" not in stdout and not out.exists()


def test_output_dir_naming_a_file_is_one_line(eval_cli, tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("x")
    code, _, err = eval_cli(f"output_dir={target}")
    one_line(code, err, f"output_dir={target} is a file; expected a folder")
