"""Identity network: face-api's dlib-ResNet port, differentiable alignment, reference match with dlib.

Reference figures (dlib-bin 20.0.1.post1 + face-recognition-models 0.3.0, measured here):
same dlib chip, our descriptor vs dlib's: L2 ~0.04 (face-api's weights are uint8-quantised),
cosine > 0.9995; our full pipeline (our alignment) vs dlib's: L2 ~0.04-0.05.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from ganfit_core.face.identity import (
    IdentityInputError,
    IdentityNetwork,
    dlib_chip_transform,
    sample_chip,
    similarity_transform,
)

LONDON_IDS = ("001", "002", "004", "005")
# Stated tolerances (see the module docstring for the measured values).
REF_MAX_L2_SAME_CHIP = 0.06
REF_MIN_COS_SAME_CHIP = 0.999
REF_MAX_L2_OUR_ALIGNMENT = 0.08
SAME_MAX_L2 = 0.4
DIFFERENT_MIN_L2 = 0.6
SMILE_MAX_L2 = 0.45


@pytest.fixture(scope="module")
def net(shared_dir: Path) -> IdentityNetwork:
    """The face-api identity network via the registry (built from ../shared/face-api if needed)."""
    if not (shared_dir / "face-api" / "model" / "face_recognition_model.bin").is_file():
        pytest.skip(f"face-api weights not found under {shared_dir} (set GANFIT_SOURCE_DIR)")
    from ganfit_core.assets import resolve
    from ganfit_core.face.identity import load_faceapi_identity

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANFIT_OFFLINE", "1")
        resolve("faceapi_recognition", source_dir=shared_dir)
        return load_faceapi_identity()


@pytest.fixture(scope="module")
def dlib_models():
    """(dlib module, face detector, 68-point predictor, descriptor net); skips without dlib-bin."""
    if any(importlib.util.find_spec(name) is None for name in ("dlib", "face_recognition_models")):
        pytest.skip("reference check needs the test-only packages dlib-bin and face-recognition-models")
    import dlib

    # `import face_recognition_models` fails without pkg_resources: locate its files instead.
    package = importlib.util.find_spec("face_recognition_models")
    models = Path(package.submodule_search_locations[0]) / "models"
    return (
        dlib,
        dlib.get_frontal_face_detector(),
        dlib.shape_predictor(str(models / "shape_predictor_68_face_landmarks.dat")),
        dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat")),
    )


def _read(path: Path, step: int = 1) -> np.ndarray:
    if not path.is_file():
        pytest.skip(f"test photo {path} not found (set GANFIT_SOURCE_DIR)")
    from PIL import Image

    return np.ascontiguousarray(np.asarray(Image.open(path).convert("RGB"))[::step, ::step])


def _dlib_shape(dlib_models, image: np.ndarray):
    """dlib's 68-point shape of the largest face (HOG detection on a copy about 480 px wide)."""
    dlib, detector, predictor, _ = dlib_models
    step = max(1, round(max(image.shape[:2]) / 480))
    small = np.ascontiguousarray(image[::step, ::step])
    rects = detector(small, 0) or detector(small, 1)
    if not rects:
        raise AssertionError("dlib found no face in a test photo")
    r = max(rects, key=lambda r: r.area())
    box = dlib.rectangle(r.left() * step, r.top() * step, r.right() * step, r.bottom() * step)
    return predictor(image, box)


def _landmarks(dlib_models, image: np.ndarray) -> np.ndarray:
    """(68, 2) landmarks in our pixel convention (dlib's integer pixel centres + 0.5)."""
    shape = _dlib_shape(dlib_models, image)
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32) + 0.5


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float() / 255.0


def _embed(net: IdentityNetwork, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net.embed(_tensor(image), torch.from_numpy(landmarks)[None])[0].numpy()


# ---------------------------------------------------------------------------------------------
# Without data


def test_similarity_transform_recovers_known_transform() -> None:
    src = torch.randn(2, 10, 2, dtype=torch.float64)
    angle, scale = torch.tensor([0.3, -1.2]), torch.tensor([0.5, 3.0])
    c, s = torch.cos(angle) * scale, torch.sin(angle) * scale
    A = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2).double()
    t = torch.tensor([[4.0, -2.0], [100.0, 7.0]], dtype=torch.float64)
    A_est, t_est = similarity_transform(src, src @ A.transpose(-1, -2) + t[:, None])
    torch.testing.assert_close(A_est, A)
    torch.testing.assert_close(t_est, t)


