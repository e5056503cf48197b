"""Typed, validated configuration for the model, data, training, GECO and evaluation.

The Hydra tree under ``experiments/conf`` is the one home of the values; these dataclasses give them types
and check them, and their defaults are the tree's code defaults (a test holds them equal).
``ExperimentConfig.from_dict`` collects *every* problem in a config before raising, so a grid can be
validated as a whole and report all of its errors at once.

Each field also declares its ``KeyRole``: whether it is part of a run's identity (its run_key) and whether
it may change when a run resumes from a checkpoint. ``emorl.identity`` derives both from that declaration.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args, get_origin

from emorl.data.layout import DATASETS as DATASET_SPECS

PRIORS = ("reversed_plusplus", "reversed", "bottom_up")
DECODERS = ("iodine", "big", "small")
LIKELIHOODS = ("gmm", "gaussian")
LOSS_WEIGHTS = ("code", "paper")
DATASETS = tuple(DATASET_SPECS)  # every dataset of the reference layout (emorl.data.layout)
PRECISIONS = ("fp32", "bf16")


class KeyRole(enum.Enum):
    """What a config key means for a run's identity (its run_key) and for resuming it."""

    RESULT = "result"  # decides what the run computes: in its run_key; fixed once training started
    RESUMABLE = "resumable"  # in its run_key, yet may change on resume: its length, its evaluation
    OPERATIONAL = "operational"  # how it runs, not what it computes: outside its run_key; may change


ROLE = "role"  # the field metadata entry that holds a key's role (RESULT where none is given)
NEUTRAL = "neutral"  # metadata of a key added later: its value that computes what runs computed before
MINIMUM = "minimum"  # the field metadata entry of an integer count: its least value


def resumable(default: Any) -> Any:
    """A field in the run's identity that may still change when the run resumes."""
    return field(default=default, metadata={ROLE: KeyRole.RESUMABLE})


def added_later(neutral: Any) -> Any:
    """A key added after runs existed, whose default ``neutral`` computes exactly what they computed: at
    that value it is left out of the run_key, so adding it changes no earlier run's identity."""
    return field(default=neutral, metadata={NEUTRAL: neutral})


def operational(default: Any) -> Any:
    """A field that does not change what the run computes (paths, cadence, workers, device)."""
    return field(default=default, metadata={ROLE: KeyRole.OPERATIONAL})


