"""A small numpy ray caster for CLEVR-like scenes: pinhole camera, ground plane, one directional light.

Every pixel casts one ray (no anti-aliasing, so object masks are exact). Objects are intersected analytically
(sphere, z-rotated cube, upright cylinder), each only over the pixels of its projected bounding box, and a
depth buffer keeps the nearest hit. Shading: ambient + Lambert for all surfaces, a Blinn-Phong highlight
(weak for rubber, strong for metal) and, for metal, a tinted reflection of a simple sky gradient. Shadows are
ray-cast towards the light from every visible point; on the ground they are softened by a small blur.

World frame as in CLEVR: z up, the ground is z = 0, objects rest on it, lengths in Blender units.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, cached_property

import numpy as np

CUBE, SPHERE, CYLINDER = 1, 2, 3
_EPS = 1e-4


@dataclass(frozen=True, eq=False)
class SceneObject:
    """One object as the renderer needs it."""

    shape: int  # CUBE, SPHERE or CYLINDER
    centre: np.ndarray  # [3] world position of the object's centre (z = half its height)
    radius: float  # radius of its footprint's bounding circle (CLEVR's "size")
    half_height: float
    rotation: float  # radians about z
    colour: np.ndarray  # [3] RGB in [0, 1]
    metal: bool


@dataclass(frozen=True)
class Camera:
    """A pinhole camera looking at ``target``, with the horizontal field of view of a 35 mm lens on 32 mm."""

    position: tuple[float, float, float]
    target: tuple[float, float, float]
    height: int
    width: int
    tan_half_fov: float = 16.0 / 35.0  # horizontal

    @cached_property
    def basis(self) -> np.ndarray:
        """[3, 3] rows: forward, right, up (unit vectors)."""
        forward = np.subtract(self.target, self.position)
        forward = forward / np.linalg.norm(forward)
        right = np.cross(forward, (0.0, 0.0, 1.0))
        right /= np.linalg.norm(right)
        return np.stack([forward, right, np.cross(right, forward)])

    @cached_property
    def rays(self) -> np.ndarray:
        """[H*W, 3] unit ray directions through the pixel centres, row-major."""
        forward, right, up = self.basis
        half_h = self.tan_half_fov * self.height / self.width
        cols = ((np.arange(self.width) + 0.5) / self.width * 2 - 1) * self.tan_half_fov  # [W]
        rows = (1 - (np.arange(self.height) + 0.5) / self.height * 2) * half_h  # [H]
        dirs = forward + cols[None, :, None] * right + rows[:, None, None] * up  # [H, W, 3]
        dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
        return dirs.reshape(-1, 3)

    def project(self, points: np.ndarray) -> np.ndarray:
        """[..., 3] world points → [..., 3] (column, row, depth along the view) in the image."""
        forward, right, up = self.basis
        offset = np.asarray(points, dtype=np.float64) - np.asarray(self.position)
        depth = offset @ forward
        x = offset @ right / (depth * self.tan_half_fov)
        y = offset @ up / (depth * self.tan_half_fov * self.height / self.width)
        return np.stack([(x + 1) * self.width / 2, (1 - y) * self.height / 2, depth], axis=-1)


@dataclass(frozen=True)
class Lighting:
    """One directional key light plus ambient light, and the ground's grey."""

    direction: tuple[float, float, float]  # towards the light
    ambient: float
    key: float
    ground: float
    sky_low: float  # reflected sky brightness at the horizon and straight up (metal only)
    sky_high: float
    shadow_blur_px: int


def _local(obj: SceneObject, vectors: np.ndarray) -> np.ndarray:
    """[..., 3] world vectors → the object's frame (rotated by −rotation about z)."""
    cos, sin = np.cos(obj.rotation), np.sin(obj.rotation)
    x, y, z = vectors[..., 0], vectors[..., 1], vectors[..., 2]
    return np.stack([cos * x + sin * y, -sin * x + cos * y, z], axis=-1)


