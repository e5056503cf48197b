"""Behaviour of the offline dataset generators (reference layout, docs/data.md#hdf5-layout)."""

from __future__ import annotations

import numpy as np
import pytest

from emorl.data.generators import GENERATORS, generate, get_generator

SIZES = {"tetrominoes": 40, "mini_tetrominoes": 40, "multi_dsprites": 40, "clevr6": 4}  # CLEVR: ~20 img/s
OBJECT_COUNTS = {
    "tetrominoes": (3, 3),
    "mini_tetrominoes": (2, 2),
    "multi_dsprites": (2, 5),
    "clevr6": (3, 6),
}
BLOCK_PX = {"tetrominoes": 5, "mini_tetrominoes": 2}  # the two tetromino datasets
NAMES = [name for name in SIZES if name in GENERATORS]


@pytest.fixture(scope="module", params=NAMES)
def dataset(request: pytest.FixtureRequest) -> tuple[str, dict[str, np.ndarray]]:
    name = request.param
    return name, generate(name, SIZES[name], seed=7, progress=False)


def _objects(masks: np.ndarray) -> np.ndarray:
    """[N, E-1, H, W] bool object masks (background dropped)."""
    return masks[:, 1:, ..., 0] == 255


def test_arrays_have_the_registered_shapes_and_dtypes(dataset):
    name, data = dataset
    spec = get_generator(name)
    n, (h, w, _), e, f = SIZES[name], spec.image_shape, spec.max_entities, len(spec.factor_names)
    assert set(data) == {"imgs", "masks", "factors"}
    assert data["imgs"].shape == (n, h, w, 3) and data["imgs"].dtype == np.uint8
    assert data["masks"].shape == (n, e, h, w, 1) and data["masks"].dtype == np.uint8
    assert data["factors"].shape == (n, e, f) and data["factors"].dtype == np.float32
    assert spec.factor_names[-1] == "visibility"


def test_masks_are_binary_0_or_255(dataset):
    _, data = dataset
    assert set(np.unique(data["masks"])) <= {0, 255}


def test_masks_partition_every_pixel(dataset):
    _, data = dataset
    owners = (data["masks"] == 255).sum(axis=1)  # [N, H, W, 1]
    assert (owners == 1).all()


def test_background_mask_is_the_pixels_no_object_covers(dataset):
    _, data = dataset
    background = data["masks"][:, 0, ..., 0] == 255
    np.testing.assert_array_equal(background, ~_objects(data["masks"]).any(axis=1))


def test_visibility_marks_exactly_the_entities_with_pixels(dataset):
    _, data = dataset
    has_pixels = (data["masks"] == 255).any(axis=(2, 3, 4))  # [N, E]
    np.testing.assert_array_equal(data["factors"][..., -1], has_pixels.astype(np.float32))
    assert (data["factors"][:, 0, -1] == 1).all()


def test_absent_slots_have_all_zero_factors(dataset):
    _, data = dataset
    absent = data["factors"][..., -1] == 0  # [N, E]
    assert (data["factors"][absent] == 0).all()


def test_present_objects_fill_the_first_slots(dataset):
    _, data = dataset
    visible = data["factors"][:, 1:, -1]  # [N, E-1]
    count = visible.sum(axis=1).astype(int)
    expected = np.arange(visible.shape[1])[None, :] < count[:, None]
    np.testing.assert_array_equal(visible.astype(bool), expected)


def test_object_count_per_image_is_in_the_dataset_range(dataset):
    name, data = dataset
    low, high = OBJECT_COUNTS[name]
    count = data["factors"][:, 1:, -1].sum(axis=1)
    assert count.min() >= low and count.max() <= high


def test_same_seed_gives_identical_arrays(dataset):
    name, data = dataset
    again = generate(name, SIZES[name], seed=7, progress=True)
    for key in data:
        np.testing.assert_array_equal(again[key], data[key])


def test_different_seeds_give_different_images(dataset):
    name, data = dataset
    other = generate(name, SIZES[name], seed=8, progress=False)
    assert not np.array_equal(other["imgs"], data["imgs"])
    assert not np.array_equal(other["factors"], data["factors"])


def test_first_images_do_not_depend_on_how_many_are_generated(dataset):
    name, data = dataset
    prefix = generate(name, 3, seed=7, progress=False)
    for key in data:
        np.testing.assert_array_equal(prefix[key], data[key][:3])


def test_no_progress_bar_when_progress_is_off(capfd):
    generate("tetrominoes", 300, seed=0, progress=False)
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


