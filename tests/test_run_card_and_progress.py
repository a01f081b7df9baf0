"""What a run folder and the console show around training, through ``prefix-rft-train`` in this process:
the model card names the base model (never "[None](https://huggingface.co/None)"), and the held-out
evaluations before and after training print progress lines as the training steps do."""

from __future__ import annotations

import re

from prefix_rft.models.model_card import model_card_text


def test_model_card_text_links_only_hub_ids():
    hub = model_card_text("Qwen/Qwen2.5-Math-7B", "prefix_rft", "rl", is_hub_id=True)
    assert "Base model: [Qwen/Qwen2.5-Math-7B](https://huggingface.co/Qwen/Qwen2.5-Math-7B)." in hub
    local = model_card_text("builtin:tiny-warm", "rft", "rl", is_hub_id=False)
    assert "Base model: `builtin:tiny-warm`." in local and "huggingface.co" not in local
    assert "`rl` stage of algorithm `rft`" in local


def test_card_and_heldout_progress_through_a_real_run(train_cli, model_cache, tmp_path):
    run = tmp_path / "run"
    code, out, err = train_cli(
        "model.name_or_path=builtin:tiny-warm",
        "trainer.max_steps=1",
        "trainer.save_steps=1",
        "trainer.per_device_train_batch_size=8",
        "trainer.num_generations=4",
        "trainer.max_completion_length=16",
        "data.synthetic.num_train=16",
        "data.synthetic.num_eval=6",
        "heldout_eval.samples=1",
        "heldout_eval.greedy=true",
        "heldout_eval.batch_size=4",
        "heldout_eval.max_new_tokens=16",
        f"hydra.run.dir={run}",
    )
    assert code == 0, err
    for card in (run / "README.md", run / "checkpoint-1" / "README.md"):
        if card.exists():
            text = card.read_text()
            assert "None" not in text and "Base model: `builtin:tiny-warm`." in text, text
    assert (run / "README.md").is_file()
    log = (run / "train.log").read_text()
    lines = [line.split(" - ", 1)[1] for line in log.splitlines() if "[prefix_rft.progress]" in line]
    progress = [line for line in lines if line.startswith("held-out ")]
    # Per side: a start line, then one line per batch of 4 problems: 2 sampled + 2 greedy.
    for side in ("before training", "after training"):
        mine = [re.sub(r"\(\d+ s\)", "(S)", line) for line in progress if line.startswith(f"held-out {side}")]
        assert mine == [
            f"held-out {side}: evaluating 6 problems (1 samples each + greedy)",
            f"held-out {side}: sampled 4/6 problems (S)",
            f"held-out {side}: sampled 6/6 problems (S)",
            f"held-out {side}: greedy 4/6 problems (S)",
            f"held-out {side}: greedy 6/6 problems (S)",
        ]
    # The "before" lines come before step 1, the "after" lines after "done".
    order = [
        next(i for i, line in enumerate(lines) if line.startswith(p))
        for p in (
            "held-out before training: evaluating",
            "step 1/1",
            "done:",
            "held-out after training: evaluating",
        )
    ]
    assert order == sorted(order)
