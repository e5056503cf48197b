"""The model section of the typed config: every bad value is named with its allowed values."""

import pytest
import torch

from emorl.config import ConfigError, ExperimentConfig, ModelConfig, TrainingConfig
from emorl.model import EMORL


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("prior", "top_down", "'reversed_plusplus', 'reversed', 'bottom_up'"),
        ("decoder", "huge", "'iodine', 'big', 'small'"),
        ("likelihood", "laplace", "'gmm', 'gaussian'"),
        ("loss_weights", "mine", "'code', 'paper'"),
    ],
)
def test_bad_choice_names_key_value_and_allowed_values(key, value, allowed):
    with pytest.raises(ConfigError) as error:
        ExperimentConfig.from_dict({"model": {key: value}})
    message = str(error.value)
    assert f"model.{key}={value!r}" in message and allowed in message


@pytest.mark.parametrize(
    ("key", "value"), [("K", 0), ("z_size", 0), ("stochastic_layers", -1)]
)
def test_counts_below_their_minimum_are_rejected(key, value):
    with pytest.raises(ConfigError, match=rf"model\.{key}={value}"):
        ExperimentConfig.from_dict({"model": {key: value}})


def test_big_decoder_needs_96_pixel_images():
    problems = ModelConfig(decoder="big", input_size=(3, 64, 64)).problems()
    assert any("decoder='big'" in problem and "96x96" in problem for problem in problems)


def test_zero_layers_and_zero_refinement_steps_are_valid():
    assert ModelConfig(stochastic_layers=0).problems() == []
    assert TrainingConfig(refinement_curriculum=((-1, 0),)).problems() == []


def test_the_model_refuses_an_invalid_config():
    with pytest.raises(ConfigError, match=r"model\.likelihood"):
        EMORL(ModelConfig(likelihood="laplace"))


def test_the_model_refuses_images_of_the_wrong_size():
    model = EMORL(ModelConfig(K=2, z_size=4, decoder="small", input_size=(3, 16, 16)))
    with pytest.raises(ValueError, match=r"expects images \[B, 3, 16, 16\].*got \[2, 3, 8, 8\]"):
        model(torch.zeros(2, 3, 8, 8), refinement_steps=0)
