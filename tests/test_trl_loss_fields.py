"""TRL loss settings that PrefixRFTTrainer's own loss would ignore are refused at start-up, naming the field
(prefix_rft/trainers/trl_loss_fields.py); TRL's trainer (algorithm=rft) keeps them."""

from __future__ import annotations

import dataclasses

import pytest
from trl import GRPOConfig

from prefix_rft.config.compose import compose_config
from prefix_rft.config.validate import ConfigError, validate_train_config
from prefix_rft.trainers.trl_loss_fields import REFUSED_LOSS_FIELDS, refuse_unhonoured_loss_fields

WHO = "DrGRPOTrainer (and every trainer built on it)"


def cfg_with(*overrides: str):
    return compose_config(["output_dir=/tmp/prefix-rft-test", *overrides])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "trainer.top_entropy_quantile=0.2",
            f"trainer.top_entropy_quantile=0.2 is not supported by {WHO}, whose loss replaces TRL's: a loss "
            "restricted to the highest-entropy tokens would be silently ignored; leave it at 1.0",
        ),
        (
            "trainer.delta=4.0",
            f"trainer.delta=4.0 is not supported by {WHO}, whose loss replaces TRL's: two-sided clipping of "
            "the importance ratio would be silently ignored; leave it at None",
        ),
        (
            "trainer.beta=0.04",
            f"trainer.beta=0.04 is not supported by {WHO}, whose loss replaces TRL's: a KL term against a "
            "reference model would be silently ignored; leave it at 0.0",
        ),
        (
            "trainer.importance_sampling_level=sequence",
            f"trainer.importance_sampling_level='sequence' is not supported by {WHO}, whose loss replaces "
            "TRL's: sequence-level importance ratios would be silently ignored; leave it at 'token'",
        ),
        (
            "trainer.use_adaptive_entropy=true",
            f"trainer.use_adaptive_entropy=True is not supported by {WHO}, whose loss replaces TRL's: an "
            "entropy coefficient adapted each step would be silently ignored; leave it at False",
        ),
        (
            "trainer.router_aux_loss_coef=0.01",
            f"trainer.router_aux_loss_coef=0.01 is not supported by {WHO}, whose loss replaces TRL's: a "
            "mixture-of-experts load-balancing loss would be silently ignored; leave it at None",
        ),
    ],
)
def test_an_ignored_trl_loss_field_is_refused_at_start_up_with_its_name(override, message):
    for algorithm in ("prefix_rft", "chord"):  # the check belongs to every trainer built on DrGRPOTrainer
        with pytest.raises(ConfigError) as err:
            validate_train_config(cfg_with(f"algorithm={algorithm}", override))
        assert str(err.value) == message


def test_values_the_replaced_loss_behaves_as_are_accepted():
    validate_train_config(cfg_with("trainer.top_entropy_quantile=1.0", "trainer.router_aux_loss_coef=0.0"))
    validate_train_config(cfg_with("trainer.entropy_coef=0.001"))  # honoured: the static entropy bonus


def test_trl_s_own_trainer_keeps_the_fields():
    validate_train_config(cfg_with("algorithm=rft", "trainer.top_entropy_quantile=0.2", "trainer.delta=4.0"))


def test_trl_s_defaults_pass_and_are_the_suggested_values(tmp_path):
    args = GRPOConfig(output_dir=str(tmp_path), report_to="none", use_cpu=True, bf16=False)
    refuse_unhonoured_loss_fields(args, "T")  # a GRPOConfig as the trainer checks it
    defaults = {f.name: f.default for f in dataclasses.fields(GRPOConfig)}
    assert {name: accepted[0] for name, (_, accepted) in REFUSED_LOSS_FIELDS.items()} == {
        name: defaults[name] for name in REFUSED_LOSS_FIELDS
    }
    args.vespo_k_pos = 5.0
    with pytest.raises(ConfigError, match=r"^trainer\.vespo_k_pos=5\.0 is not supported by T, "):
        refuse_unhonoured_loss_fields(args, "T")


def test_the_command_refuses_it_in_one_line(train_cli, tmp_path):
    code, _, err = train_cli("trainer.top_entropy_quantile=0.2", f"hydra.run.dir={tmp_path / 'run'}")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and "Traceback" not in err
    assert lines[-1] == (
        "prefix-rft-train: config error: trainer.top_entropy_quantile=0.2 is not supported by "
        f"{WHO}, whose loss replaces TRL's: a loss restricted to the highest-entropy tokens would be "
        "silently ignored; leave it at 1.0"
    )
    assert not (tmp_path / "run" / "model.safetensors").exists()
