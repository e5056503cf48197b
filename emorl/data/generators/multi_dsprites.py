"""Multi-dSprites "colored on grayscale" look-alike: 2–5 HSV-coloured sprites on a grey background, 64×64.

Layout of one image (DeepMind's Multi-Object Datasets layout, docs/data.md#hdf5-layout):
    imgs     uint8   [64, 64, 3]
    masks    uint8   [6, 64, 64, 1]   0/255; entity 0 = background, entities 1..n = sprites in drawing order
    factors  float32 [6, 9]           FACTOR_NAMES, visibility last

Factor columns (``FACTOR_NAMES``):
    x, y          sprite centre in dSprites' position units, in [0, 1]; the centre pixel coordinate (column,
                  row; pixel ``c`` spans ``[c, c+1)``) is ``64 * (0.125 + 0.75 * x)``, so a sprite's centre
                  stays in the middle 48 pixels, like dSprites' 32 positions
    shape         1 square, 2 ellipse, 3 heart (dSprites' latent values); 0 = no sprite (background, absent)
    scale         in [0.5, 1] (dSprites' range); a square of scale 1 is 18 px wide
    orientation   radians in [0, 2π), counter-clockwise on screen
    color_r/g/b   the sprite's RGB colour in [0, 1]; its pixels are ``round(255 * colour)``. For the
                  background row it is the background's grey level (r = g = b)
    visibility    1 for the background and the n sprites, 0 for the 5 - n empty slots

Matches DeepMind's data: 64×64, a uniform grey background of random brightness, 2–5 sprites (number uniform)
of the three dSprites shapes with random scale, rotation, position and a colour drawn in HSV, later sprites
occluding earlier ones, masks ``[6,64,64,1]``, colour stored as RGB.

Differences (deliberate): sprites are rasterised from implicit shape equations (pixel-centre test, no
anti-aliasing, like dSprites' binary sprites) instead of the dSprites bitmaps; scale, orientation and position
are continuous instead of dSprites' 6/40/32 grid values; hue ~ U[0, 1), saturation and value ~ U[0.5, 1] so
that sprites stand out from the grey; background brightness ~ U[0, 1]. Each sprite keeps at least
``MIN_VISIBLE_PX`` visible pixels (layouts are resampled otherwise), so no present sprite has an empty mask:
a mask holds the visible part only, occluded pixels belong to the occluder.
"""

from __future__ import annotations

import numpy as np

IMAGE_SIZE = 64
MIN_SPRITES, MAX_SPRITES = 2, 5
MAX_ENTITIES = MAX_SPRITES + 1
MIN_VISIBLE_PX = 16
SQUARE_HALF_SIDE_PX = 9.0  # at scale 1; the other shapes have about the same area
FACTOR_NAMES = ("x", "y", "shape", "scale", "orientation", "color_r", "color_g", "color_b", "visibility")
SQUARE, ELLIPSE, HEART = 1, 2, 3

_WINDOW_PX = 30  # every sprite fits a 30×30 window around its centre (the widest, the ellipse, is 27 px)