def intersect(obj: SceneObject, origins: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """[P] distance to the first hit in front of each ray (``dirs``: [P, 3] unit); inf where it misses."""
    offset = np.broadcast_to(origins - obj.centre, dirs.shape)  # [P, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        if obj.shape == SPHERE:
            b = np.einsum("pi,pi->p", offset, dirs)
            c = np.einsum("pi,pi->p", offset, offset) - obj.radius**2
            root = np.sqrt(b * b - c)  # nan where it misses
            near, far = -b - root, -b + root
            hit = np.where(near > _EPS, near, far)
        elif obj.shape == CUBE:
            o, d = _local(obj, offset), _local(obj, dirs)
            t1, t2 = (-obj.half_height - o) / d, (obj.half_height - o) / d  # slabs of the cube's faces
            near = np.minimum(t1, t2).max(axis=-1)
            far = np.maximum(t1, t2).min(axis=-1)
            hit = np.where(far >= near, np.where(near > _EPS, near, far), np.nan)
        else:
            hit = _intersect_cylinder(obj, offset, dirs)
    return np.where(hit > _EPS, hit, np.inf)


def _intersect_cylinder(obj: SceneObject, offset: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """[P] first hit of rays (origins relative to the centre) with an upright capped cylinder, else inf."""
    ox, oy, oz = offset[:, 0], offset[:, 1], offset[:, 2]
    dx, dy, dz = dirs[:, 0], dirs[:, 1], dirs[:, 2]
    a = dx * dx + dy * dy
    b = ox * dx + oy * dy
    c = ox * ox + oy * oy - obj.radius**2
    side = (-b - np.sqrt(b * b - a * c)) / a  # entry through the curved side
    side = np.where(np.abs(oz + side * dz) <= obj.half_height, side, np.nan)
    best = np.where(side > _EPS, side, np.inf)
    for cap in (obj.half_height, -obj.half_height):
        t = (cap - oz) / dz
        on_cap = (ox + t * dx) ** 2 + (oy + t * dy) ** 2 <= obj.radius**2
        best = np.where(on_cap & (t > _EPS) & (t < best), t, best)
    return best


def normals(obj: SceneObject, points: np.ndarray) -> np.ndarray:
    """[P, 3] outward unit normals at points [P, 3] on the object's surface."""
    offset = points - obj.centre
    if obj.shape == SPHERE:
        return offset / obj.radius
    if obj.shape == CUBE:
        local = _local(obj, offset)
        axis = np.abs(local).argmax(axis=-1)  # the face the point lies on
        normal = np.zeros_like(local)
        rows = np.arange(len(local))
        normal[rows, axis] = np.sign(local[rows, axis])
        cos, sin = np.cos(obj.rotation), np.sin(obj.rotation)
        x, y = normal[:, 0].copy(), normal[:, 1].copy()
        normal[:, 0], normal[:, 1] = cos * x - sin * y, sin * x + cos * y
        return normal
    radial = offset * np.array([1.0, 1.0, 0.0])
    on_cap = np.abs(np.abs(offset[:, 2]) - obj.half_height) < 1e-3
    cap_normal = np.stack([np.zeros(len(offset)), np.zeros(len(offset)), np.sign(offset[:, 2])], axis=-1)
    return np.where(on_cap[:, None], cap_normal, radial / obj.radius)


def _bounding_box(obj: SceneObject, camera: Camera) -> tuple[slice, slice]:
    """Rows and columns of the image that the object can cover (its bounding box, projected, plus 1 px)."""
    corners = np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).reshape(3, -1).T  # [8, 3]
    extent = np.array([obj.radius, obj.radius, obj.half_height])
    pixels = camera.project(obj.centre + corners * extent)  # [8, 3]
    col0, row0 = np.floor(pixels[:, :2].min(axis=0)).astype(int) - 1
    col1, row1 = np.ceil(pixels[:, :2].max(axis=0)).astype(int) + 1
    rows = slice(max(row0, 0), min(row1 + 1, camera.height))
    cols = slice(max(col0, 0), min(col1 + 1, camera.width))
    return rows, cols


def _box_blur(image: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2·radius+1)² window, edges replicated."""
    size = 2 * radius + 1
    padded = np.pad(image, radius, mode="edge")
    rows = sum(padded[i : i + image.shape[0]] for i in range(size))
    return sum(rows[:, j : j + image.shape[1]] for j in range(size)) / size**2


def render(objects: list[SceneObject], camera: Camera, lighting: Lighting) -> tuple[np.ndarray, np.ndarray]:
    """Render a scene: RGB image [H, W, 3] uint8, and owner [H, W] int (0 ground, k for objects[k-1])."""
    origin, dirs = np.asarray(camera.position), camera.rays  # [3], [P, 3]
    depth = -origin[2] / dirs[:, 2]  # [P] every ray looks down onto the ground
    owner = np.zeros(len(dirs), dtype=np.int64)  # [P]
    grid = np.arange(len(dirs)).reshape(camera.height, camera.width)
    for k, obj in enumerate(objects, start=1):
        rows, cols = _bounding_box(obj, camera)
        pixels = grid[rows, cols].ravel()
        t = intersect(obj, origin, dirs[pixels])
        nearer = t < depth[pixels]
        depth[pixels[nearer]] = t[nearer]
        owner[pixels[nearer]] = k

    points = origin + depth[:, None] * dirs  # [P, 3]
    normal = np.zeros_like(points)
    normal[:, 2] = 1.0
    for k, obj in enumerate(objects, start=1):
        mine = owner == k
        normal[mine] = normals(obj, points[mine])
    light = np.asarray(lighting.direction, dtype=np.float64)
    light /= np.linalg.norm(light)
    lit = _lit(objects, owner, points + 10 * _EPS * normal, light)  # [P]
    ground = owner == 0
    if lighting.shadow_blur_px:
        ground_image = ground.reshape(camera.height, camera.width).astype(np.float32)
        lit_ground = _box_blur((lit * ground).reshape(ground_image.shape), lighting.shadow_blur_px)
        soft = lit_ground / np.maximum(_box_blur(ground_image, lighting.shadow_blur_px), 1e-6)
        lit = np.where(ground, soft.ravel(), lit)

    dirs, normal, light = dirs.astype(np.float32), normal.astype(np.float32), light.astype(np.float32)
    albedo = np.array([[lighting.ground] * 3] + [obj.colour for obj in objects], dtype=np.float32)[owner]
    diffuse = np.clip(normal @ light, 0.0, None) * lit  # [P]
    facing = np.clip(np.einsum("pi,pi->p", normal, _halfway(camera, lighting.direction)), 0.0, 1.0)
    highlight = 0.08 * facing**20 * lit  # a faint sheen on rubber and on the ground
    colour = albedo * (lighting.ambient + lighting.key * diffuse)[:, None] + highlight[:, None]

    metal = np.array([False] + [obj.metal for obj in objects])[owner]
    d, n = dirs[metal], normal[metal]
    reflected_z = d[:, 2] - 2 * np.einsum("pi,pi->p", d, n) * n[:, 2]
    sky = lighting.sky_low + (lighting.sky_high - lighting.sky_low) * np.clip(reflected_z, 0.0, 1.0)
    shine = 0.5 * lighting.ambient + 0.45 * lighting.key * diffuse[metal] + sky
    colour[metal] = albedo[metal] * shine[:, None] + (0.9 * facing[metal] ** 80 * lit[metal])[:, None]
    image = np.rint(np.clip(colour, 0.0, 1.0) * 255).astype(np.uint8)
    return image.reshape(camera.height, camera.width, 3), owner.reshape(camera.height, camera.width)


@cache
def _halfway(camera: Camera, direction: tuple[float, float, float]) -> np.ndarray:
    """[P, 3] float32 unit vectors halfway between each pixel's view direction and the light (Blinn-Phong)."""
    halfway = np.asarray(direction) / np.linalg.norm(direction) - camera.rays
    return (halfway / np.linalg.norm(halfway, axis=-1, keepdims=True)).astype(np.float32)


def _lit(objects: list[SceneObject], owner: np.ndarray, starts: np.ndarray, light: np.ndarray) -> np.ndarray:
    """[P] 1 where the ray from each start point towards the light is free, 0 where an object blocks it."""
    # light-space coordinates: a ray towards the light keeps (a, b) and increases s
    across = np.cross(light, (1.0, 0.0, 0.0) if abs(light[0]) < 0.9 else (0.0, 1.0, 0.0))
    across /= np.linalg.norm(across)
    frame = np.stack([across, np.cross(light, across), light], axis=1)  # [3, 3] columns a, b, s
    a, b, s = (starts @ frame).T  # [P] each
    lit = np.ones(len(starts), dtype=np.float32)
    for k, obj in enumerate(objects, start=1):
        centre_a, centre_b, centre_s = obj.centre @ frame
        bound = obj.radius**2 + obj.half_height**2  # squared radius of the object's bounding sphere
        near = ((a - centre_a) ** 2 + (b - centre_b) ** 2 < bound) & (s < centre_s + np.sqrt(bound))
        candidates = np.nonzero(near & (owner != k))[0]
        towards_light = np.broadcast_to(light, (len(candidates), 3))
        blocked = np.isfinite(intersect(obj, starts[candidates], towards_light))
        lit[candidates[blocked]] = 0.0
    return lit