class ConfigError(ValueError):
    """One or more invalid config values; ``errors`` lists each as 'key: problem'."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        super().__init__("invalid config:\n  - " + "\n  - ".join(self.errors))


def _choice(errors: list[str], key: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        errors.append(f"{key}={value!r} is not allowed (allowed: {', '.join(map(repr, allowed))})")


def _at_least(errors: list[str], key: str, value: Any, low: float) -> None:
    if not isinstance(value, int | float) or value < low:
        errors.append(f"{key}={value!r} must be a number >= {low}")


@dataclass(frozen=True)
class ModelConfig:
    """EMORL architecture (docs/model.md). ``K`` and the batch size are runtime properties of the model.

    ``refinement_batch_size`` is the B of the 1/B that the refinement input (the gradient of a batch-mean
    loss) carries in training, whatever the world size; the reference's is its per-GPU batch.
    ``init_gain`` is the Xavier-normal gain of the layers the reference initialises with gain 0.02;
    ``decoder_init_gain`` the decoder's own, when it should differ (None: ``init_gain``).
    """

    K: int = 4
    z_size: int = 64
    stochastic_layers: int = 3
    prior: Literal["reversed_plusplus", "reversed", "bottom_up"] = "reversed_plusplus"
    dual_gru: bool = True
    decoder: Literal["iodine", "big", "small"] = "iodine"
    likelihood: Literal["gmm", "gaussian"] = "gaussian"
    log_scale: float = -2.302585093  # ln 0.1
    input_size: tuple[int, int, int] = (3, 64, 64)
    loss_weights: Literal["code", "paper"] = "code"
    refinement_batch_size: int = 32
    init_gain: float = 0.02
    decoder_init_gain: float | None = added_later(None)

    def problems(self, prefix: str = "model") -> list[str]:
        errors: list[str] = []
        _at_least(errors, f"{prefix}.K", self.K, 1)
        _at_least(errors, f"{prefix}.z_size", self.z_size, 1)
        _at_least(errors, f"{prefix}.stochastic_layers", self.stochastic_layers, 0)
        _at_least(errors, f"{prefix}.refinement_batch_size", self.refinement_batch_size, 1)
        if not isinstance(self.init_gain, int | float) or self.init_gain <= 0:
            errors.append(f"{prefix}.init_gain={self.init_gain!r} must be a number > 0")
        decoder_gain = self.decoder_init_gain
        if decoder_gain is not None and (not isinstance(decoder_gain, int | float) or decoder_gain <= 0):
            errors.append(f"{prefix}.decoder_init_gain={decoder_gain!r} must be a number > 0 (or null)")
        _choice(errors, f"{prefix}.prior", self.prior, PRIORS)
        _choice(errors, f"{prefix}.decoder", self.decoder, DECODERS)
        _choice(errors, f"{prefix}.likelihood", self.likelihood, LIKELIHOODS)
        _choice(errors, f"{prefix}.loss_weights", self.loss_weights, LOSS_WEIGHTS)
        size = tuple(self.input_size)
        if len(size) != 3 or size[0] != 3 or size[1] != size[2] or size[1] < 1:
            errors.append(f"{prefix}.input_size={list(size)} must be [3, S, S] (square RGB images)")
        elif self.decoder == "big" and size[1] != 96:
            errors.append(f"{prefix}.decoder='big' only outputs 96x96 images, but input_size is {list(size)}")
        return errors


@dataclass(frozen=True)
class DataConfig:
    """Which Multi-Object dataset to read and how (docs/data.md)."""

    name: str = "tetrominoes"
    root: str = operational("data")
    masks: bool = False
    factors: bool = False
    clevr_resolution: int | None = None
    in_memory: bool = operational(False)
    num_workers: int = operational(8)
    generate_if_missing: bool = operational(False)
    generate_train: int = 2000
    generate_test: int = 320

    def problems(self, prefix: str = "data") -> list[str]:
        errors: list[str] = []
        _choice(errors, f"{prefix}.name", self.name, DATASETS)
        if self.clevr_resolution is not None:
            _choice(errors, f"{prefix}.clevr_resolution", self.clevr_resolution, (96, 128))
            if self.name != "clevr6":
                errors.append(f"{prefix}.clevr_resolution is only for clevr6, not {self.name!r}")
        _at_least(errors, f"{prefix}.num_workers", self.num_workers, 0)
        return errors


@dataclass(frozen=True)
class GecoConfig:
    """GECO (docs/training.md#geco). ``reconstruction_target`` is per pixel and channel; it is scaled by
    C·H·W."""

    enabled: bool = True
    reconstruction_target: float = -2.206
    ema_alpha: float = 0.99
    step_size: float = 1e-6
    step_size_acceleration: float = 1.0
    warm_start: int = 1000
    beta_init: float = 0.55
    beta_floor: float = 0.55

    def problems(self, prefix: str = "geco") -> list[str]:
        errors: list[str] = []
        if not 0.0 < self.ema_alpha < 1.0:
            errors.append(f"{prefix}.ema_alpha={self.ema_alpha!r} must lie in (0, 1)")
        _at_least(errors, f"{prefix}.step_size", self.step_size, 0.0)
        _at_least(errors, f"{prefix}.step_size_acceleration", self.step_size_acceleration, 0.0)
        _at_least(errors, f"{prefix}.warm_start", self.warm_start, 0)
        return errors


@dataclass(frozen=True)
class TrainingConfig:
    """The training recipe (docs/training.md). ``batch_size`` is the *global* batch over all ranks."""

    batch_size: int = 32
    iters: int = resumable(200_000)
    lr: float = 4e-4
    warmup_steps: int = 10_000
    decay_rate: float = 0.5
    decay_steps: int = 100_000
    clip_grad_norm: float | None = 5.0
    kl_beta: float = 1.0
    refinement_curriculum: tuple[tuple[int, int], ...] = ((-1, 3),)
    seed: int = 1
    precision: Literal["fp32", "bf16"] = "fp32"
    channels_last: bool = operational(False)
    compile: bool = operational(False)
    checkpoint_every_steps: int = operational(25_000)
    checkpoint_every_minutes: float = operational(30.0)
    keep_checkpoints: int = operational(3)
    max_nonfinite_steps: int = resumable(20)
    log_every: int = operational(100)
    image_every: int = operational(5_000)
    output_dir: str = operational("outputs/run")
    resume: bool = operational(True)
    device: str = operational("auto")

    def problems(self, prefix: str = "training") -> list[str]:
        errors: list[str] = []
        _at_least(errors, f"{prefix}.batch_size", self.batch_size, 1)
        _at_least(errors, f"{prefix}.iters", self.iters, 0)
        _at_least(errors, f"{prefix}.lr", self.lr, 0.0)
        _at_least(errors, f"{prefix}.warmup_steps", self.warmup_steps, 0)
        _at_least(errors, f"{prefix}.decay_steps", self.decay_steps, 1)
        _at_least(errors, f"{prefix}.log_every", self.log_every, 1)
        _at_least(errors, f"{prefix}.image_every", self.image_every, 1)
        _at_least(errors, f"{prefix}.checkpoint_every_steps", self.checkpoint_every_steps, 1)
        _at_least(errors, f"{prefix}.keep_checkpoints", self.keep_checkpoints, 1)
        _at_least(errors, f"{prefix}.max_nonfinite_steps", self.max_nonfinite_steps, 1)
        _choice(errors, f"{prefix}.precision", self.precision, PRECISIONS)
        curriculum = self.refinement_curriculum
        if not curriculum or any(len(entry) != 2 or entry[1] < 0 for entry in curriculum):
            errors.append(
                f"{prefix}.refinement_curriculum={curriculum!r} must be a non-empty list of "
                "[start_step, I] pairs with I >= 0"
            )
        elif [start for start, _ in curriculum] != sorted(start for start, _ in curriculum):
            errors.append(f"{prefix}.refinement_curriculum={curriculum!r} must be sorted by start_step")
        return errors


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation (docs/evaluation.md). A grid's results are its evaluation, so these keys are part of a run's
    identity; training does not read them, so they may change when a run resumes. ``diagnosis_*`` are the
    collapse check's thresholds (emorl.eval.diagnosis): they only label a run, so they are outside it."""

    num_images: int = resumable(320)
    batch_size: int = resumable(32)
    refinement_steps: int = resumable(3)
    num_slots: int | None = resumable(None)
    seed: int = resumable(2)
    activeness_images: int = resumable(100)
    traversal_steps: int = resumable(8)
    gif_top_k: int = resumable(10)
    output_dir: str = operational("outputs/eval")
    diagnosis_fg_share: float = operational(0.05)
    diagnosis_max_fg_ari: float = operational(0.2)
    diagnosis_max_fg_slots: float = operational(1.5)
    diagnosis_min_mask_entropy: float = operational(0.9)
    diagnosis_min_segmenting_fg_ari: float = operational(0.5)

    def problems(self, prefix: str = "eval") -> list[str]:
        errors: list[str] = []
        _at_least(errors, f"{prefix}.num_images", self.num_images, 1)
        _at_least(errors, f"{prefix}.batch_size", self.batch_size, 1)
        _at_least(errors, f"{prefix}.refinement_steps", self.refinement_steps, 0)
        if self.num_slots is not None:
            _at_least(errors, f"{prefix}.num_slots", self.num_slots, 1)
        for key in ("diagnosis_fg_share", "diagnosis_max_fg_ari", "diagnosis_min_mask_entropy"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                errors.append(f"{prefix}.{key}={getattr(self, key)!r} must lie in [0, 1]")
        _at_least(errors, f"{prefix}.diagnosis_max_fg_slots", self.diagnosis_max_fg_slots, 0.0)
        if self.diagnosis_min_segmenting_fg_ari < self.diagnosis_max_fg_ari:
            errors.append(
                f"{prefix}.diagnosis_min_segmenting_fg_ari={self.diagnosis_min_segmenting_fg_ari!r} must be "
                f">= {prefix}.diagnosis_max_fg_ari={self.diagnosis_max_fg_ari!r}"
            )
        return errors


SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "data": DataConfig,
    "training": TrainingConfig,
    "geco": GecoConfig,
    "eval": EvalConfig,
}


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything one run needs. Built from a plain (Hydra-resolved) dict by ``from_dict``."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    geco: GecoConfig = field(default_factory=GecoConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def problems(self) -> list[str]:
        errors: list[str] = []
        for name in SECTIONS:
            errors += getattr(self, name).problems(name)
        if self.model.input_size[1] != self._image_side():
            errors.append(
                f"model.input_size={list(self.model.input_size)} does not match the images of "
                f"data.name={self.data.name!r} (clevr_resolution={self.data.clevr_resolution})"
            )
        return errors

    def _image_side(self) -> int:
        """The side of the images the model reads: CLEVR's resize target, else the dataset's own size."""
        if self.data.clevr_resolution is not None or self.data.name not in DATASET_SPECS:
            return self.data.clevr_resolution or self.model.input_size[1]
        return DATASET_SPECS[self.data.name].image_size[0]

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ExperimentConfig:
        """Build and validate; unknown keys, wrong types and bad values are all reported together.

        Top-level keys other than the sections (``tracking``, ``launcher``, ``grid``, ...) are ignored:
        they belong to the orchestration layer.
        """
        errors: list[str] = []
        sections = {}
        for name, section_type in SECTIONS.items():
            section_raw = raw.get(name) or {}
            if not isinstance(section_raw, Mapping):
                errors.append(f"{name} must be a mapping, got {type(section_raw).__name__}")
                section_raw = {}
            sections[name] = section_type(**typed_values(section_type, section_raw, name, errors))
        config = cls(**sections)
        errors += config.problems()
        if errors:
            raise ConfigError(errors)
        return config

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (tuples as lists), the inverse of ``from_dict``."""
        return plain_dict(self)


def key_roles() -> dict[str, KeyRole]:
    """Every key of the experiment config (``training.lr``, ...) with its declared role."""
    return {
        f"{name}.{item.name}": item.metadata.get(ROLE, KeyRole.RESULT)
        for name, section_type in SECTIONS.items()
        for item in dataclasses.fields(section_type)
    }


def neutral_values() -> dict[str, Any]:
    """The keys added later (``added_later``) with the value at which they change nothing."""
    return {
        f"{name}.{item.name}": item.metadata[NEUTRAL]
        for name, section_type in SECTIONS.items()
        for item in dataclasses.fields(section_type)
        if NEUTRAL in item.metadata
    }


def flatten_config(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config dict → ``{'training.lr': 4e-4, ...}`` (lists stay values)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_config(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def plain_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as plain nested data (tuples as lists), as YAML and JSON hold it."""
    return _plain(dataclasses.asdict(config))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


@functools.cache
def _typed_fields(section_type: type) -> tuple[dict[str, Any], dict[str, dataclasses.Field]]:
    """A config dataclass's resolved type hints and fields (evaluating string annotations is costly)."""
    return typing.get_type_hints(section_type), {item.name: item for item in dataclasses.fields(section_type)}


def typed_values(
    section_type: type, raw: Mapping[str, Any], prefix: str, errors: list[str]
) -> dict[str, Any]:
    """``raw``'s values coerced to the field types of the dataclass ``section_type``, and a problem in
    ``errors`` for each unknown key, missing key (a field without a default) or bad value. A field whose
    metadata gives a ``MINIMUM`` is an integer count of at least that."""
    hints, fields = _typed_fields(section_type)
    for key in raw:
        if key not in fields:
            errors.append(f"{prefix}.{key} is not a known key (known: {', '.join(sorted(fields))})")
    values = {}
    for key, item in fields.items():
        if key not in raw:
            if item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING:
                errors.append(f"{prefix}.{key} is missing")
            continue
        value, low = raw[key], item.metadata.get(MINIMUM)
        if low is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            errors.append(f"{prefix}.{key}={value!r} must be an integer >= {low}")
            continue
        try:
            values[key] = _coerce(value, hints[key])
        except (TypeError, ValueError) as exc:
            errors.append(f"{prefix}.{key}={value!r}: {exc}")
    return values


def _coerce(value: Any, hint: Any) -> Any:
    """Coerce a YAML value to the annotated type (lists to tuples, ints to floats), or raise."""
    origin = get_origin(hint)
    args = get_args(hint)
    if origin is Literal:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [arg for arg in args if arg is not type(None)]
        return _coerce(value, inner[0])
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise TypeError(f"expected a list, got {type(value).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(item, args[0]) for item in value)
        if len(args) != len(value):
            raise ValueError(f"expected {len(args)} items, got {len(value)}")
        return tuple(_coerce(item, arg) for item, arg in zip(value, args, strict=True))
    if hint is bool:
        if not isinstance(value, bool):
            raise TypeError(f"expected true/false, got {type(value).__name__}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected an integer, got {type(value).__name__}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"expected a number, got {type(value).__name__}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {type(value).__name__}")
        return value
    return value
