"""Seeded, chunked generation: every chunk of images has its own random stream.

Chunk ``j`` of a dataset generated with seed ``s`` always draws from ``numpy.random.default_rng([s, j])`` and
always produces ``chunk_size`` images (the last chunk is cut to length). So the images do not depend on ``n``
(the first 100 images of a 1000-image set are the 100-image set), nor on whether a progress bar is shown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
from tqdm.auto import tqdm

Sample = dict[str, np.ndarray]
ChunkMaker = Callable[[np.random.Generator, int], Sample]


def iter_chunks(
    make_chunk: ChunkMaker, n: int, seed: int, chunk_size: int, progress: bool, desc: str
) -> Iterator[Sample]:
    """Yield consecutive slices of the ``n``-image dataset, each a dict of arrays (≤ chunk_size images)."""
    bar = tqdm(total=n, desc=desc, unit="img", disable=None if progress else True, leave=False)
    try:
        # at least one chunk, so that n == 0 still yields correctly shaped empty arrays
        for index, start in enumerate(range(0, max(n, 1), chunk_size)):
            chunk = make_chunk(np.random.default_rng([seed, index]), chunk_size)
            count = min(chunk_size, n - start)
            yield {key: value[:count] for key, value in chunk.items()}
            bar.update(count)
    finally:
        bar.close()


def collect(chunks: Iterator[Sample], n: int) -> Sample:
    """Concatenate the chunks of an ``n``-image dataset into one dict of arrays (allocated once)."""
    out: Sample = {}
    start = 0
    for chunk in chunks:
        count = len(next(iter(chunk.values())))
        for key, value in chunk.items():
            if key not in out:
                out[key] = np.empty((n, *value.shape[1:]), dtype=value.dtype)
            out[key][start : start + count] = value
        start += count
    return out