def test_zero_images_give_empty_arrays_of_the_right_shape():
    data = generate("tetrominoes", 0, seed=0, progress=False)
    assert data["imgs"].shape == (0, 35, 35, 3)
    assert data["masks"].shape == (0, 4, 35, 35, 1)
    assert data["factors"].shape == (0, 4, 7)


def test_unknown_name_is_refused_with_the_known_names():
    with pytest.raises(ValueError, match=r"unknown dataset generator 'mnist'.*tetrominoes"):
        generate("mnist", 2, seed=0)


def test_negative_count_is_refused():
    with pytest.raises(ValueError, match="n=-1"):
        generate("tetrominoes", -1, seed=0)


@pytest.fixture(scope="module", params=list(BLOCK_PX))
def tetrominoes(request: pytest.FixtureRequest) -> tuple[str, dict[str, np.ndarray]]:
    return request.param, generate(request.param, SIZES[request.param], seed=7, progress=False)


def test_tetrominoes_never_overlap_or_touch(tetrominoes):
    _, data = tetrominoes
    pieces = _objects(data["masks"])  # [N, P, H, W]
    padded = np.pad(pieces, ((0, 0), (0, 0), (1, 1), (1, 1)))
    h, w = pieces.shape[-2:]
    neighbourhood = np.zeros_like(pieces)
    for dr in range(3):
        for dc in range(3):
            neighbourhood |= padded[:, :, dr : dr + h, dc : dc + w]
    for a in range(pieces.shape[1]):
        for b in range(pieces.shape[1]):
            if a != b:
                assert not (neighbourhood[:, a] & pieces[:, b]).any()


def test_each_tetromino_has_four_square_blocks(tetrominoes):
    name, data = tetrominoes
    area = _objects(data["masks"]).sum(axis=(2, 3))
    assert (area == 4 * BLOCK_PX[name] ** 2).all()


def test_tetromino_pixels_have_their_factor_colour(tetrominoes):
    _, data = tetrominoes
    imgs, pieces = data["imgs"], _objects(data["masks"])
    colour = np.rint(data["factors"][:, 1:, 3:6] * 255).astype(np.uint8)  # [N, P, 3]
    for i in range(len(imgs)):
        for k in range(pieces.shape[1]):
            assert (imgs[i][pieces[i, k]] == colour[i, k]).all()


def test_tetromino_background_is_black(tetrominoes):
    _, data = tetrominoes
    background = data["masks"][:, 0, ..., 0] == 255
    assert (data["imgs"][background] == 0).all()


@pytest.mark.parametrize("name", list(BLOCK_PX))
def test_tetrominoes_use_17_shapes_and_6_colours(name: str):
    data = generate(name, 512, seed=1, progress=False)
    shapes = np.unique(data["factors"][:, 1:, 2])
    colours = np.unique(data["factors"][:, 1:, 3:6].reshape(-1, 3), axis=0)
    np.testing.assert_array_equal(shapes, np.arange(1, 18))
    assert len(colours) == 6


def test_mini_tetrominoes_of_one_image_never_share_a_colour():
    colours = generate("mini_tetrominoes", 512, seed=1, progress=False)["factors"][:, 1:, 3:6]  # [N, 2, 3]
    assert (colours[:, 0] != colours[:, 1]).any(axis=1).all()


@pytest.fixture(scope="module")
def sprites() -> dict[str, np.ndarray]:
    return generate("multi_dsprites", SIZES["multi_dsprites"], seed=7, progress=False)


def test_every_pixel_has_the_colour_of_the_entity_that_owns_it(sprites):
    owner = sprites["masks"][..., 0].argmax(axis=1)  # [N, H, W]
    colour = np.rint(sprites["factors"][..., 5:8] * 255).astype(np.uint8)  # [N, E, 3]
    expected = colour[np.arange(len(owner))[:, None, None], owner]  # [N, H, W, 3]
    np.testing.assert_array_equal(sprites["imgs"], expected)


def test_sprite_background_is_grey(sprites):
    background = sprites["factors"][:, 0, 5:8]
    assert (background[:, 0] == background[:, 1]).all() and (background[:, 1] == background[:, 2]).all()


def test_sprites_use_the_three_dsprites_shapes_and_dsprites_scale_range(sprites):
    present = sprites["factors"][:, 1:, -1] == 1
    shapes = sprites["factors"][:, 1:, 2][present]
    scales = sprites["factors"][:, 1:, 3][present]
    assert set(np.unique(shapes)) == {1.0, 2.0, 3.0}
    assert scales.min() >= 0.5 and scales.max() <= 1.0


