"""Every shipped config of the train tree composes into a valid ExperimentConfig, and trains a step.

Other entry points (grid, launcher, eval) extend ``PRIMARY`` / ``GROUPS`` with their own configs.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from emorl.config import ExperimentConfig
from emorl.train import train

CONF_DIR = Path(__file__).resolve().parent.parent / "experiments" / "conf"
GROUPS = ("dataset", "tracking", "debug")


def options(group: str) -> list[str]:
    return sorted(path.stem for path in (CONF_DIR / group).glob("*.yaml"))


def resolve(config_name: str, overrides: list[str]) -> dict:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        cfg = compose(config_name, overrides=overrides)
    cfg.output_root = "/tmp/emorl-outputs"
    return OmegaConf.to_container(cfg, resolve=True)


COMBINATIONS = [
    [f"{group}={choice}" for group, choice in zip(GROUPS, choices, strict=True)]
    for choices in itertools.product(*(options(group) for group in GROUPS))
]


@pytest.mark.parametrize("overrides", COMBINATIONS, ids=",".join)
def test_train_config_composes_and_validates(overrides: list[str]):
    resolved = resolve("train", overrides)
    config = ExperimentConfig.from_dict(resolved)
    assert resolved["tracking"]["uri"]
    assert config.data.name in overrides[0]


@pytest.mark.parametrize(
    ("dataset", "size", "slots", "steps", "iters"),
    [
        ("tetrominoes", 35, 4, [[-1, 3], [200000, 3]], 200000),
        ("multi_dsprites", 64, 6, [[-1, 3], [100000, 1], [200000, 1]], 300000),
        ("clevr6", 96, 7, [[-1, 3], [100000, 1], [200000, 1]], 300000),
    ],
)
def test_dataset_presets_carry_the_paper_values(dataset, size, slots, steps, iters):
    config = ExperimentConfig.from_dict(resolve("train", [f"dataset={dataset}"]))
    assert config.model.input_size == (3, size, size)
    assert slots == config.model.K
    assert [list(entry) for entry in config.training.refinement_curriculum] == steps
    assert config.training.iters == iters
    assert config.training.batch_size == 32 and config.training.lr == 4e-4
    assert config.geco.enabled == (dataset != "multi_dsprites")


def test_debug_preset_is_toy_sized_and_generates_data():
    config = ExperimentConfig.from_dict(resolve("train", ["debug=toy"]))
    assert config.training.iters <= 50 and config.training.batch_size <= 8
    assert config.data.generate_if_missing


@pytest.mark.parametrize("dataset", options("dataset"))
def test_each_dataset_config_trains_a_step(dataset: str, all_dataset_roots, tmp_path: Path):
    resolved = resolve(
        "train",
        [
            f"dataset={dataset}",
            "debug=toy",
            f"data.root={all_dataset_roots[dataset]}",
            "training.iters=1",
            "training.batch_size=2",
            "training.device=cpu",
            f"training.output_dir={tmp_path}",
        ],
    )
    result = train(ExperimentConfig.from_dict(resolved), progress=False)
    assert result.final_step == 1 and result.checkpoint_path.is_file()


def test_the_typed_defaults_are_the_trees_code_defaults():
    """Without a dataset preset the tree holds the code defaults: the dataclasses' defaults are the same
    values (output folders aside, which the tree derives from output_root, the dataset and the seed)."""
    tree = resolve("train", ["~dataset"])
    defaults = ExperimentConfig().to_dict()
    for section, values in defaults.items():
        derived = {"output_dir"}
        assert {k: v for k, v in tree[section].items() if k not in derived} == {
            k: v for k, v in values.items() if k not in derived
        }, section
