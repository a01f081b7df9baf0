"""The decision-token probe (benchmarks/decision_tokens.py): its columns on hand-made inputs, equal to what the
package's own mask and scheduler give, and its --quick run on the shipped testbed model."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import decision_tokens as dt  # noqa: E402
from prefix_rft.losses import prefix_update_mask  # noqa: E402
from prefix_rft.prefix.sampling import prefix_length  # noqa: E402
from prefix_rft.prefix.schedulers import build_scheduler, step_generator  # noqa: E402

ENTROPIES = [0.1, 0.5, 0.3, 0.9, 0.2, 0.05, 0.4, 0.6, 0.7, 0.8]


def test_entropy_ranks_exact():
    assert dt.entropy_ranks(ENTROPIES) == [9, 5, 7, 1, 8, 10, 6, 4, 3, 2]
    assert dt.entropy_ranks([0.2, 0.2, 0.1]) == [1, 2, 3]  # ties: earlier first


def test_kept_by_prefix_is_the_package_mask():
    # Whole demonstration covered: ceil(0.2 * 10) = 2 kept, the two highest entropies (0.9 and 0.8).
    assert [i for i, k in enumerate(dt.kept_by_prefix(ENTROPIES, 10)) if k] == [3, 9]
    # A 5-token prefix: the threshold is over those 5 only, ceil(0.2 * 5) = 1 kept, and nothing past the prefix.
    assert [i for i, k in enumerate(dt.kept_by_prefix(ENTROPIES, 5)) if k] == [3]
    # A 3-token prefix: 0.5 is its top token although it is not in the demonstration's top 20%.
    assert [i for i, k in enumerate(dt.kept_by_prefix(ENTROPIES, 3)) if k] == [1]
    for length in range(1, 11):
        pm = torch.zeros(1, 10, dtype=torch.bool)
        pm[0, :length] = True
        expected = prefix_update_mask(
            pm, torch.ones(1, 10, dtype=torch.bool), torch.tensor([ENTROPIES]), "entropy_top"
        )
        assert dt.kept_by_prefix(ENTROPIES, length) == expected[0].tolist()


def test_coverage_and_keep_exact_shares():
    share, kept_share, full = dt.coverage_and_keep(ENTROPIES, [3, 5, 10, 10])
    assert share[:3] == [1.0, 1.0, 1.0] and share[3:5] == [0.75, 0.75] and share[5:] == [0.5] * 5
    # Token 1 (0.5) is kept under the 3-token prefix only; token 3 (0.9) under all three that cover it.
    assert kept_share[1] == 0.25 and kept_share[3] == 1.0 and kept_share[9] == 1.0 and kept_share[0] == 0.0
    # The longest allowed prefix leaves the last token out: 9 candidates, ceil(1.8) = 2 kept (0.9 and 0.7).
    assert [i for i, k in enumerate(full) if k] == [3, 8]
    share, kept_share, _ = dt.coverage_and_keep(ENTROPIES, [2])
    assert share[5] == 0.0 and math.isnan(kept_share[5])


def test_prefix_length_draws_follow_the_scheduler():
    constant = build_scheduler("constant", value=0.5)
    assert dt.prefix_length_draws(40, constant, steps=3, draws_per_step=2) == [20] * 6
    assert dt.prefix_length_draws(40, constant, 1, 1, budget=11) == [10]  # the trainer's budget clamp
    cosine = build_scheduler("cosine", decay_steps=4)
    lengths = dt.prefix_length_draws(40, cosine, steps=4, draws_per_step=3, seed=7)
    expected = [
        prefix_length(r, 40)
        for step in range(4)
        for r in cosine.sample(step, 3, generator=step_generator(7, step))
    ]
    assert lengths == expected and lengths[0] >= 38  # step 0: ratios near 0.95


def test_decision_positions_on_a_synthetic_solution(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    solution = "35+4=39. 39-2=37. \\boxed{37}"
    # Byte tokens: a token index is a character index.
    assert dt.decision_positions(tok, solution) == {"eq1": 0, "eq2": 9, "boxed": 18}


def test_token_statistics_match_a_plain_forward(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    prompt = [{"role": "user", "content": "Ann has 12 pens."}]
    demo = tok(text="12+1=13.", add_special_tokens=False)["input_ids"]
    (s,) = dt.token_statistics(model, tok, [prompt], [demo])
    text = tok.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
    ids = tok(text=text, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids + demo])).logits[0]
    probs = torch.softmax(logits[len(ids) - 1 + 4], dim=-1)  # predicts demo[4], the "="
    assert s["p_demo"][4] == pytest.approx(probs[demo[4]].item(), rel=1e-5)
    assert s["p_top"][4] == pytest.approx(probs.max().item(), rel=1e-5)
    assert s["entropy"][4] == pytest.approx(-(probs * probs.log()).sum().item(), rel=1e-4)
    digits = [tok.convert_tokens_to_ids(str(d)) for d in range(10)]
    assert s["p_digit"][0] == pytest.approx(
        torch.softmax(logits[len(ids) - 1], -1)[digits].sum().item(), rel=1e-5
    )


def test_quick_probe_on_tiny_warm_finds_the_confident_error(tmp_path, model_cache):
    """The shipped testbed model at level 4: the fork token (first token of the 4th equation) has p(demo) < 0.01,
    the model's top token there is not the demonstration's, and entropy_top keeps it in none of the problems."""
    from tests.test_benchmarks import run_script

    out = tmp_path / "probe"
    proc = run_script("decision_tokens", ["--quick", "--problems", "12", "--out", str(out)], model_cache)
    data = json.loads((out / "decision_tokens.json").read_text())
    (result,) = data["results"]
    assert result["model"] == "builtin:tiny-warm" and result["level"] == 4 and result["fork"] == "eq4"
    assert list(result["summary"]) == ["eq1", "eq2", "eq3", "eq4", "boxed"]
    fork = result["summary"]["eq4"]
    assert fork["mean_p_demo"] < 0.01 and fork["top_is_demo"] == 0.0 and fork["mean_p_top"] > 0.9
    assert fork["kept_full_prefix"] == 0.0 and fork["in_top_fraction"] == 0.0
    assert 0.0 < fork["covered_share"] < 1.0  # the scheduler's prefixes sometimes reach the fork
    (rows,) = json.loads((out / "decision_tokens_per_problem.json").read_text())
    assert rows["model"] == "builtin:tiny-warm" and "per_problem" not in result
    per = rows["per_problem"]["eq4"]
    assert len(per["p_demo"]) == 12 and all(1 <= r for r in per["rank"])
    assert "eq4 (fork)" in proc.stdout and str(out) in proc.stdout
