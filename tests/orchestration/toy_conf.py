"""A small Hydra tree shaped like experiments/conf (primary config, dataset group, the real launchers),
for testing grid mechanics without depending on the values of the shipped training configs."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

from orchestration.compose import CONF_DIR

PRIMARY = """
defaults:
  - dataset: tetrominoes
  - launcher: local
  - _self_
output_root: {root}
debug: false
grid: {{name: toy}}
tracking: {{kind: local, uri: "sqlite:///${{output_root}}/mlflow.db", experiment: emorl}}
model: {{prior: reversed_plusplus, dual_gru: true, stochastic_layers: 3}}
data: {{root: {root}/data, num_workers: 0}}
training: {{seed: 1, iters: 10, batch_size: 8, log_every: 5, refinement_curriculum: [[-1, 1]]}}
geco: {{enabled: true}}
eval: {{num_images: 8}}
"""

DATASETS = {
    "tetrominoes": "data: {name: tetrominoes}\nmodel: {K: 4, input_size: [3, 35, 35], decoder: small}\n",
    "multi_dsprites": "data: {name: multi_dsprites}\nmodel: {K: 6, input_size: [3, 64, 64]}\n",
}


def write_toy_conf(directory: Path, root: Path) -> Path:
    """Write the toy tree under ``directory`` (outputs under ``root``); returns the conf dir."""
    conf = directory / "conf"
    (conf / "dataset").mkdir(parents=True)
    shutil.copytree(CONF_DIR / "launcher", conf / "launcher")
    (conf / "toy.yaml").write_text(textwrap.dedent(PRIMARY.format(root=root)))
    for name, body in DATASETS.items():
        (conf / "dataset" / f"{name}.yaml").write_text("# @package _global_\n" + body)
    return conf
