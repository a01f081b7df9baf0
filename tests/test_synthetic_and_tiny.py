"""The synthetic task, prompt templates and the built-in tiny model/tokenizer."""

from __future__ import annotations

import re

import pytest
import torch

from prefix_rft.data.prompts import QWEN_MATH_INSTRUCTION, build_prompt
from prefix_rft.data.synthetic import check_working, generate_mixture, generate_problems, parse_problem
from prefix_rft.eval.chance import chance_baselines
from prefix_rft.models.tiny import build_tiny_tokenizer, ensure_tiny_model, preset_dir
from prefix_rft.rewards.rewards import accuracy


def test_generator_is_deterministic_and_difficulty_bounded():
    a = generate_problems(50, seed=1, min_steps=2, max_steps=3)
    assert a == generate_problems(50, seed=1, min_steps=2, max_steps=3)
    assert a != generate_problems(50, seed=2, min_steps=2, max_steps=3)
    assert {p["num_steps"] for p in a} == {2, 3}
    with pytest.raises(ValueError, match="min_steps"):
        generate_problems(3, seed=0, min_steps=3, max_steps=2)
    with pytest.raises(ValueError, match="n=-1"):
        generate_problems(-1, seed=0)


def test_solutions_are_correct_and_verified_by_the_reward():
    problems = generate_problems(200, seed=7, min_steps=1, max_steps=5)
    for p in problems:
        # replay the problem's arithmetic from its text
        start = int(re.search(r"has (\d+)", p["problem"]).group(1))
        for verb, n in re.findall(r"(gets|gives away) (\d+)", p["problem"]):
            start = start + int(n) if verb == "gets" else start - int(n)
            assert 10 <= start <= 99  # every intermediate amount stays two-digit
        assert str(start) == p["answer"]
        assert p["solution"].endswith(f"\\boxed{{{p['answer']}}}")
        assert len(re.findall(r"=", p["solution"])) == p["num_steps"]
        assert check_working(p["problem"], p["solution"]) == {
            "steps_ok": True,
            "arithmetic_ok": True,
            "faithful": True,
        }
    solutions = [p["solution"] for p in problems]
    answers = [p["answer"] for p in problems]
    assert accuracy(solutions, answer=answers) == [1.0] * 200
    assert sum(accuracy(solutions, answer=answers[1:] + answers[:1])) < 200 * 0.2


@pytest.mark.parametrize("steps", [1, 2, 3, 4, 5])
def test_answers_cannot_be_guessed(steps):
    """No answer covers more than ~2% of a level, and copying the problem's last number never works."""
    problems = generate_problems(4000, seed=steps, min_steps=steps, max_steps=steps)
    chance = chance_baselines([p["problem"] for p in problems], [p["answer"] for p in problems])
    assert chance["best_constant"] <= 0.022, chance
    assert chance["last_number"] == 0.0


def test_chance_baselines_on_hand_made_sets():
    problems = ["Ann has 3 pens and gets 4.", "Ben has 2.", "Cal has 7, then 5.", "x"]
    assert chance_baselines(problems, ["7", "2", "5", "7.0"]) == {"best_constant": 0.5, "last_number": 0.5}
    with pytest.raises(ValueError, match="3 problems but 2 answers"):
        chance_baselines(problems[:3], ["1", "2"])


def test_check_working_tells_shortcuts_from_solutions():
    problem = "Ann has 23 apples. Ann gets 5 more. Ann gives away 3. How many apples does Ann have?"
    assert parse_problem(problem) == (23, [5, -3])
    ok = {"steps_ok": True, "arithmetic_ok": True, "faithful": True}
    assert check_working(problem, "23+5=28. 28-3=25. \\boxed{25}") == ok
    # right answer, one step skipped
    assert check_working(problem, "23+2=25. \\boxed{25}") == {
        "steps_ok": False,
        "arithmetic_ok": True,
        "faithful": False,
    }
    # right number of steps, wrong arithmetic
    assert check_working(problem, "23+5=29. 29-3=25. \\boxed{25}") == {
        "steps_ok": True,
        "arithmetic_ok": False,
        "faithful": False,
    }
    # right arithmetic on the wrong amounts
    assert check_working(problem, "23+3=26. 26-5=21. \\boxed{21}")["faithful"] is False
    # equations after the boxed answer do not count; no equations is not "arithmetic ok"
    assert check_working(problem, "\\boxed{25} 23+5=28.") == {
        "steps_ok": False,
        "arithmetic_ok": False,
        "faithful": False,
    }
    assert parse_problem("What is 2+2?") is None
    assert check_working("What is 2+2?", "2+2=4. \\boxed{4}")["faithful"] is False


