"""Grids as data: expand ``axes`` (product / zip blocks) × ``seeds`` into validated, picklable run specs.

A grid lives in ``experiments/conf/grid/<name>.yaml``::

    name: demo                      # also the MLflow experiment unless `experiment` is given
    base: {dataset: tetrominoes, training.iters: 150}   # group choices and dotted keys
    axes:                           # blocks, combined by product with each other
      - product:                    # every combination of the axes in the block
          model.prior: [reversed_plusplus, bottom_up]
      - zip:                        # the i-th values of the axes go together
          model.refinement_steps: [0, 1]
          training.refinement_curriculum: [[[-1, 0]], [[-1, 1]]]
      - product:
          variant:                  # a named axis: each value is a set of overrides of any keys
            full: {}
            no_geco: {geco.enabled: false}
    seeds: [1, 2, 3]                # its own axis: sets training.seed

Each run's config is the primary Hydra config composed with the command line, ``base``, the run's axis
values and its seed, resolved to a plain dict and validated with ``ExperimentConfig.from_dict``. The
whole grid is validated before anything is submitted, and every problem is reported at once.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from emorl.config import ConfigError, ExperimentConfig, key_roles
from emorl.identity import SEED_KEY, canonical_json, identity_key

CONF_DIR = Path(__file__).resolve().parent.parent / "experiments" / "conf"
CLUSTER_KEYS = ("tracking", "launcher", "debug", "output_root")
# Every key of the typed config may be set by a grid, even where the YAML tree leaves it to its default.
TYPED_KEYS = frozenset(key_roles())
LAUNCHER_INTS = (
    "nodes",
    "tasks_per_node",
    "gpus_per_node",
    "cpus_per_task",
    "timeout_min",
    "array_parallelism",
)


class GridError(ValueError):
    """A grid that cannot run; ``errors`` lists every problem found, each naming its run or key."""

    def __init__(self, grid: str, errors: list[str]):
        self.grid = grid
        self.errors = list(errors)
        super().__init__(f"grid {grid!r} is invalid ({len(errors)} problems):\n  - " + "\n  - ".join(errors))


@dataclass(frozen=True)
class RunSpec:
    """One run of a grid: everything a job needs, as plain data (picklable, JSON-able)."""

    config: dict[str, Any]  # resolved: model/data/training/geco/eval + tracking/launcher/grid/output_root
    run_key: str  # hash of the result-relevant config (seed included)
    cell_key: str  # the same without the seed: one table cell
    grid: str
    seed: int
    labels: dict[str, str] = field(default_factory=dict)  # axis -> value label, e.g. {"variant": "no_geco"}

    @property
    def name(self) -> str:
        """Readable run name: the axis labels and the seed."""
        parts = [f"{axis}={label}" for axis, label in self.labels.items()]
        return ",".join([*parts, f"seed={self.seed}"])

    @property
    def cell_label(self) -> str:
        return ",".join(f"{axis}={label}" for axis, label in self.labels.items()) or "all"

    @property
    def output_dir(self) -> Path:
        return Path(self.config["training"]["output_dir"])

    @property
    def experiment(self) -> str:
        return self.config["grid"]["experiment"]

    @property
    def launcher(self) -> dict[str, Any]:
        return self.config["launcher"]


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


class Composer:
    """Composes run configs: Hydra for config-group choices (cached), plain dict updates for keys.

    Precedence, lowest first: the primary config, the grid's ``base``, the run's axis values and seed,
    the command line (which thus has the last word on any key it names). Hydra compose costs tens of
    milliseconds, so it runs once per distinct set of group choices; every other override is applied
    to a copy of that unresolved tree, which is then resolved.
    """

    def __init__(self, config_name: str, cli_overrides: Sequence[str] = (), conf_dir: Path | None = None):
        from hydra.core.override_parser.overrides_parser import OverridesParser

        self.config_name = config_name
        self.cli_overrides = list(cli_overrides)
        self.conf_dir = Path(conf_dir) if conf_dir is not None else CONF_DIR
        self._cache: dict[tuple[str, ...], dict[str, Any]] = {}
        parsed = OverridesParser.create().parse_overrides(self.cli_overrides)
        self._cli_groups = {o.key_or_group for o in parsed if self.is_group(o.key_or_group)}
        self._cli_values = {
            ("+" if o.is_add() else "") + o.key_or_group: o.value()
            for o in parsed
            if not self.is_group(o.key_or_group)
            and not o.is_delete()
            and not o.key_or_group.startswith("hydra.")
        }

    def is_group(self, key: str) -> bool:
        return "." not in key and (self.conf_dir / key.lstrip("+~")).is_dir()

    def base(self, group_overrides: Sequence[str] = ()) -> dict[str, Any]:
        """The unresolved config tree for the command line plus these group choices (cached)."""
        cache_key = tuple(group_overrides)
        if cache_key not in self._cache:
            from hydra import compose

            with hydra_initialized(self.conf_dir):
                cfg = compose(self.config_name, overrides=[*self.cli_overrides, *group_overrides])
            tree = OmegaConf.to_container(cfg, resolve=False)
            if isinstance(tree.get("launcher"), dict) and tree["launcher"].get("profile"):
                apply_profile(tree["launcher"])
            self._cache[cache_key] = tree
        return self._cache[cache_key]

    def compose(self, overrides: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """Resolved plain config for these overrides, and a problem per override naming no known key."""
        groups = [
            f"{key}={value}"
            for key, value in overrides.items()
            if self.is_group(key) and key not in self._cli_groups
        ]
        tree = copy.deepcopy(self.base(groups))
        errors = []
        for key, value in [*overrides.items(), *self._cli_values.items()]:
            if self.is_group(key):
                continue
            try:
                _set_dotted(tree, key, value, may_add=key in TYPED_KEYS)
            except KeyError as exc:
                errors.append(str(exc.args[0]))
        root = tree.get("output_root")
        if isinstance(root, str) and "${" not in root:
            tree["output_root"] = _absolute(root)  # jobs run elsewhere (a code snapshot): no relative paths
        return OmegaConf.to_container(OmegaConf.create(tree), resolve=True), errors


def apply_profile(launcher: dict[str, Any]) -> None:
    """Override launcher keys with a cluster profile file (``launcher.profile``: slurm/profiles/x.yaml)."""
    path = Path(launcher["profile"]).expanduser()
    if not path.is_absolute() and not path.is_file():
        path = CONF_DIR.parent.parent / path
    if not path.is_file():
        raise ConfigError([f"launcher.profile={launcher['profile']!r}: no such file"])
    profile = OmegaConf.to_container(OmegaConf.load(path), resolve=False) or {}
    unknown = sorted(set(profile) - set(launcher))
    if unknown:
        raise ConfigError(
            [f"launcher.profile {path}: unknown keys {unknown} (known: {', '.join(sorted(launcher))})"]
        )
    launcher.update(profile)


def _set_dotted(tree: dict[str, Any], key: str, value: Any, may_add: bool = False) -> None:
    """Set ``a.b.c`` in a nested dict; ``+a.b`` (or a typed config key) may be added, others must exist."""
    add = may_add or key.startswith("+")
    parts = key.lstrip("+").split(".")
    node = tree
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if not isinstance(node, dict) or (part not in node and not add):
            known = ", ".join(sorted(node)) if isinstance(node, dict) else "none"
            raise KeyError(
                f"{key}: no such config key ({'.'.join(parts[: i + 1])} not found; known here: {known}); "
                "prefix with '+' to add a new key"
            )
        if last:
            node[part] = copy.deepcopy(value)
        else:
            node = node.setdefault(part, {})


@contextmanager
def hydra_initialized(conf_dir: Path = CONF_DIR) -> Iterator[None]:
    """Use the running Hydra app's search path, or initialise Hydra on ``conf_dir`` for the block."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        yield
        return
    with initialize_config_dir(config_dir=str(Path(conf_dir).resolve()), version_base="1.3"):
        yield


