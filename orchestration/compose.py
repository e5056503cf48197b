"""Composing one run's config: Hydra for config-group choices (cached), plain dict updates for keys.

Precedence, lowest first: the primary config, the grid's ``base``, the run's axis values and seed, the
command line (which thus has the last word on any key it names). A launcher profile file
(``launcher.profile``) overrides the launcher keys it names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from emorl.config import ConfigError, key_roles

CONF_DIR = Path(__file__).resolve().parent.parent / "experiments" / "conf"
# Every key of the typed config may be set by a grid, even where the YAML tree leaves it to its default.
TYPED_KEYS = frozenset(key_roles())


class Composer:
    """Composes run configs. Hydra compose costs tens of milliseconds, so it runs once per distinct set of
    group choices; every other override is applied to a copy of that unresolved tree, which is then
    resolved."""

    def __init__(
        self,
        config_name: str,
        cli_overrides: Sequence[str] = (),
        conf_dir: Path | None = None,
        composed: DictConfig | None = None,
    ):
        """``composed``: the entry point's own config, already composed by Hydra from ``config_name`` and
        ``cli_overrides`` (saves composing it again)."""
        from hydra.core.override_parser.overrides_parser import OverridesParser

        self.config_name = config_name
        self.cli_overrides = list(cli_overrides)
        self.conf_dir = Path(conf_dir) if conf_dir is not None else CONF_DIR
        self._cache: dict[tuple[str, ...], dict[str, Any]] = {}
        if composed is not None:
            self._cache[()] = self._tree(composed)
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
            self._cache[cache_key] = self._tree(cfg)
        return self._cache[cache_key]

    @staticmethod
    def _tree(cfg: DictConfig) -> dict[str, Any]:
        tree = OmegaConf.to_container(cfg, resolve=False)
        if isinstance(tree.get("launcher"), dict) and tree["launcher"].get("profile"):
            apply_profile(tree["launcher"])
        return tree

    def compose(self, overrides: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """Resolved plain config for these overrides, and a problem per override naming no known key."""
        groups = [
            f"{key}={value}"
            for key, value in overrides.items()
            if self.is_group(key) and key not in self._cli_groups
        ]
        tree = plain_copy(self.base(groups))
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
            tree["output_root"] = absolute(root)
        return resolve(tree), errors


INTERPOLATION = re.compile(r"\$\{([A-Za-z_][\w.]*)\}")  # ${a.b.c}: a plain key, no resolver


def resolve(tree: dict[str, Any]) -> dict[str, Any]:
    """``tree`` with its interpolations resolved, as ``OmegaConf.to_container(..., resolve=True)`` does.

    A grid composes one tree per run, and OmegaConf's node tree costs ~40 ms per run to build and resolve;
    the shipped configs only interpolate plain keys (``${output_root}/train/${data.name}``), which this
    resolves on the plain dict in well under a millisecond. Any other interpolation (a resolver such as
    ``${oc.env:X}``, an escaped ``\\${``, a nested one) goes to OmegaConf."""
    if _needs_omegaconf(tree):
        return OmegaConf.to_container(OmegaConf.create(tree), resolve=True)

    def lookup(key: str, seen: tuple[str, ...]) -> Any:
        if key in seen:
            raise ConfigError([f"interpolation cycle: {' -> '.join([*seen, key])}"])
        node: Any = tree
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise ConfigError([f"interpolation ${{{key}}}: no such config key"])
            node = node[part]
        return value_of(node, (*seen, key))

    def value_of(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, dict):
            return {key: value_of(value, seen) for key, value in node.items()}
        if isinstance(node, list):
            return [value_of(value, seen) for value in node]
        if not isinstance(node, str) or "${" not in node:
            return node
        whole = INTERPOLATION.fullmatch(node)
        if whole:  # the value itself, with its type
            return lookup(whole.group(1), seen)
        return INTERPOLATION.sub(lambda match: str(lookup(match.group(1), seen)), node)

    return value_of(tree, ())


def _needs_omegaconf(node: Any) -> bool:
    if isinstance(node, dict):
        return any(_needs_omegaconf(value) for value in node.values())
    if isinstance(node, list):
        return any(_needs_omegaconf(value) for value in node)
    return isinstance(node, str) and "${" in node and (
        "\\${" in node or INTERPOLATION.sub("", node).count("${") > 0
    )


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
            node[part] = plain_copy(value)
        else:
            node = node.setdefault(part, {})


def plain_copy(node: Any) -> Any:
    """A copy of a tree of dicts and lists (of immutable leaves), several times faster than deepcopy."""
    if isinstance(node, dict):
        return {key: plain_copy(value) for key, value in node.items()}
    if isinstance(node, list):
        return [plain_copy(value) for value in node]
    return node


def command_line_overrides(hydra_cfg: Any) -> list[str]:
    """What the user typed, as overrides that compose each run alike and re-run the command: the task's
    overrides plus any ``hydra.searchpath`` (a folder of one's own grids), which Hydra keeps apart."""
    searchpath = [item for item in hydra_cfg.overrides.hydra if item.startswith("hydra.searchpath=")]
    return [*hydra_cfg.overrides.task, *searchpath]


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


def absolute(path: str) -> str:
    """The path made absolute (jobs run elsewhere, from a code snapshot: no relative paths)."""
    return str(Path(path).expanduser().resolve())
