"""Tetrominoes-like images: 35×35, black background, exactly 3 coloured tetrominoes that never touch.

Layout of one image (DeepMind's Multi-Object Datasets layout, docs/data.md#hdf5-layout):
    imgs     uint8   [35, 35, 3]
    masks    uint8   [4, 35, 35, 1]   0/255; entity 0 = background, entities 1..3 = the pieces
    factors  float32 [4, 7]           FACTOR_NAMES = (x, y, shape, color_r, color_g, color_b, visibility)

Factors of a piece: ``x``, ``y`` = centre of its bounding box in pixels (column, row; pixel ``c`` spans
``[c, c+1)``); ``shape`` = 1 + index into ``SHAPES`` (1..17); ``color_r/g/b`` = its RGB colour in [0, 1];
``visibility`` = 1. The background row is all zeros except ``visibility`` = 1 (code 0 means "no shape").

How it matches DeepMind's Tetrominoes: 35×35 images, black background, exactly 3 non-overlapping pieces,
17 shapes/orientations, their 6 colours (red, green, blue, yellow, magenta, cyan), masks ``[4,35,35,1]``,
colour stored as 3 floats per entity like their reader's ``color`` feature.

Choices and differences (deliberate; the real files were not available to compare pixel by pixel):
  * Shapes: DeepMind does not say which 17 of the 19 fixed tetrominoes it uses. We take all 19 minus the
    two straight "I" pieces, i.e. O (1), T (4), S (2), Z (2), J (4), L (4) = 17. Without the I pieces every
    piece fits a 3×3-block box, so three pieces always fit the 35×35 canvas with room around them; a
    4-block straight piece would span 20 of the 35 pixels.
  * Each block is a flat 5×5-pixel square (a 3×3-block box is 15×15 px). Pieces sit at any integer pixel
    offset inside the canvas (not on a block grid). The real data may shade blocks differently.
  * Palette: six saturated colours, red, green, blue, yellow, magenta, cyan; each piece draws its colour
    independently, so two pieces may share a colour.
  * Pieces never overlap and never touch, not even diagonally (≥ 1 px of background between any two), so
    every piece is a separate region even when two pieces share a colour. Layouts are resampled until this
    holds.

``TetrominoCanvas`` draws any image size, piece count and block size; ``mini_tetrominoes`` is a smaller one.
"""

from __future__ import annotations

import numpy as np

IMAGE_SIZE = 35
NUM_PIECES = 3
MAX_ENTITIES = NUM_PIECES + 1
BLOCK_PX = 5
FACTOR_NAMES = ("x", "y", "shape", "color_r", "color_g", "color_b", "visibility")

PALETTE = np.array(  # [6, 3] uint8 RGB
    [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [255, 0, 255], [0, 255, 255]], dtype=np.uint8
)

_FREE_TETROMINOES = {  # one orientation of each, as (row, col) block cells
    "O": ((0, 0), (0, 1), (1, 0), (1, 1)),
    "T": ((0, 0), (0, 1), (0, 2), (1, 1)),
    "S": ((0, 1), (0, 2), (1, 0), (1, 1)),
    "Z": ((0, 0), (0, 1), (1, 1), (1, 2)),
    "J": ((0, 0), (1, 0), (1, 1), (1, 2)),
    "L": ((0, 2), (1, 0), (1, 1), (1, 2)),
}


def _orientations(cells: tuple[tuple[int, int], ...]) -> list[np.ndarray]:
    """The distinct 90° rotations of a piece, each a [3, 3] bool block grid anchored at the top-left."""
    grid = np.zeros((3, 3), dtype=bool)
    grid[tuple(np.array(cells).T)] = True
    found: list[np.ndarray] = []
    for turns in range(4):
        rotated = np.rot90(grid, turns)
        rows, cols = np.nonzero(rotated)
        anchored = np.zeros((3, 3), dtype=bool)
        anchored[rows - rows.min(), cols - cols.min()] = True
        if not any(np.array_equal(anchored, seen) for seen in found):
            found.append(anchored)
    return found


SHAPES: tuple[np.ndarray, ...] = tuple(
    grid for cells in _FREE_TETROMINOES.values() for grid in _orientations(cells)
)  # 17 × [3, 3] bool block grids; shape code = 1 + index


