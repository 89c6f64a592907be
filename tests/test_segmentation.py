"""MediaPipe selfie segmentation port: against the reference TFLite runtime, and the mask on portraits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganfit_core.face import load_image
from ganfit_core.face.segmentation import INPUT_SIZE, load_segmentation_net, segment_person

PHOTOS = ("london-faces/neutral_front/001_03.jpg", "london-faces/neutral_front/042_03.jpg",
          "face-api/samples/sample1.jpg")


@pytest.fixture(scope="module")
def photos(shared_dir: Path) -> Iterator[list[np.ndarray]]:
    """The test photos present, with the segmentation asset built/verified offline."""
    if not (shared_dir / "mediapipe" / "selfie_segmentation.tflite").is_file():
        pytest.skip(f"selfie_segmentation.tflite not under {shared_dir}/mediapipe (set GANFIT_SOURCE_DIR)")
    found = [load_image(shared_dir / p) for p in PHOTOS if (shared_dir / p).is_file()]
    if len(found) < 2:
        pytest.skip(f"fewer than 2 of the test photos {PHOTOS} under {shared_dir}")
    from ganfit_core.assets import resolve

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANFIT_OFFLINE", "1")
        resolve("mediapipe_selfie_segmentation", source_dir=shared_dir)
        torch.set_num_threads(min(2, torch.get_num_threads()))
        yield found


def test_port_matches_the_tflite_runtime_on_photos(shared_dir: Path, photos: list[np.ndarray]) -> None:
    litert = pytest.importorskip("ai_edge_litert.interpreter", reason="needs ai-edge-litert (test extra)")
    path = shared_dir / "mediapipe" / "selfie_segmentation.tflite"
    interpreter = litert.Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    net = load_segmentation_net()
    worst = 0.0
    for image in photos:
        small = np.array(Image.fromarray(image).resize((INPUT_SIZE, INPUT_SIZE)), np.float32)[None] / 255.0
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], small)
        interpreter.invoke()
        reference = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0, :, :, 0]
        with torch.no_grad():
            mask = net(torch.from_numpy(small).permute(0, 3, 1, 2))[0].numpy()
        assert 0.2 < (reference > 0.5).mean() < 0.8  # the reference sees a person: a real check
        worst = max(worst, float(np.abs(mask - reference).max()))
    assert worst < 1e-3, worst  # probabilities; measured 1.1e-4 at most on 16 photos


def test_mask_covers_the_person_not_the_studio_background(photos: list[np.ndarray]) -> None:
    image = photos[0]  # a London studio portrait: head and shoulders, centred, plain background
    mask = segment_person(image)
    assert mask.shape == image.shape[:2] and mask.dtype == np.float32
    assert 0.0 <= mask.min() and mask.max() <= 1.0
    h, w = mask.shape
    assert mask[int(0.4 * h) : int(0.6 * h), int(0.4 * w) : int(0.6 * w)].mean() > 0.95  # the face
    assert mask[: h // 10, : w // 10].mean() < 0.05 and mask[: h // 10, -w // 10 :].mean() < 0.05


def test_segment_person_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="uint8"):
        segment_person(np.zeros((8, 8, 3), np.float32))