def test_alignment_is_translation_equivariant() -> None:
    """Shifting the image and its landmarks by whole pixels gives the same chip."""
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 200, 200, generator=gen)
    landmarks = 60 + 80 * torch.rand(1, 68, 2, generator=gen)
    shifted = torch.zeros(1, 3, 230, 230)
    shifted[:, :, 10:210, 20:220] = image
    chip = sample_chip(image, dlib_chip_transform(landmarks), 64)
    chip_shifted = sample_chip(shifted, dlib_chip_transform(landmarks + torch.tensor([20.0, 10.0])), 64)
    torch.testing.assert_close(chip, chip_shifted, atol=1e-4, rtol=0)


def test_input_validation() -> None:
    from ganfit_core.face.faceapi_recognition import FaceRecognitionNet

    net = IdentityNetwork(FaceRecognitionNet())
    with pytest.raises(IdentityInputError, match=r"\(\*, 68, 2\)|\(1, 68, 2\)"):
        net.embed(torch.rand(1, 3, 64, 64), torch.rand(1, 5, 2))
    with pytest.raises(IdentityInputError, match="chips"):
        net.embed_aligned(torch.rand(1, 3, 112, 112))


# ---------------------------------------------------------------------------------------------
# With face-api's weights


def test_builder_is_deterministic_and_pinned(shared_dir: Path, tmp_path: Path) -> None:
    from ganfit_core.assets import ASSETS, fingerprint
    from ganfit_core.assets.verify import compare_fingerprints, reference_fingerprint
    from ganfit_core.face.faceapi_recognition import build_faceapi_recognition

    source = shared_dir / "face-api"
    if not source.is_dir():
        pytest.skip(f"face-api source not found at {source}")
    digests = []
    for name in ("a.safetensors", "b.safetensors"):
        build_faceapi_recognition(source, tmp_path / name)
        digests.append(hashlib.sha256((tmp_path / name).read_bytes()).hexdigest())
    assert digests[0] == digests[1]
    spec = ASSETS["faceapi_recognition"]
    reference = reference_fingerprint(spec.name)
    assert reference is not None, "faceapi_recognition has no content fingerprint (assets pin)"
    built = fingerprint(tmp_path / "a.safetensors")
    assert compare_fingerprints(built, reference["tensors"], spec.tolerance,
        exact_integers=spec.exact_integers) == []


def test_network_is_frozen_and_shapes(net: IdentityNetwork) -> None:
    assert not net.training
    assert all(not p.requires_grad for p in net.parameters())
    images = torch.rand(2, 3, 180, 160)
    landmarks = torch.tensor([60.0, 70.0]) + 40 * torch.rand(2, 68, 2)
    out = net.analyse(images, landmarks)
    assert out.embedding.shape == (2, 128)
    assert [tuple(f.shape) for f in out.features] == [(2, 32, 35, 35), (2, 64, 17, 17), (2, 128, 8, 8),
                                                        (2, 256, 4, 4)]
    features = net.features(images, landmarks)
    torch.testing.assert_close(features[-1], out.features[-1])


def test_gradients_reach_the_image(net: IdentityNetwork) -> None:
    gen = torch.Generator().manual_seed(1)
    image = torch.rand(1, 3, 160, 160, generator=gen, requires_grad=True)
    landmarks = 40 + 80 * torch.rand(1, 68, 2, generator=gen)
    target = torch.randn(1, 128, generator=gen)
    out = net.analyse(image, landmarks)
    loss = (out.embedding - target).square().sum() + sum(f.square().mean() for f in out.features)
    loss.backward()
    assert image.grad is not None
    assert torch.isfinite(image.grad).all()
    assert image.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters())


# ---------------------------------------------------------------------------------------------
# Against dlib, and on real faces


def test_matches_dlib_reference(net: IdentityNetwork, dlib_models, shared_dir: Path) -> None:
    """Same dlib chip: our descriptor vs dlib's; and our alignment + network vs dlib end to end."""
    _, _, _, recogniser = dlib_models
    import dlib

    photos = [shared_dir / "london-faces" / "neutral_front" / f"{i}_03.jpg" for i in LONDON_IDS[:2]]
    photos.append(shared_dir / "face-api" / "samples" / "sample1.jpg")
    chip_l2, chip_cos, pipeline_l2 = [], [], []
    for photo in photos:
        image = _read(photo, 1 if "samples" in photo.parts else 2)
        shape = _dlib_shape(dlib_models, image)
        chip = dlib.get_face_chip(image, shape, 150, 0.25)
        reference = np.array(recogniser.compute_face_descriptor(chip))
        with torch.no_grad():
            ours = net.embed_aligned(_tensor(chip))[0].double().numpy()
        landmarks = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32) + 0.5
        chip_l2.append(np.linalg.norm(ours - reference))
        chip_cos.append(ours @ reference / np.linalg.norm(ours) / np.linalg.norm(reference))
        pipeline_l2.append(np.linalg.norm(_embed(net, image, landmarks) - reference))
    assert max(chip_l2) < REF_MAX_L2_SAME_CHIP, chip_l2
    assert min(chip_cos) > REF_MIN_COS_SAME_CHIP, chip_cos
    assert max(pipeline_l2) < REF_MAX_L2_OUR_ALIGNMENT, pipeline_l2


