"""Face detection, 68 landmarks, face selection, crops and the ``detect`` CLI."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganfit_core.face import (
    FaceDetection,
    FaceError,
    FaceIndexError,
    FaceTooSmallError,
    NoFaceError,
    crop_face,
    detect_faces,
    load_image,
    select_face,
)
from ganfit_core.face._layers import tf_same_padding
from ganfit_core.face.align import crop_square
from ganfit_core.face.faceapi_detector import non_max_suppression
from ganfit_core.face.tfjs import TfjsFormatError, load_tfjs_weights

REPO_ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def faceapi_ready(faceapi_models: Path) -> Iterator[Path]:
    """Both face-api assets (conftest ``faceapi_models``); yields the face-api source folder with the
    registry offline for this module's tests."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANFIT_OFFLINE", "1")
        yield faceapi_models


def _photo(shared_dir: Path, relative: str) -> Path:
    path = shared_dir / relative
    if not path.is_file():
        pytest.skip(f"test photo {path} not found (set GANFIT_SOURCE_DIR)")
    return path


@pytest.fixture(scope="module")
def london(shared_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """A London portrait (1350², RGB) and its two FRL pupil points (2, 2) px, left to right."""
    path = _photo(shared_dir, "london-faces/neutral_front/001_03.jpg")
    pupils = np.loadtxt(path.with_suffix(".tem"), skiprows=1, max_rows=2)
    return load_image(path), pupils[np.argsort(pupils[:, 0])]


# ------------------------------------------------------------------ pure helpers


def test_tfjs_reader_dequantises_and_concatenates_shards(tmp_path: Path) -> None:
    quantised = np.array([0, 1, 255], np.uint8)
    plain = np.array([[1.5, -2.0]], np.float32)
    (tmp_path / "a.bin").write_bytes(quantised.tobytes() + plain.tobytes()[:4])
    (tmp_path / "b.bin").write_bytes(plain.tobytes()[4:])
    manifest = [
        {
            "paths": ["a.bin", "b.bin"],
            "weights": [
                {
                    "name": "q",
                    "shape": [3],
                    "dtype": "float32",
                    "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1},
                },
                {"name": "f", "shape": [1, 2], "dtype": "float32"},
            ],
        }
    ]
    (tmp_path / "m.json").write_text(json.dumps(manifest))
    weights = load_tfjs_weights(tmp_path / "m.json")
    np.testing.assert_allclose(weights["q"], [-1.0, -0.5, 126.5])
    np.testing.assert_array_equal(weights["f"], plain)
    (tmp_path / "b.bin").write_bytes(b"")
    with pytest.raises(TfjsFormatError, match="bytes"):
        load_tfjs_weights(tmp_path / "m.json")


def test_tf_same_padding_matches_tensorflow() -> None:
    assert tf_same_padding(112, 3, 2) == (0, 1)  # TF puts the odd pixel after
    assert tf_same_padding(7, 3, 1) == (1, 1)
    assert tf_same_padding(207, 2, 2) == (0, 1)


def test_nms_keeps_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 11], [50, 50, 60, 60]], float)
    assert non_max_suppression(boxes, np.array([0.6, 0.9, 0.5]), 0.4) == [1, 2]


def _face(x0: float, y0: float, side: float, score: float = 0.9) -> FaceDetection:
    rng = np.random.default_rng(int(x0))
    landmarks = np.array([x0, y0]) + rng.uniform(0.1, 0.9, (68, 2)) * side
    return FaceDetection(box=np.array([x0, y0, x0 + side, y0 + side]), score=score, landmarks=landmarks)


def test_select_face_default_index_and_errors() -> None:
    small, big = _face(0, 0, 100), _face(200, 0, 300)
    assert select_face([small, big]) is big
    assert select_face([big, small], 1) is small
    assert select_face([big, small], 1.0) is small
    for bad in (-1, 1.5, True, "1"):  # -1 used to pick the smallest face, 1.5 became 1
        with pytest.raises(FaceIndexError, match="whole number >= 0"):
            select_face([big, small], bad)  # type: ignore[arg-type]
    with pytest.raises(NoFaceError, match="No face found"):
        select_face([])
    with pytest.raises(FaceIndexError, match="2 face"):
        select_face([big, small], 2)
    with pytest.raises(FaceTooSmallError, match="too small"):
        select_face([small], min_size_px=150)
    assert issubclass(NoFaceError, FaceError) and issubclass(FaceError, ValueError)


