"""Grid expansion: product/zip/named axes × seeds, run and cell keys, whole-grid validation."""

from __future__ import annotations

import pickle

import pytest
import yaml
from omegaconf import OmegaConf

from emorl.config import ConfigError
from orchestration.compose import CONF_DIR, Composer, resolve
from orchestration.grid import GridError, expand_grid
from orchestration.run_spec import RunSpec
from tests.orchestration.toy_conf import write_toy_conf


@pytest.fixture
def composer(tmp_path) -> Composer:
    return Composer("toy", conf_dir=write_toy_conf(tmp_path, tmp_path / "out"))


def toy_grid(**changes) -> dict:
    grid = {
        "name": "toy",
        "axes": [{"product": {"model.prior": ["reversed_plusplus", "bottom_up"]}}],
        "seeds": [1, 2],
    }
    grid.update(changes)
    return grid


def test_product_axes_times_seeds_give_every_combination(composer):
    grid = toy_grid(
        axes=[{"product": {"model.prior": ["reversed", "bottom_up"], "geco.enabled": [True, False]}}]
    )
    specs = expand_grid(grid, composer)
    combos = {(s.config.model.prior, s.config.geco.enabled, s.seed) for s in specs}
    assert len(specs) == 8 and len(combos) == 8


def test_zip_axes_move_together(composer):
    grid = toy_grid(
        axes=[
            {
                "zip": {
                    "training.refinement_curriculum": [[[-1, 0]], [[-1, 3]]],
                    "eval.refinement_steps": [0, 3],
                }
            }
        ]
    )
    specs = expand_grid(grid, composer)
    pairs = {(s.config.eval.refinement_steps, s.config.training.refinement_curriculum[0][1]) for s in specs}
    assert pairs == {(0, 0), (3, 3)}


def test_named_axis_values_override_any_keys_including_config_groups(composer):
    grid = toy_grid(
        axes=[
            {
                "product": {
                    "variant": {
                        "full": {},
                        "no_geco": {"geco.enabled": False},
                        "sprites": {"dataset": "multi_dsprites"},
                    }
                }
            }
        ]
    )
    by_label = {s.labels["variant"]: s.config for s in expand_grid(grid, composer) if s.seed == 1}
    assert by_label["no_geco"].geco.enabled is False
    assert by_label["full"].geco.enabled is True
    assert by_label["sprites"].data.name == "multi_dsprites"
    assert by_label["sprites"].model.K == 6


def test_run_names_are_short_and_the_cell_is_given_as_params(composer):
    grid = toy_grid(
        axes=[{"product": {"variant": {"bottom_up": {"model.prior": "bottom_up"}}, "model.K": [4]}}]
    )
    spec = expand_grid(grid, composer)[0]
    assert spec.name == "bottom_up · 4 · seed 1"
    assert spec.cell_params == {
        "cell": "variant=bottom_up,model.K=4",
        "axis.variant": "bottom_up",
        "axis.model.K": "4",
    }


def test_seed_sets_training_seed_and_changes_run_key_not_cell_key(composer):
    specs = expand_grid(toy_grid(axes=[]), composer)
    assert [s.config.training.seed for s in specs] == [1, 2]
    assert specs[0].run_key != specs[1].run_key
    assert specs[0].cell_key == specs[1].cell_key


def test_run_key_is_stable_across_expansions_and_ignores_volatile_keys(composer):
    first = expand_grid(toy_grid(), composer)
    again = expand_grid(toy_grid(base={"training.log_every": 1, "data.num_workers": 3}), composer)
    assert [s.run_key for s in first] == [s.run_key for s in again]


def test_run_key_changes_with_result_relevant_keys_such_as_iters(composer):
    first = expand_grid(toy_grid(), composer)
    longer = expand_grid(toy_grid(base={"training.iters": 11}), composer)
    assert not {s.run_key for s in first} & {s.run_key for s in longer}


