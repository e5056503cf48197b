"""Animated GIFs of latent traversals (docs/evaluation.md#gifs), one frame per traversal step, exactly.

Written with moviepy 2 (``ImageSequenceClip.write_gif``, which uses imageio/Pillow; no ffmpeg path is
needed). moviepy samples frame k at the float time k/fps: at 10 fps some times round down and frames are
skipped (8 frames gave 7), so only power-of-two rates are accepted, whose times are exact binary fractions
(the reference's 4 fps is one). Pillow merges identical consecutive frames, so each frame carries a thin
position bar under the image (which step of the traversal it shows): the count stays exact even for a
latent the decoder ignores.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
from moviepy import ImageSequenceClip

MIN_SIDE = 128  # small images (35×35 Tetrominoes) are enlarged, nearest neighbour, to at least this side
BAR_COLOUR = (255, 255, 255)


def traversal_frames(images: np.ndarray, min_side: int = MIN_SIDE) -> np.ndarray:
    """uint8 frames ``[S, H', W', 3]`` of ``[S, 3, H, W]`` images in [0, 1]: enlarged, position bar below."""
    steps, _, height, width = images.shape
    scale = max(1, -(-min_side // max(height, width)))  # ceil
    pixels = (np.asarray(images).transpose(0, 2, 3, 1) * 255).round().clip(0, 255).astype(np.uint8)
    pixels = pixels.repeat(scale, axis=1).repeat(scale, axis=2)  # [S, H', W', 3]
    bar_height = max(2, pixels.shape[1] // 32)
    bars = np.zeros((steps, bar_height, pixels.shape[2], 3), np.uint8)
    edges = np.linspace(0, pixels.shape[2], steps + 1).round().astype(int)
    for n in range(steps):
        bars[n, :, edges[n] : edges[n + 1]] = BAR_COLOUR
    return np.concatenate([pixels, bars], axis=1)


def write_gif(frames: np.ndarray, path: str | Path, fps: float = 4.0) -> Path:
    """Write uint8 ``[N, H, W, 3]`` frames as a looping GIF of exactly N frames at ``fps`` (a power of 2)."""
    if fps <= 0 or not math.log2(fps).is_integer():
        raise ValueError(f"GIF fps={fps} would skip frames; use a power of two such as 2, 4 or 8")
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"GIF frames must be uint8 [N, H, W, 3], got {frames.dtype} {list(frames.shape)}")
    if any(np.array_equal(a, b) for a, b in itertools.pairwise(frames)):
        raise ValueError(
            "two consecutive GIF frames are identical and would be merged into one; "
            "build the frames with traversal_frames, which marks each step"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ImageSequenceClip(list(frames), fps=fps).write_gif(path, fps=fps, loop=0, logger=None)
    return path
