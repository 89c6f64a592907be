"""MediaPipe FaceMesh port: the converted graph against the reference TFLite runtime, crops, dense points."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from ganfit_core.face import detect_faces, load_image
from ganfit_core.face.facemesh import (
    INPUT_SIZE,
    DenseLandmarks,
    dense_landmarks,
    load_facemesh_net,
    roi_from_points,
    run_facemesh,
    warp_crop,
)
from ganfit_core.face.tflite_graph import TfliteFormatError, TfliteGraph

REPO_ROOT = Path(__file__).resolve().parents[1]

#: FaceMesh index ↔ iBUG-68 index for points that are the same anatomical feature: eye corners
#: (outer/inner, both eyes), mouth corners, nose tip, chin.
MEDIAPIPE_TO_IBUG = {33: 36, 133: 39, 362: 42, 263: 45, 61: 48, 291: 54, 1: 30, 152: 8}
PHOTOS = ("london-faces/neutral_front/001_03.jpg", "london-faces/neutral_front/017_03.jpg",
          "london-faces/neutral_front/042_03.jpg", "face-api/samples/sample1.jpg",
          "face-api/samples/sample4.jpg")


@pytest.fixture(scope="module")
def mediapipe_ready(shared_dir: Path) -> Iterator[Path]:
    """Builds/verifies the FaceMesh and face-api assets offline; yields ``<shared>/mediapipe``."""
    source = shared_dir / "mediapipe"
    if not (source / "face_landmark.tflite").is_file() or not (shared_dir / "face-api" / "model").is_dir():
        pytest.skip(f"MediaPipe or face-api sources not found under {shared_dir} (set GANFIT_SOURCE_DIR)")
    from ganfit_core.assets import resolve

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANFIT_OFFLINE", "1")
        for name in ("mediapipe_face_landmark", "faceapi_tiny_detector", "faceapi_landmark68"):
            resolve(name, source_dir=shared_dir)
        torch.set_num_threads(min(2, torch.get_num_threads()))
        yield source


@pytest.fixture(scope="module")
def faces(mediapipe_ready: Path, shared_dir: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """(photo, 68 landmarks of its largest face) for each test photo present."""
    found = []
    for relative in PHOTOS:
        path = shared_dir / relative
        if path.is_file():
            image = load_image(path)
            found.append((image, detect_faces(image)[0].landmarks))
    if len(found) < 3:
        pytest.skip(f"fewer than 3 of the test photos {PHOTOS} under {shared_dir}")
    return found


def _crop(image: np.ndarray, landmarks68: np.ndarray) -> np.ndarray:
    matrix = roi_from_points(landmarks68, landmarks68[36:42].mean(0), landmarks68[42:48].mean(0))
    return warp_crop(image, matrix)


def test_port_matches_the_tflite_runtime_on_real_face_crops(
    mediapipe_ready: Path, faces: list[tuple[np.ndarray, np.ndarray]]
) -> None:
    litert = pytest.importorskip("ai_edge_litert.interpreter", reason="needs ai-edge-litert (test extra)")
    interpreter = litert.Interpreter(model_path=str(mediapipe_ready / "face_landmark.tflite"), num_threads=1)
    interpreter.allocate_tensors()
    by_size = {int(np.prod(d["shape"])): d["index"] for d in interpreter.get_output_details()}
    net = load_facemesh_net()
    worst_points, worst_logit = 0.0, 0.0
    for image, landmarks68 in faces:
        crop = _crop(image, landmarks68).astype(np.float32)[None] / 255.0
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], crop)
        interpreter.invoke()
        ref_points = interpreter.get_tensor(by_size[1404]).reshape(468, 3)
        ref_logit = float(interpreter.get_tensor(by_size[1]).reshape(()))
        with torch.no_grad():
            points, logit = net(torch.from_numpy(crop).permute(0, 3, 1, 2))
        worst_points = max(worst_points, float(np.abs(points[0].numpy() - ref_points).max()))
        worst_logit = max(worst_logit, abs(float(logit[0]) - ref_logit))
        assert ref_logit > 0  # a face, per the reference: the crops are what FaceMesh expects
    # crop-pixel coordinates up to ~190; float32 reordering alone gives ~1e-4
    assert worst_points < 2e-3, worst_points
    assert worst_logit < 2e-3, worst_logit


def test_dense_points_agree_with_the_68_landmarks(faces: list[tuple[np.ndarray, np.ndarray]]) -> None:
    mp_index, ibug_index = map(list, zip(*MEDIAPIPE_TO_IBUG.items(), strict=True))
    for image, landmarks68 in faces:
        dense = dense_landmarks(image, landmarks68)
        assert isinstance(dense, DenseLandmarks) and dense.points.shape == (468, 3)
        assert dense.presence > 0.9
        inter_ocular = np.linalg.norm(landmarks68[36:42].mean(0) - landmarks68[42:48].mean(0))
        error = np.linalg.norm(dense.points[mp_index, :2] - landmarks68[ibug_index], axis=1) / inter_ocular
        assert np.median(error) < 0.08 and error.max() < 0.25, error
        # nose tip nearer the camera than the cheeks' outline (smaller z)
        assert dense.points[1, 2] < dense.points[[234, 454], 2].min()


def test_dense_points_follow_a_rotated_photo(faces: list[tuple[np.ndarray, np.ndarray]]) -> None:
    image, landmarks68 = faces[0]
    height = image.shape[0]
    rotated = np.ascontiguousarray(np.rot90(image, k=-1))  # 90° clockwise: (x, y) → (H - y, x)
    turned68 = np.stack([height - landmarks68[:, 1], landmarks68[:, 0]], axis=1)
    upright = dense_landmarks(image, landmarks68).points[:, :2]
    turned = dense_landmarks(rotated, turned68).points[:, :2]
    expected = np.stack([height - upright[:, 1], upright[:, 0]], axis=1)
    inter_ocular = np.linalg.norm(landmarks68[36:42].mean(0) - landmarks68[42:48].mean(0))
    assert np.median(np.linalg.norm(turned - expected, axis=1)) < 0.03 * inter_ocular


def test_roi_is_upright_and_centred() -> None:
    points = np.array([[100.0, 100.0], [200.0, 100.0], [150.0, 200.0]])
    angle = np.deg2rad(30.0)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    turned = points @ rot.T
    matrix = roi_from_points(turned, turned[0], turned[1], scale=1.5)
    to_crop = np.linalg.inv(matrix)
    in_crop = turned @ to_crop[:2, :2].T + to_crop[:2, 2]
    assert abs(in_crop[0, 1] - in_crop[1, 1]) < 1e-9  # eye line horizontal in the crop
    extent = in_crop.max(0) - in_crop.min(0)
    assert np.isclose(extent.max(), INPUT_SIZE / 1.5)
    assert np.allclose((in_crop.max(0) + in_crop.min(0)) / 2, INPUT_SIZE / 2)


def test_warp_crop_samples_with_pixel_centres() -> None:
    image = np.zeros((40, 40, 3), np.uint8)
    image[10, 20] = 255  # pixel centre (20.5, 10.5)
    matrix = np.array([[1.0, 0.0, 10.0], [0.0, 1.0, 5.0], [0.0, 0.0, 1.0]])  # crop px + (10, 5)
    crop = warp_crop(image, matrix, size=16)
    assert crop[5, 10, 0] == 255 and crop.sum() == 255 * 3


def test_run_facemesh_maps_crop_pixels_to_the_photo() -> None:
    class Fixed(torch.nn.Module):
        def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            points = torch.zeros(images.shape[0], 468, 3)
            points[:, 0] = torch.tensor([96.0, 48.0, 10.0])
            return points, torch.zeros(images.shape[0])

    matrix = np.array([[0.0, -2.0, 500.0], [2.0, 0.0, 100.0], [0.0, 0.0, 1.0]])  # 90° and 2 px / crop px
    result = run_facemesh(Fixed(), np.zeros((50, 50, 3), np.uint8), matrix)  # type: ignore[arg-type]
    assert np.allclose(result.points[0], [500 - 96.0, 100 + 192.0, 20.0])
    assert result.presence == pytest.approx(0.5)


def test_graph_rejects_unsupported_ops_and_dangling_inputs() -> None:
    graph = {"inputs": ["x"], "outputs": ["y"], "ops": [{"kind": "SOFTMAX", "inputs": ["x"],
                                                           "outputs": ["y"], "options": {}}]}
    with pytest.raises(TfliteFormatError, match="SOFTMAX"):
        TfliteGraph(graph, {})
    graph["ops"] = [{"kind": "ADD", "inputs": ["x", "z"], "outputs": ["y"], "options": {"activation": None}}]
    with pytest.raises(TfliteFormatError, match="'z'"):
        TfliteGraph(graph, {})
    graph["ops"][0]["inputs"] = ["x", "c"]
    net = TfliteGraph(graph, {"c": torch.ones(1, 2, 1, 1)})
    (out,) = net(torch.zeros(1, 2, 3, 3))
    assert torch.equal(out, torch.ones(1, 2, 3, 3))


def test_detect_faces_adds_dense_points_and_the_cli_prints_both(
    mediapipe_ready: Path, shared_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from ganfit_core.__main__ import main

    path = shared_dir / PHOTOS[0]
    image = load_image(path)
    plain, = detect_faces(image)
    dense, = detect_faces(image, dense=True)
    assert plain.dense_landmarks is None and dense.dense_landmarks.shape == (468, 3)
    assert np.array_equal(plain.landmarks, dense.landmarks)  # the 68 iBUG points are kept as they were
    capsys.readouterr()
    assert main(["detect", str(path)]) == 0
    face = json.loads(capsys.readouterr().out)["faces"][0]
    assert len(face["landmarks"]) == 68 and len(face["dense_landmarks"]) == 468
    assert np.allclose(face["dense_landmarks"], dense.dense_landmarks, atol=0.01)
    assert face["dense_presence"] > 0.9


def test_landmark_bench_maps_template_points_to_the_right_features(
    mediapipe_ready: Path, shared_dir: Path
) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_landmarks", REPO_ROOT / "bench" / "landmarks.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    photos = sorted((shared_dir / "london-faces" / "neutral_front").glob("*.tem"))[:2]
    if len(photos) < 2:
        pytest.skip(f"london-faces templates not found under {shared_dir}")
    template = bench.read_template(photos[0])
    names = bench.POINTS
    assert template[names["eye_outer_left"][0], 0] < template[names["eye_outer_right"][0], 0]
    assert template[names["upper_lip_top"][0], 1] < template[names["lower_lip_bottom"][0], 1]
    results = bench.evaluate([p.with_suffix(".jpg") for p in photos],
                             {"faceapi68": bench.faceapi68, "facemesh": bench.facemesh})
    for method in ("faceapi68", "facemesh"):
        row = results["methods"][method]
        assert row["faces"] == 2 and row["missed"] == 0
        # a swapped or wrong template index costs tens of % of the inter-ocular distance
        assert max(row["per_point_nme_iod"].values()) < 15.0, row["per_point_nme_iod"]
        assert row["nme_iod_own"] < 6.0