def test_run_spec_is_plain_picklable_data_with_output_dir_under_root_grid_run_key(composer, tmp_path):
    spec = expand_grid(toy_grid(), composer)[0]
    assert pickle.loads(pickle.dumps(spec)) == spec
    assert spec.output_dir == (tmp_path / "out" / "toy" / spec.run_key).resolve()
    assert isinstance(spec, RunSpec)
    assert spec.to_dict()["grid"]["labels"] == {"model.prior": "reversed_plusplus"}


def test_invalid_grid_lists_every_error_of_every_run_at_once(composer):
    grid = toy_grid(
        base={"training.iters": -5, "model.no_such_key": 1},
        axes=[{"product": {"model.prior": ["reversed_plusplus", "sideways"]}}],
    )
    with pytest.raises(GridError) as caught:
        expand_grid(grid, composer)
    text = "\n".join(caught.value.errors)
    assert "model.no_such_key" in text
    assert "model.prior='sideways'" in text
    # each problem once, with the runs it affects (the bad iters also in the runs that are otherwise fine)
    (prior,) = [error for error in caught.value.errors if "model.prior='sideways'" in error]
    assert prior.endswith("(2 runs: [model.prior=sideways,seed=1], [model.prior=sideways,seed=2])")
    (iters,) = [error for error in caught.value.errors if "training.iters" in error]
    assert iters.endswith(
        "(4 runs: [model.prior=reversed_plusplus,seed=1], [model.prior=reversed_plusplus,seed=2], "
        "[model.prior=sideways,seed=1] and 1 more)"
    )


def test_structural_errors_are_collected_together(composer):
    grid = toy_grid(axes=[{"zip": {"model.K": [3, 4], "model.z_size": [8]}}, {"chain": {}}], seeds=[])
    with pytest.raises(GridError) as caught:
        expand_grid(grid, composer)
    assert len(caught.value.errors) == 3


def test_launcher_counts_must_be_positive_integers(composer):
    grid = toy_grid(base={"launcher.array_parallelism": 0, "launcher.nodes": "two"})
    with pytest.raises(GridError) as caught:
        expand_grid(grid, composer)
    text = "\n".join(caught.value.errors)
    assert "launcher.array_parallelism=0 must be an integer >= 1" in text
    assert "launcher.nodes='two' must be an integer >= 1" in text


def test_global_batch_must_split_over_ranks(composer):
    with pytest.raises(GridError, match="not divisible"):
        expand_grid(toy_grid(base={"launcher.tasks_per_node": 3}), composer)


def test_identical_runs_in_a_grid_are_rejected(composer):
    grid = toy_grid(axes=[{"product": {"variant": {"a": {}, "b": {}}}}])
    with pytest.raises(GridError, match="same config"):
        expand_grid(grid, composer)