def test_crop_square_copies_pixels_and_pads_edges() -> None:
    image = np.random.default_rng(1).integers(0, 256, (50, 60, 3), dtype=np.uint8)
    crop, crop_to_photo = crop_square(image, 10, 5, 20, 20)
    np.testing.assert_array_equal(crop, image[5:25, 10:30])
    np.testing.assert_array_equal(crop_to_photo, [[1, 0, 10], [0, 1, 5], [0, 0, 1]])
    crop, _ = crop_square(image, -10, -10, 20, 20, pad="edge")
    np.testing.assert_array_equal(crop[:10, :10], np.broadcast_to(image[0, 0], (10, 10, 3)))
    crop, _ = crop_square(image, -10, -10, 20, 20, pad="grey")
    assert (crop[:10, :10] == 128).all()


def test_crop_face_round_trip() -> None:
    image = np.random.default_rng(2).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    face = _face(250, 150, 140)  # the crop leaves the photo at the right and bottom
    crop = crop_face(image, face, 256)
    assert crop.image.shape == (256, 256, 3) and crop.image.dtype == np.uint8
    np.testing.assert_allclose(crop.to_photo(crop.landmarks), face.landmarks, atol=1e-9)
    homogeneous = np.c_[crop.landmarks, np.ones(68)] @ crop.crop_to_photo.T
    np.testing.assert_allclose(homogeneous[:, :2], face.landmarks, atol=1e-9)
    assert (crop.landmarks > 0).all() and (crop.landmarks < 256).all()
    # the crop pixels are the photo's pixels at the mapped positions (nearest check, inside the photo)
    u, v = 100, 90
    x, y = crop.to_photo(np.array([u + 0.5, v + 0.5]))
    assert np.abs(crop.image[v, u].astype(int) - image[int(y), int(x)].astype(int)).max() < 80


def test_detect_faces_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown face backend"):
        detect_faces(np.zeros((8, 8, 3), np.uint8), backend="nope")
    with pytest.raises(ValueError, match="uint8"):
        detect_faces(np.zeros((8, 8), np.float32))


def test_face_alignment_backend_fails_fast_and_clearly() -> None:
    start = time.monotonic()
    try:
        faces = detect_faces(np.zeros((64, 64, 3), np.uint8), backend="face_alignment")
    except FaceError as exc:
        assert "face_alignment" in str(exc) or "face-alignment" in str(exc)
    else:  # installed and online: it must still return a list
        assert isinstance(faces, list)
    assert time.monotonic() - start < 30


# ------------------------------------------------------------------ networks on real photos


def test_one_face_with_accurate_eyes_on_a_portrait(
    faceapi_ready: Path, london: tuple[np.ndarray, np.ndarray]
) -> None:
    image, pupils = london
    faces = detect_faces(image)
    assert len(faces) == 1
    face = faces[0]
    assert face.landmarks.shape == (68, 2) and face.score > 0.5
    eyes = np.stack([face.landmarks[36:42].mean(axis=0), face.landmarks[42:48].mean(axis=0)])
    inter_ocular = np.linalg.norm(pupils[1] - pupils[0])
    assert np.linalg.norm(eyes - pupils, axis=1).max() < 0.1 * inter_ocular
    # the face layout is upright: brows above eyes above nose tip above mouth above chin
    ys = [face.landmarks[i, 1] for i in (19, 37, 30, 62, 8)]
    assert ys == sorted(ys)
    x0, y0, x1, y1 = face.box
    assert x0 < pupils[:, 0].min() and pupils[:, 0].max() < x1 and y0 < pupils[:, 1].min() < y1