class TetrominoCanvas:
    """Draws images of ``pieces`` non-touching tetrominoes with ``block_px`` blocks on a black square.

    ``distinct_colours`` gives the pieces of one image different colours (drawn without replacement).
    """

    def __init__(self, image_size: int, pieces: int, block_px: int, distinct_colours: bool = False):
        if distinct_colours and pieces > len(PALETTE):
            raise ValueError(f"{pieces} pieces cannot have distinct colours from a palette of {len(PALETTE)}")
        self.image_size, self.pieces, self.distinct_colours = image_size, pieces, distinct_colours
        block = np.ones((block_px, block_px), dtype=bool)
        self.templates = np.stack([np.kron(grid, block) for grid in SHAPES])  # [17, 3b, 3b] pixel masks
        self.height_px = self.templates.any(axis=2).sum(axis=1)  # [17]
        self.width_px = self.templates.any(axis=1).sum(axis=1)  # [17]
        if self.templates.shape[1] > image_size:
            raise ValueError(f"pieces of {block_px}-px blocks do not fit a {image_size}-px image")

    @property
    def max_entities(self) -> int:
        return self.pieces + 1

    def _rasterise(self, shape: np.ndarray, top: np.ndarray, left: np.ndarray) -> np.ndarray:
        """Bool masks [..., S, S] of pieces ``shape`` (template index) with their box at (top, left)."""
        side = self.templates.shape[1]
        pixels = np.arange(self.image_size)
        rows = pixels - top[..., None]  # [..., S]
        cols = pixels - left[..., None]  # [..., S]
        inside = ((rows >= 0) & (rows < side))[..., :, None] & ((cols >= 0) & (cols < side))[..., None, :]
        rows, cols = np.clip(rows, 0, side - 1), np.clip(cols, 0, side - 1)
        return self.templates[shape[..., None, None], rows[..., :, None], cols[..., None, :]] & inside

    def _touching(self, pieces: np.ndarray) -> np.ndarray:
        """[C] bool: whether any two of the [C, P, S, S] piece masks overlap or are 8-neighbours."""
        size = self.image_size
        padded = np.pad(pieces, ((0, 0), (0, 0), (1, 1), (1, 1)))
        grown = np.zeros_like(pieces)
        for dr in range(3):
            for dc in range(3):
                grown |= padded[:, :, dr : dr + size, dc : dc + size]
        clash = np.zeros(len(pieces), dtype=bool)
        for a in range(self.pieces):
            for b in range(a + 1, self.pieces):
                clash |= (grown[:, a] & pieces[:, b]).any(axis=(1, 2))
        return clash

    def _colours(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """[C, P] palette indices, distinct within an image when asked."""
        if not self.distinct_colours:
            return rng.integers(0, len(PALETTE), size=(count, self.pieces))
        return np.argsort(rng.random((count, len(PALETTE))), axis=1)[:, : self.pieces]

    def generate_chunk(self, rng: np.random.Generator, count: int) -> dict[str, np.ndarray]:
        """Draw ``count`` images with their masks and factors (layout in the module docstring)."""
        size, pieces_per_image = self.image_size, self.pieces
        shape = np.zeros((count, pieces_per_image), dtype=np.int64)
        top = np.zeros_like(shape)
        left = np.zeros_like(shape)
        pieces = np.zeros((count, pieces_per_image, size, size), dtype=bool)  # [C, P, H, W]
        redo = np.ones(count, dtype=bool)
        while redo.any():
            todo = int(redo.sum())
            shape[redo] = rng.integers(0, len(SHAPES), size=(todo, pieces_per_image))
            heights, widths = self.height_px[shape[redo]], self.width_px[shape[redo]]
            top[redo] = np.floor(rng.random((todo, pieces_per_image)) * (size - heights + 1))
            left[redo] = np.floor(rng.random((todo, pieces_per_image)) * (size - widths + 1))
            pieces[redo] = self._rasterise(shape[redo], top[redo], left[redo])
            redo[redo] = self._touching(pieces[redo])
        colour = self._colours(rng, count)

        imgs = np.einsum("ckhw,ckd->chwd", pieces.astype(np.uint8), PALETTE[colour])  # [C, H, W, 3]
        entity = np.concatenate([~pieces.any(axis=1, keepdims=True), pieces], axis=1)  # [C, E, H, W]
        masks = (entity[..., None] * np.uint8(255)).astype(np.uint8)  # [C, E, H, W, 1]

        factors = np.zeros((count, self.max_entities, len(FACTOR_NAMES)), dtype=np.float32)  # [C, E, F]
        factors[:, 1:, 0] = left + self.width_px[shape] / 2
        factors[:, 1:, 1] = top + self.height_px[shape] / 2
        factors[:, 1:, 2] = shape + 1
        factors[:, 1:, 3:6] = PALETTE[colour] / 255.0
        factors[:, :, -1] = 1.0
        return {"imgs": imgs.astype(np.uint8), "masks": masks, "factors": factors}


TETROMINOES = TetrominoCanvas(IMAGE_SIZE, NUM_PIECES, BLOCK_PX)
generate_chunk = TETROMINOES.generate_chunk
