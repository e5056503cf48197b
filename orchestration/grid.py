"""Grids as data: expand ``axes`` (product / zip blocks) × ``seeds`` into validated, picklable run specs.

A grid lives in ``experiments/conf/grid/<name>.yaml``::

    name: demo                      # also the MLflow experiment unless `experiment` is given
    base: {dataset: tetrominoes, training.iters: 150}   # group choices and dotted keys
    axes:                           # blocks, combined by product with each other
      - product:                    # every combination of the axes in the block
          model.prior: [reversed_plusplus, bottom_up]
      - zip:                        # the i-th values of the axes go together
          training.refinement_curriculum: [[[-1, 0]], [[-1, 1]]]
          eval.refinement_steps: [0, 1]
      - product:
          variant:                  # a named axis: each value is a set of overrides of any keys
            full: {}
            no_geco: {geco.enabled: false}
    seeds: [1, 2, 3]                # its own axis: sets training.seed

Each run's config is the primary Hydra config composed with the command line, ``base``, the run's axis
values and its seed (``orchestration.compose``), resolved to a plain dict and validated once, into the
typed configs of its ``RunSpec``. The whole grid is validated before anything is submitted, and every
problem is reported at once: a problem several runs share once, with the runs it affects.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf

from emorl.config import ConfigError, ExperimentConfig
from emorl.identity import SEED_KEY, canonical_json, identity_key
from orchestration.compose import Composer, absolute
from orchestration.config import LauncherConfig, TrackingConfig
from orchestration.run_spec import RunSpec

Section = TypeVar("Section", ExperimentConfig, LauncherConfig, TrackingConfig)


class GridError(ValueError):
    """A grid that cannot run; ``errors`` lists every problem found, each naming its run or key."""

    def __init__(self, grid: str, errors: list[str]):
        self.grid = grid
        self.errors = list(errors)
        super().__init__(f"grid {grid!r} is invalid ({len(errors)} problems):\n  - " + "\n  - ".join(errors))


@dataclass(frozen=True)
class Point:
    """One combination of axis values: the labels to show and the overrides to apply."""

    labels: dict[str, str]
    overrides: dict[str, Any]


def _label(value: Any) -> str:
    return value if isinstance(value, str) else canonical_json(value)


def _axis_points(axis: str, values: Any, errors: list[str], where: str) -> list[Point]:
    """The points of one axis: a list of values for a config key, or named override sets."""
    if isinstance(values, Mapping):
        points = []
        for label, overrides in values.items():
            if overrides is None:
                overrides = {}
            if not isinstance(overrides, Mapping):
                errors.append(
                    f"{where}.{axis}.{label}: a named value must map config keys to values, "
                    f"got {type(overrides).__name__}"
                )
                continue
            points.append(Point({axis: str(label)}, dict(overrides)))
        return points
    if isinstance(values, list | tuple) and values:
        return [Point({axis: _label(value)}, {axis: value}) for value in values]
    errors.append(f"{where}.{axis}: expected a non-empty list of values or a mapping of named overrides")
    return []


def _block_points(block: Any, index: int, errors: list[str]) -> list[Point]:
    where = f"axes[{index}]"
    if not isinstance(block, Mapping) or len(block) != 1 or next(iter(block)) not in ("product", "zip"):
        errors.append(f"{where}: expected {{product: {{axis: values}}}} or {{zip: {{axis: values}}}}")
        return []
    kind, axes = next(iter(block.items()))
    where = f"{where}.{kind}"
    if not isinstance(axes, Mapping) or not axes:
        errors.append(f"{where}: expected a non-empty mapping of axes")
        return []
    per_axis = [_axis_points(axis, values, errors, where) for axis, values in axes.items()]
    if kind == "zip":
        lengths = {axis: len(points) for axis, points in zip(axes, per_axis, strict=True)}
        if len(set(lengths.values())) > 1:
            errors.append(f"{where}: zipped axes must have equal lengths, found {lengths}")
            return []
        combos = list(zip(*per_axis, strict=True))
    else:
        combos = list(itertools.product(*per_axis))
    return [_merge(combo) for combo in combos]


def _merge(points: Sequence[Point]) -> Point:
    labels: dict[str, str] = {}
    overrides: dict[str, Any] = {}
    for point in points:
        labels.update(point.labels)
        overrides.update(point.overrides)
    return Point(labels, overrides)


def grid_points(grid: Mapping[str, Any], errors: list[str]) -> list[Point]:
    """Every combination of the grid's axis blocks (product across blocks), in a stable order."""
    blocks = grid.get("axes") or []
    if not isinstance(blocks, list | tuple):
        errors.append("axes: expected a list of {product: ...} / {zip: ...} blocks")
        return []
    per_block = [_block_points(block, i, errors) for i, block in enumerate(blocks)]
    seen: dict[str, int] = {}
    for i, points in enumerate(per_block):
        for axis in {axis for point in points for axis in point.labels}:
            if axis in seen:
                errors.append(f"axes[{i}]: axis {axis!r} already appears in axes[{seen[axis]}]")
            seen[axis] = i
    return [_merge(combo) for combo in itertools.product(*per_block)]