def test_exif_rotated_portrait_is_detected_upright(
    faceapi_ready: Path, london: tuple[np.ndarray, np.ndarray]
) -> None:
    image, _ = london
    small = Image.fromarray(image).resize((450, 450))
    stored = small.transpose(Image.Transpose.ROTATE_90)  # stored sideways…
    exif = Image.Exif()
    exif[0x0112] = 6  # …with the tag that turns it upright
    buffer = io.BytesIO()
    stored.save(buffer, "JPEG", exif=exif, quality=92)
    faces = detect_faces(load_image(buffer.getvalue()))
    assert len(faces) == 1
    eyes_y = faces[0].landmarks[36:48, 1].mean()
    mouth_y = faces[0].landmarks[48:68, 1].mean()
    assert eyes_y < mouth_y


@pytest.mark.parametrize("name", ["sample1.jpg", "sample5.jpg"])
def test_several_faces_largest_first(faceapi_ready: Path, name: str) -> None:
    faces = detect_faces(load_image(faceapi_ready / "samples" / name))
    assert len(faces) >= 3
    areas = [f.area for f in faces]
    assert areas == sorted(areas, reverse=True)
    for face in faces:  # landmarks lie on their own face
        centre = face.landmarks.mean(axis=0)
        assert face.box[0] < centre[0] < face.box[2] and face.box[1] < centre[1] < face.box[3]
    assert select_face(faces) is faces[0]


def test_no_face_on_a_blank_image(faceapi_ready: Path) -> None:
    assert detect_faces(np.full((240, 320, 3), 128, np.uint8)) == []


# ------------------------------------------------------------------ CLI


class _CliResult:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> _CliResult:
    """Run ``python -m ganfit_core detect ARGS`` in-process (a subprocess costs seconds of imports)."""
    from ganfit_core.__main__ import main

    capsys.readouterr()
    code = main(["detect", *args])
    out = capsys.readouterr()
    return _CliResult(code, out.out, out.err)


