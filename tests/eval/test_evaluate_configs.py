"""Every option of the shipped ``eval`` group composes with ``evaluate.yaml`` into a valid config."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from emorl.eval import EVAL_TYPES
from tests.eval.conftest import tiny_config

CONF_DIR = Path(__file__).resolve().parents[2] / "experiments" / "conf"
sys.path.insert(0, str(CONF_DIR.parent))
from evaluate import evaluation_config  # noqa: E402


def options(group: str) -> list[str]:
    return sorted(path.stem for path in (CONF_DIR / group).glob("*.yaml"))


def test_the_eval_group_offers_exactly_the_eval_types():
    assert sorted(EVAL_TYPES) == options("eval")


@pytest.mark.parametrize(("eval_type", "tracking"), itertools.product(options("eval"), options("tracking")))
def test_evaluate_config_composes_for_every_eval_type(eval_type: str, tracking: str, tmp_path: Path):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        cfg = compose("evaluate", overrides=[f"eval={eval_type}", f"tracking={tracking}", "checkpoint=x.pt"])
    cfg.output_root = str(tmp_path)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["eval_type"] == eval_type and resolved["tracking"]["uri"]
    saved = tiny_config("tetrominoes", tmp_path / "data", tmp_path / "run")
    config = evaluation_config(saved, resolved)
    assert config.model == saved.model
    assert config.eval.num_images == (10 if eval_type == "figures" else saved.eval.num_images)