def _seeds(grid: Mapping[str, Any], errors: list[str]) -> list[int]:
    seeds = grid.get("seeds")
    if (
        not isinstance(seeds, list | tuple)
        or not seeds
        or any(isinstance(s, bool) or not isinstance(s, int) for s in seeds)
    ):
        errors.append(f"seeds: expected a non-empty list of integers, got {seeds!r}")
        return []
    if len(set(seeds)) != len(seeds):
        errors.append(f"seeds: {list(seeds)} has duplicates")
    return list(seeds)


def expand_grid(
    grid: Mapping[str, Any],
    composer: Composer,
    *,
    output_root: str | None = None,
) -> list[RunSpec]:
    """All runs of ``grid`` as validated RunSpecs, or GridError listing every problem of every run.

    ``output_root`` (default: the composed ``output_root``) becomes absolute; each run's checkpoints
    go to ``<output_root>/<grid>/<run_key>/`` so a resubmission finds them again.
    """
    errors: list[str] = []
    name = grid.get("name")
    if not isinstance(name, str) or not name:
        raise GridError(str(name), ["name: every grid needs a non-empty string name"])
    base = grid.get("base") or {}
    if not isinstance(base, Mapping):
        errors.append(f"base: expected a mapping of overrides, got {type(base).__name__}")
        base = {}
    points = grid_points(grid, errors)
    seeds = _seeds(grid, errors)
    if errors:
        raise GridError(name, errors)

    specs: list[RunSpec] = []
    by_key: dict[str, str] = {}
    per_problem: dict[str, list[str]] = {}  # a run's problem -> the runs that have it
    for point, seed in itertools.product(points, seeds):
        run_name = ",".join([*(f"{a}={v}" for a, v in point.labels.items()), f"seed={seed}"])
        overrides = {**base, **point.overrides, SEED_KEY: seed}
        if output_root is not None:
            overrides["output_root"] = output_root
        try:
            spec = _run_spec(name, grid, composer, overrides, point.labels)
        except ConfigError as exc:
            for problem in exc.errors:
                per_problem.setdefault(problem, []).append(run_name)
            continue
        except Exception as exc:  # Hydra's errors (unknown group option, bad override) carry no list
            per_problem.setdefault(f"{type(exc).__name__}: {exc}", []).append(run_name)
            continue
        if spec.run_key in by_key:
            twin = by_key[spec.run_key]
            errors.append(f"run [{run_name}] has the same config (run_key {spec.run_key}) as [{twin}]")
            continue
        by_key[spec.run_key] = run_name
        specs.append(spec)
    errors += [
        f"run [{names[0]}]: {problem}" if len(names) == 1 else f"{problem} ({affected_runs(names)})"
        for problem, names in per_problem.items()
    ]
    if errors:
        raise GridError(name, errors)
    return specs


def affected_runs(names: Sequence[str]) -> str:
    """``4 runs: [a], [b], [c] and 1 more``: the runs one problem is found in."""
    shown = ", ".join(f"[{name}]" for name in names[:3])
    more = f" and {len(names) - 3} more" if len(names) > 3 else ""
    return f"{len(names)} run{'s' if len(names) > 1 else ''}: {shown}{more}"


def _run_spec(
    name: str,
    grid: Mapping[str, Any],
    composer: Composer,
    overrides: Mapping[str, Any],
    labels: dict[str, str],
) -> RunSpec:
    tree, problems = composer.compose(overrides)
    experiment = _typed(ExperimentConfig.from_dict, tree, problems)
    launcher = _typed(LauncherConfig.from_dict, tree.get("launcher"), problems)
    tracking = _typed(TrackingConfig.from_dict, tree.get("tracking"), problems)
    if experiment is not None and launcher is not None:
        problems += launcher.batch_problems(experiment.training.batch_size)
    if problems or experiment is None or launcher is None or tracking is None:
        raise ConfigError(problems)
    root = Path(absolute(str(tree.get("output_root") or "outputs")))
    run_key = identity_key(experiment)
    run_dir = root / name / run_key
    config = dataclasses.replace(
        experiment,
        data=dataclasses.replace(experiment.data, root=absolute(experiment.data.root)),
        training=dataclasses.replace(experiment.training, output_dir=str(run_dir)),
        eval=dataclasses.replace(experiment.eval, output_dir=str(run_dir / "eval")),
    )
    return RunSpec(
        config=config,
        launcher=launcher,
        tracking=tracking,
        run_key=run_key,
        cell_key=identity_key(experiment, with_seed=False),
        grid=name,
        experiment=str(grid.get("experiment") or name),
        output_root=str(root),
        labels=dict(labels),
    )


def _typed(build: Callable[[Any], Section], raw: Any, problems: list[str]) -> Section | None:
    """``build(raw)``, or None with its problems added to ``problems``."""
    try:
        return build(raw)
    except ConfigError as exc:
        problems += exc.errors
        return None


def expand_configured_grid(cfg: DictConfig, config_name: str, cli_overrides: Sequence[str]) -> list[RunSpec]:
    """Expand the grid selected in a composed entry-point config (``cfg.grid``), as the CLI asked."""
    grid = OmegaConf.to_container(cfg.grid, resolve=True)
    return expand_grid(grid, Composer(config_name, cli_overrides, composed=cfg))