def test_cli_prints_json(faceapi_ready: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = _cli(capsys, str(faceapi_ready / "samples" / "sample1.jpg"), "--face-index", "1", "--no-dense")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["selected"] == 1 and report["error"] is None
    assert len(report["faces"]) >= 3
    assert all(len(face["landmarks"]) == 68 and len(face["box"]) == 4 for face in report["faces"])
    assert all("dense_landmarks" not in face for face in report["faces"])  # FaceMesh: test_facemesh.py


def test_cli_errors_exit_nonzero_without_traceback(
    faceapi_ready: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "photo.jpg"
    bad.write_text("not a photo")
    result = _cli(capsys, str(bad))
    assert result.returncode == 2
    assert "not an image" in result.stderr and "Traceback" not in result.stderr
    blank = tmp_path / "blank.png"
    Image.new("RGB", (200, 150), (128, 128, 128)).save(blank)
    result = _cli(capsys, str(blank))
    assert result.returncode == 3
    assert "No face found" in result.stderr and "Traceback" not in result.stderr
    assert json.loads(result.stdout)["faces"] == []


# ------------------------------------------------------------------ search over scales and turns (issue #15)


def _pasted(
    portrait: np.ndarray, canvas_size: tuple[int, int], face_px: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The London portrait shrunk so its face box is about ``face_px`` across and pasted into a
    noisy grey canvas of ``canvas_size`` (W, H); returns the canvas and the pasted face's centre."""
    detected = detect_faces(portrait)[0]
    scale = face_px / detected.size
    side = round(portrait.shape[0] * scale)
    small = np.asarray(Image.fromarray(portrait).resize((side, side), Image.Resampling.BOX))
    width, height = canvas_size
    rng = np.random.default_rng(seed)
    canvas = (rng.integers(70, 110, (height, width, 1), dtype=np.uint8)).repeat(3, axis=2)
    x0, y0 = int(width * 0.55), int(height * 0.35)
    canvas[y0 : y0 + side, x0 : x0 + side] = small
    centre = np.array([x0, y0]) + ((detected.box[:2] + detected.box[2:]) / 2) * scale
    return canvas, centre


def _contains(face: FaceDetection, point: np.ndarray) -> bool:
    return bool(face.box[0] < point[0] < face.box[2] and face.box[1] < point[1] < face.box[3])


@pytest.mark.parametrize(("canvas", "face_px"), [((4000, 3000), 150), ((2048, 1536), 60)])
def test_small_face_in_a_big_photo_is_found(
    faceapi_ready: Path, london: tuple[np.ndarray, np.ndarray], canvas: tuple[int, int], face_px: float
) -> None:
    """Today's main looks at the photo at 416 px only and finds nothing here."""
    image, centre = _pasted(london[0], canvas, face_px)
    faces = detect_faces(image)
    assert len(faces) == 1
    face = faces[0]
    assert _contains(face, centre) and 0.6 * face_px < face.size < 1.6 * face_px
    assert face.rotation == 0 and face.landmarks_plausible
    assert select_face(faces, min_size_px=50) is face


def test_a_40_px_face_is_too_small_not_missing(
    faceapi_ready: Path, london: tuple[np.ndarray, np.ndarray]
) -> None:
    image, centre = _pasted(london[0], (1024, 768), 40)
    faces = detect_faces(image)
    assert faces and _contains(faces[0], centre)
    with pytest.raises(FaceTooSmallError, match="too small"):
        select_face(faces)


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_turned_portraits_are_found_with_their_turn(
    faceapi_ready: Path, london: tuple[np.ndarray, np.ndarray], turns: int
) -> None:
    """A sideways face used to be fitted as found (eyes side by side), an upside-down one missed or
    boxed wrongly; now the detection says which turn makes it upright and its landmarks agree with
    the upright photo's."""
    from ganfit_core.face.detect import upright_view
    from ganfit_core.face.rotation import rotate_image

    portrait = np.asarray(Image.fromarray(london[0]).resize((600, 600), Image.Resampling.BOX))
    upright = detect_faces(portrait)[0]
    turned = rotate_image(portrait, turns)
    faces = detect_faces(turned)
    assert len(faces) == 1
    face = faces[0]
    assert face.rotation == (-turns) % 4
    assert face.landmarks_plausible and face.landmark_consistency < 0.035
    view, in_view = upright_view(turned, face)
    np.testing.assert_array_equal(view, portrait)
    inter_ocular = np.linalg.norm(upright.landmarks[36:42].mean(0) - upright.landmarks[42:48].mean(0))
    error = np.linalg.norm(in_view.landmarks - upright.landmarks, axis=1).mean()
    assert error < 0.1 * inter_ocular
    report = face.to_dict()
    assert report["rotation"] == face.rotation and report["landmark_consistency"] is not None


def test_mirror_consistency_flags_landmarks_drawn_on_a_wrongly_turned_face(
    faceapi_ready: Path, london: tuple[np.ndarray, np.ndarray]
) -> None:
    """The sanity measure before any fit: upright landmarks are mirror-consistent, landmarks the net
    draws into the box of an upside-down face are not."""
    from ganfit_core.face.detect import CONSISTENCY_LIMIT, _backend
    from ganfit_core.face.rotation import rotate_image

    detector = _backend("faceapi")
    portrait = np.asarray(Image.fromarray(london[0]).resize((600, 600), Image.Resampling.BOX))
    face = detect_faces(portrait)[0]
    square = np.array([[(face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2, face.size]])
    _, upright = detector.landmarks_and_consistency(portrait, square)
    flipped_square = np.array([[600 - square[0, 0], 600 - square[0, 1], square[0, 2]]])
    _, upside_down = detector.landmarks_and_consistency(rotate_image(portrait, 2), flipped_square)
    assert upright[0] < CONSISTENCY_LIMIT < upside_down[0]


def test_rotation_helpers_round_trip() -> None:
    from ganfit_core.face.rotation import points_from_rotated, points_to_rotated, rotate_image

    image = np.random.default_rng(4).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    rows, cols = np.array([3, 29, 0, 17]), np.array([7, 0, 39, 20])
    centres = np.stack([cols + 0.5, rows + 0.5], axis=1)
    for k in range(4):
        turned = rotate_image(image, k)
        moved = points_to_rotated(centres, (40, 30), k)
        for (x, y), r, c in zip(moved, rows, cols, strict=True):
            np.testing.assert_array_equal(turned[int(y), int(x)], image[r, c])
        np.testing.assert_allclose(points_from_rotated(moved, (40, 30), k), centres)


def test_no_face_message_does_not_blame_lighting() -> None:
    with pytest.raises(NoFaceError) as caught:
        select_face([])
    assert "40 px" in str(caught.value) and "lit" not in str(caught.value)
