"""Offline generators for look-alikes of the three Multi-Object datasets, in the reference layout
(docs/data.md#hdf5-layout).

``generate(name, n, seed)`` returns ``imgs`` uint8 [N,H,W,3], ``masks`` uint8 [N,E,H,W,1] (0/255, entity 0 =
background, the masks partition every pixel) and ``factors`` float32 [N,E,F] (last column = visibility, 1 for
present entities including the background, 0 for absent slots, whose masks and factors are all zero).
Output is a function of ``(name, seed)`` only: image ``i`` is the same whatever ``n`` or ``progress`` is.
Each generator module says in its docstring how it matches and differs from the real dataset.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from emorl.data.generators import clevr, mini_tetrominoes, multi_dsprites, tetrominoes
from emorl.data.generators._seeded_chunks import ChunkMaker, collect, iter_chunks


@dataclass(frozen=True)
class Generator:
    """One dataset's generator and the shapes it produces."""

    name: str
    make_chunk: ChunkMaker
    image_shape: tuple[int, int, int]  # (H, W, 3)
    max_entities: int  # E, background included
    factor_names: tuple[str, ...]  # F columns, visibility last
    chunk_size: int  # images drawn per random stream (a fixed part of the dataset's identity)


GENERATORS: dict[str, Generator] = {
    "tetrominoes": Generator(
        "tetrominoes",
        tetrominoes.generate_chunk,
        (tetrominoes.IMAGE_SIZE, tetrominoes.IMAGE_SIZE, 3),
        tetrominoes.MAX_ENTITIES,
        tetrominoes.FACTOR_NAMES,
        chunk_size=256,
    ),
    "mini_tetrominoes": Generator(
        "mini_tetrominoes",
        mini_tetrominoes.generate_chunk,
        (mini_tetrominoes.IMAGE_SIZE, mini_tetrominoes.IMAGE_SIZE, 3),
        mini_tetrominoes.MAX_ENTITIES,
        mini_tetrominoes.FACTOR_NAMES,
        chunk_size=256,
    ),
    "multi_dsprites": Generator(
        "multi_dsprites",
        multi_dsprites.generate_chunk,
        (multi_dsprites.IMAGE_SIZE, multi_dsprites.IMAGE_SIZE, 3),
        multi_dsprites.MAX_ENTITIES,
        multi_dsprites.FACTOR_NAMES,
        chunk_size=128,
    ),
    "clevr6": Generator(
        "clevr6",
        clevr.generate_chunk,
        (clevr.IMAGE_HEIGHT, clevr.IMAGE_WIDTH, 3),
        clevr.MAX_ENTITIES,
        clevr.FACTOR_NAMES,
        chunk_size=1,
    ),
}


def get_generator(name: str) -> Generator:
    """The registered generator called ``name``; a ValueError lists the known names otherwise."""
    if name not in GENERATORS:
        raise ValueError(
            f"unknown dataset generator {name!r}; known generators: {', '.join(sorted(GENERATORS))}"
        )
    return GENERATORS[name]


def generate_chunks(name: str, n: int, seed: int, progress: bool = True) -> Iterator[dict[str, np.ndarray]]:
    """Like ``generate`` but yields consecutive slices, so a writer can stream large sets to disk."""
    generator = get_generator(name)
    if n < 0:
        raise ValueError(f"number of images must be >= 0, got n={n} for {name!r}")
    return iter_chunks(generator.make_chunk, n, seed, generator.chunk_size, progress, desc=f"generate {name}")


def generate(name: str, n: int, seed: int, progress: bool = True) -> dict[str, np.ndarray]:
    """``n`` images of dataset ``name`` with ground-truth masks and factors, deterministic per seed."""
    return collect(generate_chunks(name, n, seed, progress), n)


__all__ = ["GENERATORS", "Generator", "generate", "generate_chunks", "get_generator"]
