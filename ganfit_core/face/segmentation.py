"""Person vs background: MediaPipe selfie segmentation (``selfie_segmentation.tflite``, Apache-2.0).

The network (a MobileNetV3-like encoder-decoder) takes the whole photo resized to 256×256 RGB in
[0, 1] (aspect ratio not kept, as MediaPipe's ``selfie_segmentation`` graph does) and returns a
256×256 person probability; :func:`segment_person` resizes it back to the photo. Hair, face and
body count as person. Converted by :mod:`ganfit_core.face.tflite_graph`; asset
``mediapipe_selfie_segmentation``.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from ganfit_core.face.tflite_graph import TfliteGraph, load_tflite_graph

__all__ = ["INPUT_SIZE", "SelfieSegmentationNet", "build_selfie_segmentation", "load_segmentation_net",
           "segment_person"]

ASSET_NAME = "mediapipe_selfie_segmentation"
TFLITE_FILE = "selfie_segmentation.tflite"
INPUT_SIZE = 256


class SelfieSegmentationNet(nn.Module):
    """(B, 3, 256, 256) RGB in [0, 1] → (B, 256, 256) person probability in [0, 1]."""

    def __init__(self, graph: TfliteGraph) -> None:
        super().__init__()
        self.graph = graph

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or tuple(images.shape[1:]) != (3, INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"expected (B, 3, {INPUT_SIZE}, {INPUT_SIZE}) images, got {tuple(images.shape)}")
        (mask,) = self.graph(images)
        return mask[:, 0]


def build_selfie_segmentation(source_dir: Path, out_path: Path) -> None:
    """Asset builder: ``<source_dir>/selfie_segmentation.tflite`` → safetensors (weights + graph)."""
    from ganfit_core.face.mediapipe_source import build_mediapipe_asset

    build_mediapipe_asset(source_dir, out_path, TFLITE_FILE)


def load_segmentation_net(*, device: torch.device | str | None = None) -> SelfieSegmentationNet:
    """The network with converted weights (``resolve("mediapipe_selfie_segmentation")``), in eval mode."""
    from ganfit_core.assets import resolve

    return SelfieSegmentationNet(load_tflite_graph(resolve(ASSET_NAME))).eval().to(device or "cpu")


_NET: dict[str, SelfieSegmentationNet] = {}
_NET_LOCK = threading.Lock()


def _cached_net() -> SelfieSegmentationNet:
    with _NET_LOCK:
        if "cpu" not in _NET:
            _NET["cpu"] = load_segmentation_net()
        return _NET["cpu"]


@torch.no_grad()
def segment_person(image: np.ndarray, *, net: SelfieSegmentationNet | None = None) -> np.ndarray:
    """Person probability per pixel of a photo.

    Args:
        image: (H, W, 3) uint8 RGB photo.
        net: the network (default: loaded once per process through the asset registry).

    Returns:
        (H, W) float32 in [0, 1]: 1 = person (face, hair, body), 0 = background.

    Example:
        >>> segment_person(np.zeros((4, 4), np.uint8))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: expected an (H, W, 3) uint8 RGB array, got uint8 (4, 4)
    """
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"expected an (H, W, 3) uint8 RGB array, got {got}")
    net = net or _cached_net()
    height, width = image.shape[:2]
    small = np.array(Image.fromarray(image).resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BILINEAR))
    device = next(net.buffers(), torch.empty(0)).device
    batch = torch.from_numpy(small).permute(2, 0, 1)[None].float().div(255.0).to(device)
    mask = net(batch)[:, None]
    full = F.interpolate(mask, size=(height, width), mode="bilinear", align_corners=False)
    return full[0, 0].clamp(0.0, 1.0).cpu().numpy().astype(np.float32)
