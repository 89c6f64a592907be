"""Per-texel source selection: landmark regions, the skin-colour model, blending, and unwrap_face."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganfit_core.texture.blend import gain_matched, multiband_blend, push_pull_fill
from ganfit_core.texture.skin import fit_skin_colour, landmark_regions, points_in_polygon

SKIN = np.array([0.78, 0.56, 0.45])
HAIR = np.array([0.18, 0.12, 0.08])
BACKGROUND = np.array([0.86, 0.87, 0.86])


def test_points_in_polygon_concave() -> None:
    l_shape = np.array([[0, 0], [4, 0], [4, 1], [1, 1], [1, 4], [0, 4]], dtype=float)
    inside = points_in_polygon(np.array([[0.5, 3.0], [3.0, 0.5], [3.0, 3.0]]), l_shape)
    assert inside.tolist() == [True, True, False]


def test_skin_colour_model_is_robust_and_rejects_hair_and_background() -> None:
    rng = np.random.default_rng(0)
    shading = rng.uniform(0.75, 1.1, (400, 1))
    skin = np.clip(SKIN * shading + rng.normal(0, 0.01, (400, 3)), 0, 1)
    hair = np.clip(HAIR + rng.normal(0, 0.02, (100, 3)), 0, 1)  # 20 % of the 'cheek' sample is stray hair
    model = fit_skin_colour(np.concatenate([skin, hair]))
    assert model.probability(skin).mean() > 0.95
    assert model.probability(hair).max() < 0.05
    assert model.probability(BACKGROUND[None]).item() == 0.0
    with pytest.raises(ValueError, match="at least 20"):
        fit_skin_colour(skin[:5])


def test_pixel_noise_keeps_the_darker_parts_of_dark_skin() -> None:
    """Dark skin's chromaticity is noisy: with the fit's pixel noise, the darker, greyer and noisier
    lower face of a dark-skinned subject (colours measured on the darkest held-out London photo)
    passes the test; hair, background and blue stay out, and bright skin is judged as tightly."""
    from ganfit_core.texture.skin import SKIN_PIXEL_NOISE

    rng = np.random.default_rng(1)
    cheek = np.array([0.346, 0.26, 0.22])  # mean unwrapped cheek/nose colour of that subject
    lower = np.array([0.263, 0.216, 0.213])  # his chin and upper lip: stubble, 24 % darker, greyer
    reference = np.clip(cheek * rng.uniform(0.85, 1.1, (300, 1)) + rng.normal(0, 0.004, (300, 3)), 0, 1)
    texels = np.clip(lower * rng.uniform(0.9, 1.1, (300, 1)) + rng.normal(0, 0.02, (300, 3)), 0, 1)
    strict = fit_skin_colour(reference)
    noisy = fit_skin_colour(reference, pixel_noise=SKIN_PIXEL_NOISE)
    assert (strict.probability(texels) > 0.5).mean() < 0.6  # without it much of the lower face fails
    assert (noisy.probability(texels) > 0.5).mean() > 0.95
    assert noisy.probability(reference).min() > 0.95
    for other in (HAIR * 0.5, BACKGROUND, np.array([0.1, 0.1, 0.35])):
        assert noisy.probability(other[None]).item() == 0.0
    # The widening goes with 1 / brightness: a bright face's test widens less than a dark one's.
    bright = np.clip(SKIN * rng.uniform(0.85, 1.1, (300, 1)) + rng.normal(0, 0.004, (300, 3)), 0, 1)
    grey = np.array([[0.5, 0.5, 0.5]])
    assert fit_skin_colour(bright, pixel_noise=SKIN_PIXEL_NOISE).probability(grey).item() == 0.0
    ratio_bright = (fit_skin_colour(bright, pixel_noise=SKIN_PIXEL_NOISE).distance(grey)
                    / fit_skin_colour(bright).distance(grey)).item()
    ratio_dark = np.median(noisy.distance(texels)) / np.median(strict.distance(texels))
    assert ratio_bright > 0.55 and ratio_dark < 0.45


def test_teeth_are_not_lips() -> None:
    model = fit_skin_colour(np.clip(SKIN * np.linspace(0.8, 1.05, 50)[:, None], 0, 1))
    lips, teeth = np.array([[0.70, 0.38, 0.36]]), np.array([[0.92, 0.9, 0.84]])
    assert not model.teeth_like(lips).any() and model.teeth_like(teeth).all()


def test_multiband_blend_keeps_each_side_and_smooths_the_seam() -> None:
    rng = np.random.default_rng(1)
    fg = 0.6 + 0.05 * rng.standard_normal((64, 64, 3))
    bg = np.full((64, 64, 3), 0.3)
    alpha = np.zeros((64, 64))
    alpha[:, :32] = 1.0
    out = multiband_blend(fg, bg, alpha)
    np.testing.assert_allclose(out[:, :16], fg[:, :16], atol=0.03)
    np.testing.assert_allclose(out[:, 48:], bg[:, 48:], atol=0.03)
    hard = np.where(alpha[..., None] > 0, fg, bg)
    step = lambda x: np.abs(np.diff(x.mean((0, 2)))).max()  # noqa: E731
    assert step(out) < 0.5 * step(hard)


def test_push_pull_fill_keeps_known_and_fills_inside_the_range() -> None:
    values = np.zeros((32, 32, 3))
    weight = np.zeros((32, 32))
    values[:, :10], weight[:, :10] = 0.2, 1.0
    values[:, 22:], weight[:, 22:] = 0.8, 1.0
    out = push_pull_fill(values, weight)
    np.testing.assert_allclose(out[:, :10], 0.2)
    np.testing.assert_allclose(out[:, 22:], 0.8)
    middle = out[:, 10:22, 0].mean(0)
    assert (middle > 0.19).all() and (middle < 0.81).all() and middle[-1] > middle[0]
    with pytest.raises(ValueError):
        push_pull_fill(values, np.zeros((32, 32)))


def test_gain_matched_scales_reference_to_the_person() -> None:
    ref = np.full((16, 16, 3), 0.6)
    tex = np.full((16, 16, 3), 0.3)
    np.testing.assert_allclose(gain_matched(ref, tex, np.ones((16, 16))), 0.3)


# ---- unwrap_face on a rendered face with painted hair and a grey background -------------------


@pytest.fixture(scope="module")
def face_model():
    from ganfit_core.model.morphable import load_morphable_model

    return load_morphable_model("face")


def _rendered_face(face_model, size: int = 320):
    from ganfit_core.render import FRONTAL_ROTATION, PinholeCamera, ambient_sh, make_renderer
    from ganfit_core.texture.unwrap import project_points

    verts = face_model.mean.unsqueeze(0) @ FRONTAL_ROTATION.T + torch.tensor([0.0, 20.0, 900.0])
    focal = 0.55 * size * 900.0 / 200.0
    camera = PinholeCamera(torch.tensor([focal]), torch.tensor([[size / 2, size / 2]]), size, size)
    texture = torch.from_numpy(np.broadcast_to(SKIN, (64, 64, 3)).copy()).float()[None]
    out = make_renderer("torch").render(verts, face_model.faces, face_model.uvs, face_model.uv_faces, texture,
                                        camera, ambient_sh(1, 1.0))
    mask = out.mask[0].numpy()
    image = out.image[0].numpy() + (1 - mask) * BACKGROUND
    verts_np = verts[0].numpy().astype(np.float64)
    landmarks = project_points(verts_np[face_model.landmark_indices.numpy()], focal, (size / 2, size / 2))
    return image, verts_np, focal, landmarks


def test_unwrap_face_takes_skin_only(face_model) -> None:
    from ganfit_core.pipelines.uv_extract import PhotoGeometry, unwrap_face
    from ganfit_core.texture.unwrap import uv_layout

    image, verts, focal, landmarks = _rendered_face(face_model)
    size = image.shape[0]
    # Paint a dark fringe of hair across the upper forehead.
    brow_y = landmarks[17:27, 1].min()
    nose = landmarks[33, 1] - brow_y
    hair_rows = slice(int(brow_y - 0.45 * nose), int(brow_y - 0.15 * nose))
    image[hair_rows] = np.where(image[hair_rows].mean(-1, keepdims=True) < 0.85, HAIR, image[hair_rows])
    photo = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    layout = uv_layout(face_model.faces.numpy(), face_model.uvs.numpy(), face_model.uv_faces.numpy(), 64)
    geometry = PhotoGeometry(verts, focal, np.array([size / 2, size / 2]), landmarks, 0.0)
    face = unwrap_face(photo, geometry, layout, texel_density_px=size)

    from ganfit_core.texture.unwrap import unwrap_photo

    raw = unwrap_photo(photo / 255.0, verts, layout, focal, (size / 2, size / 2))
    hairy = (raw.weight > 0.3) & (np.abs(raw.colour - HAIR).max(-1) < 0.08)
    skinny = (raw.weight > 0.5) & (np.abs(raw.colour - SKIN).max(-1) < 0.05)
    assert hairy.sum() > 20 and skinny.sum() > 200
    assert face.skin[hairy].max() == 0.0  # no hair taken
    assert np.median(face.skin[skinny]) > 0.9  # most seen skin taken
    # The albedo of what is taken is the skin colour (the light is ambient, so nothing to divide out).
    taken = face.skin > 0.9
    np.testing.assert_allclose(np.median(face.albedo[taken], 0), SKIN, atol=0.04)
    # A segmentation that removes the left half of the photo removes those texels; one that says
    # "not the person" anywhere leaves nothing to unwrap.
    half = np.ones(photo.shape[:2])
    half[:, : size // 2] = 0.0
    halved = unwrap_face(photo, geometry, layout, texel_density_px=size, skin_mask=half)
    left_in_photo = raw.pixels[..., 0] < size // 2 - 2
    assert halved.skin[left_in_photo & (raw.weight > 0)].max() == 0.0
    right_in_photo = raw.pixels[..., 0] > size // 2 + 8
    assert np.median(halved.skin[skinny & right_in_photo]) > 0.9
    with pytest.raises(ValueError, match="skin texels"):
        unwrap_face(photo, geometry, layout, texel_density_px=size, skin_mask=np.zeros(photo.shape[:2]))
    with pytest.raises(ValueError, match="skin_mask"):
        unwrap_face(photo, geometry, layout, texel_density_px=size, skin_mask=np.zeros((3, 3)))


def test_landmark_regions_on_the_model_landmarks(face_model) -> None:
    _, _, _, lm = _rendered_face(face_model)
    eye_centre = lm[36:42].mean(0)
    cheek = lm[2] + 0.4 * (lm[30] - lm[2])
    forehead_far = lm[27] + 3.0 * (lm[27] - lm[33])
    regions = landmark_regions(lm, np.stack([eye_centre, cheek, forehead_far]))
    assert regions.eyes.tolist() == [True, False, False]
    assert regions.reference.tolist() == [False, True, False]
    assert regions.above_forehead.tolist() == [False, False, True]


def test_photo_detail_mask_skips_hair_and_mirrors_seen_skin(face_model) -> None:
    from ganfit_core.texture.skin import photo_detail_mask
    from ganfit_core.texture.unwrap import unwrap_photo, uv_layout

    image, verts, focal, landmarks = _rendered_face(face_model)
    size = image.shape[0]
    image[:, : int(landmarks[1, 0]) + 8] = HAIR  # hair over the side of the face (outside the cheeks)
    layout = uv_layout(face_model.faces.numpy(), face_model.uvs.numpy(), face_model.uv_faces.numpy(), 64)
    mask = photo_detail_mask(image, verts, layout, focal, (size / 2, size / 2), landmarks)
    raw = unwrap_photo(image, verts, layout, focal, (size / 2, size / 2))
    hairy = (raw.weight > 0.3) & (np.abs(raw.colour - HAIR).max(-1) < 0.05)
    assert hairy.sum() > 20 and mask[hairy].max() == 0.0
    skin = (raw.weight > 0.6) & (np.abs(raw.colour - SKIN).max(-1) < 0.05)
    assert np.median(mask[skin]) > 0.9
    assert mask.min() >= 0.0 and mask.max() <= 1.0


def test_detail_mask_honours_the_person_mask(face_model) -> None:
    """Skin-coloured background beside the face passes the colour test; the person mask removes it."""
    from ganfit_core.texture.skin import below_jaw, detail_mask_from_unwrapped
    from ganfit_core.texture.unwrap import sample_mask, unwrap_photo, uv_layout

    image, verts, focal, landmarks = _rendered_face(face_model)
    size = image.shape[0]
    layout = uv_layout(face_model.faces.numpy(), face_model.uvs.numpy(), face_model.uv_faces.numpy(), 64)
    raw = unwrap_photo(image, verts, layout, focal, (size / 2, size / 2))
    person = np.ones((size, size))
    person[:, : size // 2] = 0.0  # 'background' on the left half of the photo
    plain = detail_mask_from_unwrapped(raw, landmarks, layout.mask)
    masked = detail_mask_from_unwrapped(raw, landmarks, layout.mask, sample_mask(person, raw.pixels))
    face = (raw.weight > 0.6) & ~below_jaw(landmarks, raw.pixels).reshape(raw.weight.shape)
    left = (raw.pixels[..., 0] < size // 2 - 2) & face
    right = (raw.pixels[..., 0] > size // 2 + 8) & face
    assert np.median(plain[left]) > 0.9 and np.median(masked[right]) > 0.9
    assert np.percentile(masked[left], 95) == 0.0  # the background side is left out


def _toy_unwrapped(size: int = 100):
    """A (size x size) 'UV map' laid out like the photo (texel (r, c) sees pixel (c, r)): hair in rows
    below 10, a band of dark hair tips (rows 10-13) that a skin test would pass, skin below."""
    from ganfit_core.texture.unwrap import Unwrapped

    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    colour = np.empty((size, size, 3))
    colour[:] = (0.8, 0.6, 0.5)
    colour[rows < 14] = (0.45, 0.33, 0.28)  # hair tips: same chroma, ~45 % darker
    colour[rows < 10] = (0.1, 0.08, 0.07)  # hair
    pixels = np.stack([cols + 0.5, rows + 0.5], axis=-1)
    unwrapped = Unwrapped(colour=colour, weight=np.ones((size, size)), normals=np.zeros((size, size, 3)),
                          pixels=pixels)
    skin = np.where(rows < 10, 0.0, 1.0)
    lm = np.zeros((68, 2))
    lm[8], lm[27] = (50, 100), (50, 40)  # chin, nose bridge: 'up' is -y
    lm[17:27, 1] = 35.0
    lm[17:27, 0] = np.linspace(25, 75, 10)
    lm[36], lm[45] = (30, 45), (70, 45)
    return unwrapped, skin, lm


def test_hair_fade_fades_the_detail_out_towards_the_hair() -> None:
    from ganfit_core.texture.skin import hair_fade

    unwrapped, skin, lm = _toy_unwrapped()
    chart = np.ones(skin.shape, dtype=bool)
    fade = hair_fade(unwrapped, lm, skin, chart, width=8.0)
    column = fade[:, 50]
    assert np.all(column[:15] == 0.0)  # the hair and the dark tips that pass the skin test
    assert np.all(np.diff(column[14:24]) >= 0) and column[25] == 1.0  # a linear rise over 8 texels
    assert np.all(fade[40:] == 1.0)  # below the brows nothing changes (eyes, lips keep their borders)


def test_hair_fade_takes_the_hair_shadow_but_not_a_dark_spot() -> None:
    """Skin ~12 % darker next to the hair (its shadow) counts as hair; the same darkness away from the
    hair (a mole, a freckle) does not."""
    from ganfit_core.texture.skin import hair_fade

    unwrapped, skin, lm = _toy_unwrapped()
    unwrapped.colour[10:14] = (0.8 * 0.88, 0.6 * 0.88, 0.5 * 0.88)  # the hair's shadow, not its tips
    unwrapped.colour[24:27, 70:73] = (0.8 * 0.88, 0.6 * 0.88, 0.5 * 0.88)  # a dark spot on the forehead
    fade = hair_fade(unwrapped, lm, skin, np.ones(skin.shape, dtype=bool), width=8.0)
    assert np.all(fade[:15, 50] == 0.0)  # the shadow band fades like the hair
    assert np.all(fade[24:27, 70:73] == 1.0)  # the isolated spot keeps the photo's detail


def test_hair_fade_is_one_without_hair() -> None:
    from ganfit_core.texture.skin import hair_fade

    unwrapped, _, lm = _toy_unwrapped()
    unwrapped.colour[:] = (0.8, 0.6, 0.5)
    fade = hair_fade(unwrapped, lm, np.ones((100, 100)), np.ones((100, 100), dtype=bool), width=8.0)
    assert np.all(fade == 1.0)


def test_detail_mask_keeps_the_eyelids_but_not_the_eye() -> None:
    lm = np.zeros((68, 2))
    lm[36:42] = [[20, 50], [27, 46], [33, 46], [40, 50], [33, 54], [27, 54]]
    lm[42:48] = lm[36:42] + [40, 0]
    lm[8], lm[27] = (50, 100), (50, 40)
    lid = np.array([[30.0, 44.0]])  # just above the upper lid line, inside the 1.6x enlarged outline
    centre = np.array([[30.0, 50.0]])
    assert landmark_regions(lm, lid, eye_scale=1.6).eyes[0]
    assert not landmark_regions(lm, lid, eye_scale=1.15).eyes[0]
    assert landmark_regions(lm, centre, eye_scale=1.15).eyes[0]


def test_low_frequency_fill_carries_the_tone_without_the_detail() -> None:
    from ganfit_core.fitting.params import low_frequency_fill

    gen = torch.Generator().manual_seed(0)
    tone = -0.2
    values = tone + 0.05 * torch.randn(1, 64, 64, 3, generator=gen)  # a darker tone with fine noise
    weights = torch.zeros(1, 64, 64, 1)
    weights[:, 16:48, 16:48] = 1.0
    out = low_frequency_fill(values, weights, coarse=16)
    outside = out[0, :8, :, :]  # far from the known square
    assert torch.allclose(outside, torch.full_like(outside, tone), atol=0.02)
    assert float(out[0, 16:48, 16:48].std()) < 0.5 * float(values[0, 16:48, 16:48].std())  # smooth


def test_lips_margin_grows_the_outer_lip_polygon() -> None:
    """The detail mask's lips reach past the landmark outline (which runs inside the red of the lips)."""
    lm = np.zeros((68, 2))
    lm[36], lm[45] = (30.0, 40.0), (90.0, 40.0)  # outer eye corners: interocular 60 px
    lm[27], lm[8] = (60.0, 40.0), (60.0, 130.0)
    angles = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    lm[48:60] = np.stack([60 + 20 * np.cos(angles), 100 + 8 * np.sin(angles)], 1)  # outer lips
    inner = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    lm[60:68] = np.stack([60 + 10 * np.cos(inner), 100 + 1 * np.sin(inner)], 1)  # a closed mouth
    just_outside = np.array([[60.0, 100.0 - 10.0], [60.0, 100.0 + 11.0]])  # 2-3 px beyond the outline
    assert not landmark_regions(lm, just_outside).lips.any()
    assert landmark_regions(lm, just_outside, lips_margin=0.08).lips.all()  # grown by 4.8 px
    far = np.array([[60.0, 100.0 - 16.0]])
    assert not landmark_regions(lm, far, lips_margin=0.08).lips.any()


