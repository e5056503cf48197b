"""Run identity, declared once on the config fields: what changes a run_key, what a resume may change."""

from __future__ import annotations

import dataclasses

import pytest

from emorl.config import ExperimentConfig
from emorl.identity import identity_key
from emorl.train.checkpoint import config_drift


def changed(section: str, **values) -> ExperimentConfig:
    config = ExperimentConfig()
    return dataclasses.replace(config, **{section: dataclasses.replace(getattr(config, section), **values)})


@pytest.mark.parametrize(
    ("section", "values"),
    [
        ("training", {"device": "cpu", "compile": True, "channels_last": True, "log_every": 1}),
        ("data", {"num_workers": 0, "root": "/elsewhere", "in_memory": True}),
        ("eval", {"output_dir": "/elsewhere"}),
    ],
)
def test_operational_keys_change_neither_the_run_key_nor_a_resume(section, values):
    base, other = ExperimentConfig(), changed(section, **values)
    assert identity_key(other) == identity_key(base)
    assert config_drift(base.to_dict(), other.to_dict()) == []


@pytest.mark.parametrize(
    ("section", "values"), [("training", {"iters": 10}), ("eval", {"num_images": 5, "refinement_steps": 1})]
)
def test_resumable_keys_change_the_run_key_but_may_change_on_resume(section, values):
    base, other = ExperimentConfig(), changed(section, **values)
    assert identity_key(other) != identity_key(base)
    assert config_drift(base.to_dict(), other.to_dict()) == []


def test_result_keys_change_the_run_key_and_refuse_a_resume():
    base, other = ExperimentConfig(), changed("training", lr=1e-3)
    assert identity_key(other) != identity_key(base)
    assert config_drift(base.to_dict(), other.to_dict()) == ["training.lr: 0.0004 -> 0.001"]


def test_the_seed_changes_the_run_key_but_not_the_cell_key():
    base, other = ExperimentConfig(), changed("training", seed=7)
    assert identity_key(other) != identity_key(base)
    assert identity_key(other, with_seed=False) == identity_key(base, with_seed=False)


def test_a_key_added_later_keeps_earlier_identities_at_its_neutral_value_and_counts_away_from_it():
    import hashlib

    from emorl.config import flatten_config
    from emorl.identity import IDENTITY_KEYS, NEUTRAL_VALUES, canonical_json

    assert NEUTRAL_VALUES["model.decoder_init_gain"] is None
    base = ExperimentConfig()
    before = {  # the identity as it was computed before the key existed
        key: value
        for key, value in flatten_config(base.to_dict()).items()
        if key in IDENTITY_KEYS and key not in NEUTRAL_VALUES
    }
    assert identity_key(base) == hashlib.sha256(canonical_json(before).encode()).hexdigest()[:16]
    other = changed("model", decoder_init_gain=0.5)
    assert identity_key(other) != identity_key(base)
    assert config_drift(base.to_dict(), other.to_dict()) == ["model.decoder_init_gain: None -> 0.5"]
    old_checkpoint = base.to_dict()
    del old_checkpoint["model"]["decoder_init_gain"]  # saved before the key existed: resumes as before
    assert config_drift(old_checkpoint, base.to_dict()) == []
