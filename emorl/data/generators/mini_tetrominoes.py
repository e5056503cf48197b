"""Mini-Tetrominoes: a reduced Tetrominoes on which EMORL discovers objects in minutes on a laptop CPU.

12×12 images, black background, exactly 2 tetrominoes of 2×2-pixel blocks in two different colours, never
touching. Same layout as ``tetrominoes`` (docs/data.md#hdf5-layout), with E = 3:
    imgs     uint8   [12, 12, 3]
    masks    uint8   [3, 12, 12, 1]   0/255; entity 0 = background, entities 1..2 = the pieces
    factors  float32 [3, 7]           (x, y, shape, color_r, color_g, color_b, visibility) as in tetrominoes

How it differs from Tetrominoes (35×35, 3 pieces of 5-px blocks, colours drawn with replacement): smaller
images (a training step costs ~10× less; the foreground is ~22 % of the pixels, not ~10 %), one piece
fewer, and the two pieces of an image never share a colour. It exists to show, fast, that the model
segments (``grid=discovery``, docs/discovery.md); the paper's numbers are for the real datasets.
"""

from __future__ import annotations

from emorl.data.generators.tetrominoes import FACTOR_NAMES, TetrominoCanvas

IMAGE_SIZE = 12
NUM_PIECES = 2
BLOCK_PX = 2
MAX_ENTITIES = NUM_PIECES + 1

CANVAS = TetrominoCanvas(IMAGE_SIZE, NUM_PIECES, BLOCK_PX, distinct_colours=True)
generate_chunk = CANVAS.generate_chunk

__all__ = ["FACTOR_NAMES", "IMAGE_SIZE", "MAX_ENTITIES", "generate_chunk"]