@pytest.fixture(scope="module")
def landmarker(request: pytest.FixtureRequest):
    """image (H, W, 3) uint8 -> (68, 2) px: dlib's predictor when installed (the reference, and
    faster here), else the project's face-api detector (same thresholds hold; measured)."""
    if all(importlib.util.find_spec(name) is not None for name in ("dlib", "face_recognition_models")):
        models = request.getfixturevalue("dlib_models")
        return lambda image: _landmarks(models, image)
    try:
        from ganfit_core.face.detect import detect_faces
    except ImportError as exc:
        pytest.skip(f"ganfit_core.face.detect not available: {exc}")

    def faceapi(image: np.ndarray) -> np.ndarray:
        faces = detect_faces(image)
        if not faces:
            raise AssertionError("face-api found no face in a test photo")
        return np.asarray(faces[0].landmarks, dtype=np.float32)

    return faceapi


def test_same_person_closer_than_different_people(
    net: IdentityNetwork, landmarker, shared_dir: Path
) -> None:
    """Flip / shift+scale / smile of one person vs other people (london-faces, half resolution)."""
    from PIL import Image

    root = shared_dir / "london-faces"
    neutral, same, smile = {}, [], []
    for face_id in LONDON_IDS:
        image = _read(root / "neutral_front" / f"{face_id}_03.jpg", 2)
        landmarks = landmarker(image)
        neutral[face_id] = _embed(net, image, landmarks)
        flipped = np.ascontiguousarray(image[:, ::-1])
        same.append(np.linalg.norm(_embed(net, flipped, landmarker(flipped)) - neutral[face_id]))
        # shift by (13, 21) px and scale by 0.8: landmarks follow exactly, no re-detection.
        crop = image[21:, 13:]
        h, w = crop.shape[:2]
        small = np.asarray(Image.fromarray(crop).resize((round(w * 0.8), round(h * 0.8)), Image.BILINEAR))
        moved = (landmarks - [13.0, 21.0]) * [small.shape[1] / w, small.shape[0] / h]
        same.append(np.linalg.norm(_embed(net, small, moved.astype(np.float32)) - neutral[face_id]))
        smiling = _read(root / "smiling_front" / f"{face_id}_08.jpg", 2)
        smiling_embedding = _embed(net, smiling, landmarker(smiling))
        smile.append(np.linalg.norm(smiling_embedding - neutral[face_id]))
    pairs = [(a, b) for k, a in enumerate(LONDON_IDS) for b in LONDON_IDS[k + 1 :]]
    different = [np.linalg.norm(neutral[a] - neutral[b]) for a, b in pairs]
    assert max(same) < SAME_MAX_L2, same
    assert max(smile) < SMILE_MAX_L2, smile
    assert min(different) > DIFFERENT_MIN_L2, different


# ---------------------------------------------------------------------------------------------
# ArcFace backend (optional, online)


def test_arcface_alignment_maps_five_points_onto_template() -> None:
    from ganfit_core.face.arcface import ARCFACE_TEMPLATE, arcface_chip_transform

    template = torch.tensor(ARCFACE_TEMPLATE, dtype=torch.float64)
    A = torch.tensor([[2.0, -0.4], [0.4, 2.0]], dtype=torch.float64)
    t = torch.tensor([30.0, 12.0], dtype=torch.float64)
    landmarks = torch.zeros(1, 68, 2, dtype=torch.float64)
    # place the five points where the similarity (A, t) sends the template (integer-centre pixels)
    image_points = template @ A.T + t + 0.5
    landmarks[0, 36:42], landmarks[0, 42:48] = image_points[0], image_points[1]
    landmarks[0, 30], landmarks[0, 48], landmarks[0, 54] = image_points[2], image_points[3], image_points[4]
    T = arcface_chip_transform(landmarks)[0]
    chip_points = template + 0.5  # template in our +0.5 convention
    torch.testing.assert_close(chip_points @ T[:, :2].T + T[:, 2], image_points)


def test_arcface_offline_raises_registry_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from ganfit_core.assets import AssetError
    from ganfit_core.face.identity import load_identity_network

    monkeypatch.setenv("GANFIT_OFFLINE", "1")
    monkeypatch.setenv("GANFIT_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(AssetError, match="arcface_r100"):
        load_identity_network(backend="arcface")
    with pytest.raises(ValueError, match="unknown identity backend"):
        load_identity_network(backend="vggface")
