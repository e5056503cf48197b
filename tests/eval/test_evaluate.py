"""Every evaluation type on a tiny random EMORL for each generated dataset (docs/evaluation.md)."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pandas as pd
import pytest
import torch

from emorl.eval import EVAL_TYPES, evaluate
from emorl.eval.disentanglement import activeness, latent_ranges
from emorl.logging import ConsoleLogger
from emorl.pictures import GAP, LABEL_WIDTH
from emorl.train.checkpoint import LoadedRun


def test_ari_mse_kl_keeps_per_image_values(tiny_run: LoadedRun, tmp_path: Path):
    results = evaluate(tiny_run, "ari_mse_kl", tiny_run.config, tmp_path)
    assert json.loads((tmp_path / "results.json").read_text()) == results
    table = pd.read_csv(tmp_path / results["per_image"], index_col="image")
    assert len(table) == 8
    for name in ("fg_ari", "ari", "mbo", "mbo_hungarian", "mse", "kl", "elbo_kl"):
        assert results[name]["n"] == table[name].notna().sum()
        assert results[name]["mean"] == pytest.approx(table[name].mean())
    assert table["fg_ari"].between(-1, 1).all() and (table["mse"] >= 0).all() and (table["kl"] >= 0).all()


def test_ari_mse_kl_draws_eight_test_images_with_their_true_segmentation(tiny_run: LoadedRun, tmp_path: Path):
    evaluate(tiny_run, "ari_mse_kl", tiny_run.config, tmp_path)
    picture = iio.imread(tmp_path / "examples.png")
    size = tiny_run.config.model.input_size[1]
    side = size * -(-96 // size)
    rows = 4 + tiny_run.config.model.K  # input, reconstruction, segmentation, ground truth, slots
    assert picture.shape == (GAP + rows * (side + GAP), LABEL_WIDTH + GAP + 8 * (side + GAP), 3)


def test_ari_mse_kl_sends_means_to_the_logger(tiny_run: LoadedRun, tmp_path: Path):
    stream = io.StringIO()
    evaluate(tiny_run, "ari_mse_kl", tiny_run.config, tmp_path, logger=ConsoleLogger(stream))
    line = stream.getvalue()
    assert f"step {tiny_run.step}:" in line and "eval/fg_ari=" in line and "eval/mse_std=" in line


@pytest.mark.filterwarnings("ignore:DCI left out")  # an untrained model's slots may match no object
def test_disentanglement_writes_fresh_ranges_activeness_and_dci(tiny_run: LoadedRun, tmp_path: Path):
    (tmp_path / "z_range.npy").write_bytes(b"stale")
    results = evaluate(tiny_run, "disentanglement", tiny_run.config, tmp_path)
    dims = tiny_run.config.model.z_size
    assert np.load(tmp_path / "z_range.npy").shape == (dims, 2)
    assert np.load(tmp_path / "activeness.npy").shape == (3, dims)
    assert results["activeness"]["n"] == 3
    for name in ("dci_disentanglement", "dci_completeness", "dci_informativeness_test"):
        assert results[name]["mean"] is None or 0 <= results[name]["mean"] <= 1
    inputs = np.load(tmp_path / "dci_inputs.npz")
    assert results["dci_disentanglement"]["n"] == len(inputs["codes"]) == inputs["objects_per_image"].sum()
    assert np.load(tmp_path / "traversals" / "slot_0.npy").shape == (
        dims,
        3,
        3,
        *tiny_run.config.model.input_size[1:],
    )
    assert (tmp_path / "traversals" / "slot_0.png").stat().st_size > 0


def test_gifs_exist_for_every_slot_and_top_latent_with_one_frame_per_step(
    tiny_run: LoadedRun, tmp_path: Path
):
    evaluate(tiny_run, "gifs", tiny_run.config, tmp_path)
    gifs = sorted((tmp_path / "gifs").glob("*.gif"))
    assert len(gifs) == tiny_run.config.model.K * tiny_run.config.eval.gif_top_k
    for gif in gifs:
        assert iio.imread(gif, index=None).shape[0] == tiny_run.config.eval.traversal_steps


def test_figures_write_a_png_and_rinfo_arrays_per_image(tiny_run: LoadedRun, tmp_path: Path):
    cfg = dataclasses.replace(tiny_run.config, eval=dataclasses.replace(tiny_run.config.eval, num_images=3))
    evaluate(tiny_run, "figures", cfg, tmp_path)
    assert len(list((tmp_path / "figures").glob("sample_*.png"))) == 3
    assert len(list((tmp_path / "rinfo").glob("rinfo_*.npz"))) == 3
    rinfo = np.load(tmp_path / "rinfo" / "rinfo_0.npz")
    model = tiny_run.config.model
    stages = model.stochastic_layers + tiny_run.config.eval.refinement_steps
    size = model.input_size[1]
    assert rinfo["outputs/pred_mask"].shape == (1, stages, model.K, size, size, 1)
    assert rinfo["outputs/components"].shape == (1, stages, model.K, size, size, 3)
    assert rinfo["outputs/recons"].shape == (1, stages, size, size, 3)
    assert rinfo["data/image"].shape == (1, size, size, 3)


def test_unknown_eval_type_is_refused(tiny_run: LoadedRun, tmp_path: Path):
    with pytest.raises(ValueError, match="known: " + ", ".join(EVAL_TYPES)):
        evaluate(tiny_run, "ari", tiny_run.config, tmp_path)


def test_activeness_is_zero_for_a_latent_the_emorl_decoder_ignores(tiny_run: LoadedRun):
    decoder = tiny_run.model.decoder
    with torch.no_grad():
        decoder.layers[0].weight[:, 1] = 0  # the first convolution no longer reads z_1
    z = torch.randn(2, tiny_run.config.model.K, tiny_run.config.model.z_size)
    scores = activeness(decoder, z, torch.tensor([0, 2]), latent_ranges(z), batch_size=8)
    assert np.all(scores[:, 1] == 0)
    assert np.all(scores[:, 0] > 0)