def _inside(shape: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether sprite-frame points (u right, v down; units of the half-side) lie inside each sprite's shape.

    ``shape`` is [M]; ``u``, ``v`` are [M, ...] points of each of the M sprites.
    """
    inside = np.zeros(u.shape, dtype=bool)
    square, ellipse, heart = (shape == code for code in (SQUARE, ELLIPSE, HEART))
    inside[square] = np.maximum(np.abs(u[square]), np.abs(v[square])) <= 1.0
    inside[ellipse] = (u[ellipse] / 1.5) ** 2 + (v[ellipse] / 0.75) ** 2 <= 1.0
    x, y = u[heart] / 1.1, -v[heart] / 1.1 + 0.15  # heart curve coordinates: y up, recentred, shrunk
    inside[heart] = (x**2 + y**2 - 1.0) ** 3 - x**2 * y**3 <= 0.0
    return inside


def _rasterise(
    shape: np.ndarray, x: np.ndarray, y: np.ndarray, scale: np.ndarray, orientation: np.ndarray
) -> np.ndarray:
    """Bool masks [M, 64, 64] of M sprites with the given factors (each an [M] array)."""
    centre_col = (IMAGE_SIZE * (0.125 + 0.75 * x)).astype(np.float32)  # [M]
    centre_row = (IMAGE_SIZE * (0.125 + 0.75 * y)).astype(np.float32)
    left = np.floor(centre_col).astype(np.int64) - _WINDOW_PX // 2  # window corner, [M]
    top = np.floor(centre_row).astype(np.int64) - _WINDOW_PX // 2
    offsets = np.arange(_WINDOW_PX, dtype=np.float32) + 0.5
    dx = (left - centre_col)[:, None, None] + offsets[None, None, :]  # [M, 1, w] pixel centre − sprite centre
    dy = (top - centre_row)[:, None, None] + offsets[None, :, None]  # [M, w, 1]
    cos = np.cos(orientation).astype(np.float32)[:, None, None]
    sin = np.sin(orientation).astype(np.float32)[:, None, None]
    half_side = (SQUARE_HALF_SIDE_PX * scale).astype(np.float32)[:, None, None]
    u = (cos * dx - sin * dy) / half_side  # [M, w, w]; counter-clockwise on screen (rows grow downwards)
    v = (sin * dx + cos * dy) / half_side
    window = _inside(shape, u, v)  # [M, w, w]

    pixels = np.arange(IMAGE_SIZE)
    rows, cols = pixels - top[:, None], pixels - left[:, None]  # [M, 64] canvas → window coordinates
    in_rows, in_cols = (rows >= 0) & (rows < _WINDOW_PX), (cols >= 0) & (cols < _WINDOW_PX)
    rows, cols = np.clip(rows, 0, _WINDOW_PX - 1), np.clip(cols, 0, _WINDOW_PX - 1)
    sprite = np.arange(len(shape))[:, None, None]
    return window[sprite, rows[:, :, None], cols[:, None, :]] & in_rows[:, :, None] & in_cols[:, None, :]


def _hsv_to_rgb(hue: np.ndarray, saturation: np.ndarray, value: np.ndarray) -> np.ndarray:
    """RGB [..., 3] in [0, 1] of HSV colours with every channel in [0, 1]."""
    sector = hue * 6.0
    channel = (np.array([5.0, 3.0, 1.0]) + sector[..., None]) % 6.0  # [..., 3] for r, g, b
    ramp = np.clip(np.minimum(channel, 4.0 - channel), 0.0, 1.0)
    return value[..., None] * (1.0 - saturation[..., None] * ramp)


def generate_chunk(rng: np.random.Generator, count: int) -> dict[str, np.ndarray]:
    """Draw ``count`` images with their masks and factors (layout in the module docstring)."""
    slots = (count, MAX_SPRITES)
    number = np.zeros(count, dtype=np.int64)
    shape = np.zeros(slots, dtype=np.int64)
    x, y, scale, orientation = (np.zeros(slots) for _ in range(4))
    visible = np.zeros((*slots, IMAGE_SIZE, IMAGE_SIZE), dtype=bool)  # [C, 5, H, W]
    redo = np.ones(count, dtype=bool)
    while redo.any():
        todo = (int(redo.sum()), MAX_SPRITES)
        number[redo] = rng.integers(MIN_SPRITES, MAX_SPRITES + 1, size=todo[0])
        shape[redo] = rng.integers(SQUARE, HEART + 1, size=todo)
        x[redo], y[redo] = rng.random(todo), rng.random(todo)
        scale[redo] = rng.uniform(0.5, 1.0, size=todo)
        orientation[redo] = rng.uniform(0.0, 2 * np.pi, size=todo)
        present = np.arange(MAX_SPRITES) < number[redo][:, None]  # [c, 5]
        factors = (a[redo].ravel() for a in (shape, x, y, scale, orientation))
        drawn = _rasterise(*factors).reshape(*todo, IMAGE_SIZE, IMAGE_SIZE) & present[..., None, None]
        covered = np.zeros_like(drawn[:, 0])
        for k in reversed(range(MAX_SPRITES)):  # later sprites occlude earlier ones
            drawn[:, k] &= ~covered
            covered |= drawn[:, k]
        visible[redo] = drawn
        too_hidden = present & (drawn.sum(axis=(2, 3)) < MIN_VISIBLE_PX)
        redo[redo] = too_hidden.any(axis=1)
    present = np.arange(MAX_SPRITES) < number[:, None]  # [C, 5]
    shape, x, y, scale, orientation = (np.where(present, a, 0) for a in (shape, x, y, scale, orientation))

    grey = rng.random(count)  # [C]
    hue, saturation, value = rng.random(slots), rng.uniform(0.5, 1.0, slots), rng.uniform(0.5, 1.0, slots)
    sprite_colour = _hsv_to_rgb(hue, saturation, value) * present[..., None]  # [C, 5, 3]
    colour = np.concatenate([np.repeat(grey[:, None, None], 3, axis=2), sprite_colour], axis=1)  # [C, E, 3]

    entity = np.concatenate([~visible.any(axis=1, keepdims=True), visible], axis=1)  # [C, E, H, W]
    owner = entity.argmax(axis=1)  # [C, H, W] entity index of each pixel
    pixel_colour = np.rint(colour * 255).astype(np.uint8)  # [C, E, 3]
    imgs = pixel_colour[np.arange(count)[:, None, None], owner]  # [C, H, W, 3]
    masks = (entity[..., None] * np.uint8(255)).astype(np.uint8)  # [C, E, H, W, 1]

    factors = np.zeros((count, MAX_ENTITIES, len(FACTOR_NAMES)), dtype=np.float32)  # [C, E, F]
    factors[:, 1:, :5] = np.stack([x, y, shape, scale, orientation], axis=-1)
    factors[:, :, 5:8] = colour
    factors[:, :, -1] = np.concatenate([np.ones((count, 1)), present], axis=1)
    return {"imgs": imgs, "masks": masks, "factors": factors}