def test_generate_mixture_is_exact_and_seeded():
    rows = generate_mixture(101, seed=3, weights={1: 0.49, 2: 0.49, 3: 0.02})
    counts = {k: sum(r["num_steps"] == k for r in rows) for k in (1, 2, 3)}
    assert counts == {1: 50, 2: 49, 3: 2} or counts == {1: 49, 2: 50, 3: 2}
    assert sum(counts.values()) == 101
    assert rows == generate_mixture(101, seed=3, weights={1: 0.49, 2: 0.49, 3: 0.02})
    assert [r["num_steps"] for r in rows[:20]] != sorted(r["num_steps"] for r in rows[:20])  # shuffled
    with pytest.raises(ValueError, match="weights"):
        generate_mixture(10, seed=0, weights={0: 1.0})


def test_prompt_templates():
    assert build_prompt("Q?") == [{"role": "user", "content": f"Q?\n{QWEN_MATH_INSTRUCTION}"}]
    assert build_prompt("Q?", "plain", system_prompt="S") == [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "Q?"},
    ]
    assert build_prompt("Q?", "luffy")[0]["role"] == "system"
    with pytest.raises(ValueError, match="qwen_math"):
        build_prompt("Q?", "fancy")


def test_tiny_tokenizer_round_trip_and_chat_template():
    tok = build_tiny_tokenizer()
    text = "Ann has 3 pens.\n" + QWEN_MATH_INSTRUCTION + " 12+7=19. \\boxed{19}"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    assert len(tok("19", add_special_tokens=False)["input_ids"]) == 2  # digits are single tokens
    for special in ("<|im_start|>", "<|im_end|>", "<|endoftext|>"):
        assert len(tok(special, add_special_tokens=False)["input_ids"]) == 1
    msgs = [{"role": "user", "content": "hi"}]
    assert tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False) == (
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    )
    cont = tok.apply_chat_template(
        msgs + [{"role": "assistant", "content": "1+1"}], continue_final_message=True, tokenize=False
    )
    assert cont.endswith("<|im_start|>assistant\n1+1")


def test_tiny_model_round_trips_through_from_pretrained(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = ensure_tiny_model("tiny", cache_dir=tmp_path)
    assert path == preset_dir("tiny", tmp_path)
    mtime = (path / "model.safetensors").stat().st_mtime_ns
    assert ensure_tiny_model("tiny", cache_dir=tmp_path) == path  # cached, not rebuilt
    assert (path / "model.safetensors").stat().st_mtime_ns == mtime
    model = AutoModelForCausalLM.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    assert type(model).__name__ == "Qwen2ForCausalLM"
    text = "Ann has 3 pens. \\boxed{3}"
    assert tok.decode(tok(text)["input_ids"]) == text
    ids = torch.tensor([tok(text)["input_ids"]])
    again = AutoModelForCausalLM.from_pretrained(path)
    assert torch.equal(model(ids).logits, again(ids).logits)
    assert not list(tmp_path.glob("models/.tiny-*"))  # no half-built folder left behind
    with pytest.raises(ValueError, match="tiny-warm"):
        ensure_tiny_model("huge", cache_dir=tmp_path)


def test_shipped_testbed_model_matches_its_profile():
    """builtin:tiny-warm is the shipped file of PROFILE.json and still has the recorded skill profile."""
    import json

    from fakes import greedy_accuracy_by_level

    from prefix_rft.models.tiny import SHIPPED_DIR
    from prefix_rft.testbed_model import weights_sha256

    recorded = json.loads((SHIPPED_DIR / "PROFILE.json").read_text())
    path = ensure_tiny_model("tiny-warm")
    assert path == SHIPPED_DIR
    assert weights_sha256(path) == recorded["sha256"]
    results = greedy_accuracy_by_level(path, recorded)
    assert results[4]["process/faithful"] == 0.0  # out of reach: it never writes the 4-step chain