def launcher_problems(launcher: Any, batch_size: Any) -> list[str]:
    """Resource shape checks: positive integer counts, and a global batch the ranks can split."""
    if not isinstance(launcher, Mapping):
        return ["launcher: missing; choose one with launcher=local|debug|slurm"]
    errors = []
    for key in LAUNCHER_INTS:
        value = launcher.get(key)
        low = 0 if key == "gpus_per_node" else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            errors.append(f"launcher.{key}={value!r} must be an integer >= {low}")
    if not errors and isinstance(batch_size, int):
        ranks = launcher["nodes"] * launcher["tasks_per_node"]
        if batch_size % ranks:
            errors.append(
                f"training.batch_size={batch_size} (global) is not divisible by the {ranks} ranks "
                f"(launcher.nodes × launcher.tasks_per_node); change one of them"
            )
    return errors


def _absolute(path: str) -> str:
    return str(Path(path).expanduser().resolve())


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
    for point, seed in itertools.product(points, seeds):
        run_name = ",".join([*(f"{a}={v}" for a, v in point.labels.items()), f"seed={seed}"])
        overrides = {**base, **point.overrides, SEED_KEY: seed}
        if output_root is not None:
            overrides["output_root"] = output_root
        try:
            spec = _run_spec(name, grid, composer, overrides, point.labels, seed)
        except ConfigError as exc:
            errors += [f"run [{run_name}]: {problem}" for problem in exc.errors]
            continue
        except Exception as exc:  # Hydra's errors (unknown group option, bad override) carry no list
            errors.append(f"run [{run_name}]: {type(exc).__name__}: {exc}")
            continue
        if spec.run_key in by_key:
            twin = by_key[spec.run_key]
            errors.append(f"run [{run_name}] has the same config (run_key {spec.run_key}) as [{twin}]")
            continue
        by_key[spec.run_key] = run_name
        specs.append(spec)
    if errors:
        raise GridError(name, errors)
    return specs