@pytest.mark.parametrize("path", sorted((CONF_DIR / "grid").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_grid_expands_and_validates(path):
    if not (CONF_DIR / "train.yaml").is_file():
        pytest.skip("experiments/conf/train.yaml (the trainer's primary config) is not there yet")
    grid = yaml.safe_load(path.read_text())
    composer = Composer("ablation_grid", [f"grid={path.stem}"])
    specs = expand_grid(grid, composer)
    assert specs and len({s.run_key for s in specs}) == len(specs)
    tree = composer.base()  # the plain-key resolver gives exactly what OmegaConf gives
    assert resolve(tree) == OmegaConf.to_container(OmegaConf.create(tree), resolve=True)


def test_interpolations_resolve_with_their_types_inside_strings_and_through_chains():
    tree = {
        "root": "/out",
        "data": {"name": "clevr6", "dir": "${root}/${data.name}"},
        "train": {"dir": "${data.dir}/train", "seed": 3, "copy": "${train.seed}", "flag": "${ok}"},
        "ok": True,
        "items": ["${data.name}", {"deep": "s${train.seed}"}],
        "env": "${oc.env:HOME}",  # a resolver: the whole tree goes to OmegaConf
    }
    expected = OmegaConf.to_container(OmegaConf.create(tree), resolve=True)
    assert resolve(tree) == expected
    del tree["env"]
    resolved = resolve(tree)
    assert resolved == OmegaConf.to_container(OmegaConf.create(tree), resolve=True)
    assert resolved["train"] == {"dir": "/out/clevr6/train", "seed": 3, "copy": 3, "flag": True}
    assert resolved["items"] == ["clevr6", {"deep": "s3"}]


def test_a_missing_key_or_a_cycle_in_an_interpolation_is_a_config_error():
    with pytest.raises(ConfigError, match=r"\$\{data.nmae\}: no such config key"):
        resolve({"data": {"name": "x"}, "dir": "${data.nmae}"})
    with pytest.raises(ConfigError, match="cycle: b -> a -> b"):
        resolve({"a": "${b}", "b": "x${a}"})


def test_the_command_line_has_the_last_word_over_base_and_axes(tmp_path):
    conf = write_toy_conf(tmp_path, tmp_path / "out")
    composer = Composer("toy", ["training.iters=3", "dataset=multi_dsprites"], conf_dir=conf)
    grid = toy_grid(base={"training.iters": 50, "dataset": "tetrominoes"})
    specs = expand_grid(grid, composer)
    assert {s.config.training.iters for s in specs} == {3}
    assert {s.config.data.name for s in specs} == {"multi_dsprites"}


def test_a_cluster_profile_file_sets_launcher_keys_and_the_grid_still_overrides_them(tmp_path):
    profile = tmp_path / "cluster.yaml"
    profile.write_text("partition: gpu\naccount: proj42\ntimeout_min: 600\n")
    conf = write_toy_conf(tmp_path, tmp_path / "out")
    composer = Composer("toy", ["launcher=slurm", f"launcher.profile={profile}"], conf_dir=conf)
    (spec, _) = expand_grid(toy_grid(axes=[], base={"launcher.timeout_min": 30}), composer)
    assert spec.launcher.partition == "gpu" and spec.launcher.account == "proj42"
    assert spec.launcher.timeout_min == 30


def test_a_profile_with_unknown_keys_is_refused_naming_them(tmp_path):
    profile = tmp_path / "cluster.yaml"
    profile.write_text("partitoin: gpu\n")
    conf = write_toy_conf(tmp_path, tmp_path / "out")
    composer = Composer("toy", ["launcher=slurm", f"launcher.profile={profile}"], conf_dir=conf)
    with pytest.raises(GridError, match="unknown keys \\['partitoin'\\]"):
        expand_grid(toy_grid(axes=[]), composer)


@pytest.mark.parametrize(
    "path", sorted((CONF_DIR.parent.parent / "slurm" / "profiles").glob("*.yaml")), ids=lambda p: p.stem
)
def test_every_shipped_cluster_profile_fits_the_launcher_keys(path, tmp_path):
    conf = write_toy_conf(tmp_path, tmp_path / "out")
    composer = Composer("toy", ["launcher=slurm", f"launcher.profile={path}"], conf_dir=conf)
    batch = {"training.batch_size": 32}
    assert expand_grid(toy_grid(axes=[], base=batch), composer)


@pytest.mark.parametrize("entry", ["ablation_grid", "status", "tables"])
@pytest.mark.parametrize("launcher", ["local", "debug", "slurm"])
def test_every_entry_point_config_composes_with_every_launcher(entry, launcher, tmp_path):
    if not (CONF_DIR / "train.yaml").is_file():
        pytest.skip("experiments/conf/train.yaml (the trainer's primary config) is not there yet")
    composer = Composer(entry, [f"launcher={launcher}", f"output_root={tmp_path}"])
    grid = yaml.safe_load((CONF_DIR / "grid" / "demo.yaml").read_text())
    specs = expand_grid(grid, composer)
    assert {spec.launcher.name for spec in specs} == {launcher}