@pytest.mark.parametrize("name", NAMES)
def test_generators_agree_with_the_reference_layout(name):
    from emorl.data.layout import dataset_spec

    spec, generator = dataset_spec(name), get_generator(name)
    assert generator.image_shape == (*spec.image_size, 3)
    assert generator.max_entities == spec.max_entities
    assert generator.factor_names == spec.factor_names


@pytest.fixture(scope="module")
def clevr() -> dict[str, np.ndarray]:
    return generate("clevr6", SIZES["clevr6"], seed=7, progress=False)


def _clevr_objects(data: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Per image, the [n, F] factor rows of its objects."""
    return [factors[1:][factors[1:, -1] == 1] for factors in data["factors"]]


def test_clevr_objects_never_intersect(clevr):
    from emorl.data.generators.clevr import SIZES as CLEVR_SIZES

    radii = np.array(list(CLEVR_SIZES.values()))
    for objects in _clevr_objects(clevr):
        xy, radius = objects[:, :2], radii[objects[:, 4].astype(int) - 1]
        distance = np.linalg.norm(xy[:, None] - xy[None], axis=-1)
        clearance = distance - radius[:, None] - radius[None]
        assert (clearance[~np.eye(len(objects), dtype=bool)] > 0).all()


def test_clevr_objects_are_centred_in_the_reader_crop(clevr):
    for objects in _clevr_objects(clevr):
        column, row = objects[:, 8], objects[:, 9]
        assert ((row >= 29) & (row <= 220) & (column >= 64) & (column <= 255)).all()


def test_clevr_objects_rest_on_the_ground_with_codes_in_range(clevr):
    from emorl.data.generators.clevr import COLOURS, MATERIALS, SHAPES
    from emorl.data.generators.clevr import SIZES as CLEVR_SIZES

    for objects in _clevr_objects(clevr):
        size, material, shape, colour = objects[:, 4:8].T.astype(int)
        assert ((size >= 1) & (size <= len(CLEVR_SIZES))).all()
        assert ((material >= 1) & (material <= len(MATERIALS))).all()
        assert ((shape >= 1) & (shape <= len(SHAPES))).all()
        assert ((colour >= 1) & (colour <= len(COLOURS))).all()
        radius = np.array(list(CLEVR_SIZES.values()))[size - 1]
        half_height = np.where(shape == SHAPES["cube"], radius / np.sqrt(2), radius)
        np.testing.assert_allclose(objects[:, 2], half_height, rtol=1e-6)


def test_every_clevr_object_shows_enough_pixels(clevr):
    from emorl.data.generators.clevr import MIN_VISIBLE_PX

    area = (clevr["masks"][:, 1:] == 255).sum(axis=(2, 3, 4))
    visible = clevr["factors"][:, 1:, -1] == 1
    assert (area[visible] >= MIN_VISIBLE_PX).all()


def test_clevr_shadows_darken_the_ground_where_the_object_blocks_the_light():
    from emorl.data.generators.clevr import CAMERA, LIGHTING
    from emorl.data.generators.clevr_render import SPHERE, SceneObject, render

    sphere = SceneObject(SPHERE, np.array([0.0, 0.0, 0.7]), 0.7, 0.7, 0.0, np.array([1.0, 0.0, 0.0]), False)
    with_sphere, owner = render([sphere], CAMERA, LIGHTING)
    empty, _ = render([], CAMERA, LIGHTING)
    darker = (owner == 0) & (with_sphere.sum(axis=-1).astype(int) < empty.sum(axis=-1).astype(int) - 30)
    assert darker.sum() > 200

    rows, columns = np.nonzero(darker)
    rays = CAMERA.rays.reshape(CAMERA.height, CAMERA.width, 3)[rows, columns]  # [S, 3]
    position = np.asarray(CAMERA.position)
    ground = position - (position[2] / rays[:, 2])[:, None] * rays  # the ground point each dark pixel sees
    light = np.asarray(LIGHTING.direction) / np.linalg.norm(LIGHTING.direction)
    to_centre = sphere.centre - ground  # [S, 3]
    miss = np.linalg.norm(to_centre - (to_centre @ light)[:, None] * light, axis=-1)  # light ray to centre
    assert (miss <= sphere.radius + 0.15).all()  # 0.15: the ground shadow's soft edge
    assert (ground[:, :2] @ light[:2]).mean() < 0  # mostly on the side away from the light