def _run_spec(
    name: str,
    grid: Mapping[str, Any],
    composer: Composer,
    overrides: Mapping[str, Any],
    labels: dict[str, str],
    seed: int,
) -> RunSpec:
    tree, problems = composer.compose(overrides)
    try:
        experiment = ExperimentConfig.from_dict(tree)
    except ConfigError as exc:
        problems += exc.errors
    launcher = tree.get("launcher")
    problems += launcher_problems(launcher, tree.get("training", {}).get("batch_size"))
    if problems:
        raise ConfigError(problems)
    sections = experiment.to_dict()  # typed and complete: defaults filled in
    root = Path(_absolute(str(tree.get("output_root") or "outputs")))
    run_key = identity_key(experiment)
    cell_key = identity_key(experiment, with_seed=False)
    sections["data"]["root"] = _absolute(sections["data"]["root"])
    sections["training"]["output_dir"] = str(root / name / run_key)
    sections["eval"]["output_dir"] = str(root / name / run_key / "eval")
    config = {
        **sections,
        **{key: tree[key] for key in CLUSTER_KEYS if key in tree},
        "output_root": str(root),
        "grid": {
            "name": name,
            "experiment": str(grid.get("experiment") or name),
            "labels": dict(labels),
        },
    }
    return RunSpec(
        config=config, run_key=run_key, cell_key=cell_key, grid=name, seed=seed, labels=dict(labels)
    )


def expand_configured_grid(cfg: Any, config_name: str, cli_overrides: Sequence[str]) -> list[RunSpec]:
    """Expand the grid selected in a composed entry-point config (``cfg.grid``), as the CLI asked."""
    grid = OmegaConf.to_container(cfg.grid, resolve=True)
    return expand_grid(grid, Composer(config_name, cli_overrides))