def test_below_jaw_is_the_neck(face_model) -> None:
    from ganfit_core.texture.skin import below_jaw

    _, _, _, lm = _rendered_face(face_model)
    neck = lm[8] + 0.3 * (lm[8] - lm[33])  # under the chin
    beside = lm[4] + 0.2 * (lm[4] - lm[30])  # outside the jaw, below its ends
    cheek = lm[2] + 0.4 * (lm[30] - lm[2])
    forehead = lm[27] + 0.8 * (lm[27] - lm[33])
    temple = lm[0] + 0.2 * (lm[0] - lm[30]) + 0.3 * (lm[27] - lm[33])  # beside the face, above the jaw's end
    out = below_jaw(lm, np.stack([neck, beside, cheek, forehead, temple]))
    assert out.tolist() == [True, True, False, False, False]


def test_pixel_noise_applies_below_the_brows_only(face_model) -> None:
    """The fit's colour-noise allowance keeps a darker, greyer chin (stubble on dark skin) but not the
    same colour on the forehead, where it would let blond or grey hair in."""
    from ganfit_core.texture.skin import SKIN_PIXEL_NOISE, select_skin
    from ganfit_core.texture.unwrap import unwrap_photo, uv_layout

    image, verts, focal, landmarks = _rendered_face(face_model)
    image = image * 0.45  # dark skin: (0.35, 0.25, 0.2)
    dark_skin = SKIN * 0.45
    stubble = np.array([0.263, 0.216, 0.213])  # measured: 24 % darker and greyer than the cheeks
    face = np.abs(image - dark_skin).max(-1) < 0.01
    rows = np.arange(image.shape[0])[:, None]
    brow_y, chin_y = landmarks[17:27, 1].min(), landmarks[8, 1]
    chin = face & (rows > landmarks[57, 1] + 4) & (rows < chin_y - 4)
    forehead = face & (rows < brow_y - 15) & (rows > brow_y - 40)
    image[chin | forehead] = stubble
    layout = uv_layout(face_model.faces.numpy(), face_model.uvs.numpy(), face_model.uv_faces.numpy(), 64)
    raw = unwrap_photo(image, verts, layout, focal, (image.shape[1] / 2, image.shape[0] / 2))
    grey = (raw.weight > 0.5) & (np.abs(raw.colour - stubble).max(-1) < 0.01)
    height = raw.pixels[..., 1]
    on_chin, on_forehead = grey & (height > landmarks[57, 1]), grey & (height < brow_y)
    assert on_chin.sum() > 10 and on_forehead.sum() > 10
    strict = select_skin(raw, landmarks, layout.mask)
    noisy = select_skin(raw, landmarks, layout.mask, pixel_noise=SKIN_PIXEL_NOISE)
    assert np.median(strict[on_chin]) < 0.1 and np.median(noisy[on_chin]) > 0.9
    assert noisy[on_forehead].max() < 0.1
