"""The registry entry says what a run of the algorithm shows; the tests that list algorithms read it."""

from __future__ import annotations

import pytest

from prefix_rft.algorithms import ALGORITHMS, register_algorithm, unregister_algorithm
from prefix_rft.cost.estimate import TOKEN_KINDS


def test_what_an_entry_trains_defaults_to_its_stages():
    try:
        assert register_algorithm("tmp_rl").trains == ("on_policy",)
        assert register_algorithm("tmp_sft", trainer=None, stages=("sft",)).trains == ("sft",)
        staged = register_algorithm("tmp_staged", stages=("sft", "rl"), metrics=["a/b"])
        assert staged.trains == ("sft", "on_policy") and staged.metrics == ("a/b",)
        assert staged.demonstrations_per_group == 0 and staged.hybrids_per_group == 0
    finally:
        for name in ("tmp_rl", "tmp_sft", "tmp_staged"):
            unregister_algorithm(name)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"trains": ("on_policy", "demos")},
            r"algorithm tmp: trains \('on_policy', 'demos'\) / \(\) must be kinds",
        ),
        ({"trains_some": ("sfts",)}, "must be kinds of"),
        ({"hybrids_per_group": "half"}, "hybrids_per_group must be a number or 'all'"),
    ],
)
def test_a_wrong_description_is_refused_at_registration(kwargs, message):
    with pytest.raises(ValueError, match=message):
        register_algorithm("tmp", **kwargs)
    assert "tmp" not in ALGORITHMS


def test_the_built_in_entries_describe_their_runs():
    for entry in ALGORITHMS.values():
        assert set(entry.trains).isdisjoint(entry.trains_some), entry.name
        assert set(entry.trains) | set(entry.trains_some) <= set(TOKEN_KINDS)
        # An algorithm with a trainer of its own logs something of its own (the sweep test checks it).
        if entry.trainer is not None and entry.trainer.__module__.startswith("prefix_rft."):
            assert entry.metrics, f"{entry.name}: no metrics on its registry entry"
    assert ALGORITHMS["prefix_rft"].trains == ("on_policy", "prefix")
    assert ALGORITHMS["luffy"].demonstrations_per_group == 1
