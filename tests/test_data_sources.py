"""Training data: local files with a column mapping, malformed rows, message prompts, swapped
demonstrations, seeded fractions, the hard subset, and real MATH solutions through the prefix pipeline."""

from __future__ import annotations

import json
import math

import pytest

from prefix_rft.config.compose import compose_config
from prefix_rft.config.validate import ConfigError, validate_train_config
from prefix_rft.data.prompts import QWEN_MATH_INSTRUCTION
from prefix_rft.data.sources import DataError, load_train_dataset
from prefix_rft.data.subsets import select_hard, take_subset
from prefix_rft.prefix.sampling import cut_demonstration


def write_jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def data_cfg(path, *overrides):
    cfg = compose_config(
        [
            "data=local",
            f"data.path={path}",
            "data.problem_column=question",
            "data.answer_column=final",
            "data.demonstration_column=worked",
            *overrides,
        ]
    )
    return cfg


ROWS = [
    {"question": "What is 1+1?", "final": "2", "worked": "1+1=2. \\boxed{2}"},
    {"question": "What is 2+3?", "final": "5", "worked": "2+3=5. \\boxed{5}"},
    {"question": "", "final": "7", "worked": "x"},  # row 2: empty problem
    {"question": "What is 3+3?", "final": "6", "worked": ""},  # row 3: empty demonstration
]


def test_local_file_with_column_mapping_and_bad_rows(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", ROWS)
    with pytest.raises(
        DataError, match=r"2 malformed rows.*row 2: empty problem; row 3: empty demonstration"
    ):
        load_train_dataset(data_cfg(path).data)
    ds = load_train_dataset(data_cfg(path, "data.on_bad_row=skip").data)
    assert len(ds) == 2
    assert ds[0]["prompt"] == [{"role": "user", "content": f"What is 1+1?\n{QWEN_MATH_INSTRUCTION}"}]
    assert ds[1]["answer"] == "5" and ds[1]["demonstration"] == "2+3=5. \\boxed{5}"
    with pytest.raises(DataError, match=r"data columns \['nope'\] not found"):
        load_train_dataset(data_cfg(path, "data.answer_column=nope").data)
    with pytest.raises(DataError, match="data.path=.*missing.jsonl does not exist"):
        load_train_dataset(data_cfg(tmp_path / "missing.jsonl").data)


def test_message_prompts_kept_or_re_templated(tmp_path):
    rows = [
        {
            "question": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "What is 4+4?"},
            ],
            "final": "8",
            "worked": "\\boxed{8}",
        }
    ]
    path = write_jsonl(tmp_path / "m.jsonl", rows)
    kept = load_train_dataset(data_cfg(path).data)
    assert kept[0]["prompt"] == rows[0]["question"]
    templated = load_train_dataset(
        data_cfg(path, "data.prompt_messages=template", "data.prompt_template=luffy").data
    )
    assert (
        templated[0]["prompt"][0]["role"] == "system" and templated[0]["prompt"][0]["content"] != "Be brief."
    )
    assert templated[0]["prompt"][-1] == {"role": "user", "content": "What is 4+4?"}


def test_demonstrations_can_be_swapped_from_a_file(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", ROWS[:2])
    demos = write_jsonl(
        tmp_path / "weak.jsonl",
        [{"problem": "What is 1+1?\n" + QWEN_MATH_INSTRUCTION, "demonstration": "weak 2"}],
    )
    with pytest.raises(DataError, match=r"1 rows \(first: row 1\) have no demonstration"):
        load_train_dataset(data_cfg(path, f"data.demonstrations_file={demos}").data)
    ds = load_train_dataset(data_cfg(path, f"data.demonstrations_file={demos}", "data.on_bad_row=skip").data)
    assert ds["demonstration"] == ["weak 2"]


def test_fraction_is_seeded_and_the_hard_subset_uses_measured_pass_rates(tmp_path):
    cfg = compose_config(["data.synthetic.num_train=400", "data.fraction=0.01"])
    a, b = load_train_dataset(cfg.data), load_train_dataset(cfg.data)
    assert len(a) == 4 and a["prompt"] == b["prompt"]
    other = load_train_dataset(
        compose_config(["data.synthetic.num_train=400", "data.fraction=0.01", "data.seed=1"]).data
    )
    assert other["prompt"] != a["prompt"]
    assert len(take_subset(a, 1.0, 2, seed=0)) == 2

    full = load_train_dataset(compose_config(["data.synthetic.num_train=6"]).data)
    keys = [p[-1]["content"] for p in full["prompt"]]
    rates = {k: r for k, r in zip(keys, [0.0, 0.5, 0.0, 1.0, 0.125, 0.0])}
    rate_file = write_jsonl(
        tmp_path / "rates.jsonl", [{"problem": k, "pass_rate": r} for k, r in rates.items()]
    )
    cfg = compose_config(
        ["data.synthetic.num_train=6", f"data.pass_rate_file={rate_file}", "data.max_pass_rate=0.0"]
    )
    hard = load_train_dataset(cfg.data)
    assert [p[-1]["content"] for p in hard["prompt"]] == [keys[0], keys[2], keys[5]]
    with pytest.raises(ValueError, match="no pass rate"):
        select_hard(full, {keys[0]: 0.0}, 0.0)
    with pytest.raises(ConfigError, match="data.max_pass_rate needs data.pass_rate_file"):
        validate_train_config(compose_config(["data.max_pass_rate=0.0"]))


def test_real_math_solutions_tokenize_and_cut_at_token_boundaries(shared_data, qwen_tokenizer):
    rows = [
        json.loads(line) for line in (shared_data / "solutions" / "math500.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 500
    for row in rows[:100]:
        ids = qwen_tokenizer(text=row["solution"], add_special_tokens=False)["input_ids"]
        assert qwen_tokenizer.decode(ids) == row["solution"]  # lossless byte-level BPE
        for ratio in (0.05, 0.5, 0.95):
            prefix = cut_demonstration(ids, ratio)
            assert len(prefix) == min(max(math.floor(ratio * len(ids)), 1), len(ids) - 1)
            # the prefix is a token-boundary cut: re-encoding prefix text + rest text is not needed
            assert ids[: len(prefix)] == prefix
            assert row["solution"].startswith(qwen_tokenizer.decode(prefix).rstrip("\ufffd"))


def test_measured_pass_rates_are_per_problem_fractions(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from prefix_rft.data.subsets import problem_key
    from prefix_rft.eval.pass_rates import measure_pass_rates

    ds = load_train_dataset(compose_config(["data.synthetic.num_train=3"]).data)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    rows = measure_pass_rates(model, tokenizer, ds, samples=4, max_new_tokens=8)
    assert [r["problem"] for r in rows] == [problem_key(p) for p in ds["prompt"]]
    # a random model with 8 new tokens never writes a boxed answer: every rate is exactly 0 of 4
    assert [r["pass_rate"] for r in rows] == [0.0, 0.0, 0.0]
