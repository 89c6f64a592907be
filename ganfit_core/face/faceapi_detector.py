"""face-api's Tiny Face Detector (tiny-YOLOv2 with separable convolutions) in PyTorch.

Port of @vladmandic/face-api 1.7.15 ``TinyFaceDetector`` (MIT): a 3×3 conv and five
separable-conv blocks with leaky ReLU (slope 0.1) and 2×2 max-pools, a 1×1 head giving,
per cell of a 13×13 grid (for a 416 px input) and per each of 5 anchors,
``(tx, ty, tw, th, objectness)``. Input: the photo resized so its long side is
``input_size`` and zero-padded at the bottom/right to a square; pixel values minus the
mean RGB, divided by 256.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from ganfit_core.face._layers import SeparableConv, conv_weight, max_pool_same, separable_state
from ganfit_core.face.tfjs import load_tfjs_weights

__all__ = [
    "ANCHORS",
    "MEAN_RGB",
    "BoxCandidate",
    "TinyFaceDetector",
    "TinyFaceDetectorNet",
    "build_tiny_detector",
    "load_tiny_detector",
    "non_max_suppression",
]

ASSET_NAME = "faceapi_tiny_detector"
MANIFEST = "model/tiny_face_detector_model-weights_manifest.json"
#: Anchor (width, height) in grid cells, face-api ``BOX_ANCHORS``.
ANCHORS = np.array(
    [
        [1.603231, 2.094468],
        [6.041143, 7.080126],
        [2.882459, 3.518061],
        [4.266906, 5.178857],
        [9.041765, 10.66308],
    ],
    dtype=np.float32,
)
#: Mean RGB (0–255) subtracted from the input, face-api ``MEAN_RGB``.
MEAN_RGB = (117.001, 114.697, 97.404)
_CHANNELS = (16, 32, 64, 128, 256, 512)


class TinyFaceDetectorNet(nn.Module):
    """The network: (B, 3, S, S) RGB in [0, 1], S a multiple of 32 → raw (B, 5·5, S/32, S/32)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(3, _CHANNELS[0], 3)
        self.blocks = nn.ModuleList(
            SeparableConv(cin, cout, padding="one")
            for cin, cout in zip(_CHANNELS[:-1], _CHANNELS[1:], strict=True)
        )
        self.head = nn.Conv2d(_CHANNELS[-1], len(ANCHORS) * 5, 1)
        self.register_buffer("mean", torch.tensor(MEAN_RGB).view(1, 3, 1, 1) / 255.0, persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = (images - self.mean) * (255.0 / 256.0)
        x = max_pool_same(F.leaky_relu(self.conv0(x), 0.1), 2)
        for i, block in enumerate(self.blocks):
            x = F.leaky_relu(block(x), 0.1)
            x = max_pool_same(x, 2 if i < len(self.blocks) - 1 else 1)
        return self.head(x)


def build_tiny_detector(source_dir: Path, out_path: Path) -> None:
    """Asset builder: face-api TF.js weights under ``source_dir`` → safetensors at ``out_path``."""
    from safetensors.torch import save_file

    tf = load_tfjs_weights(Path(source_dir) / MANIFEST)
    state = {
        "conv0.weight": conv_weight(tf["conv0/filters"]),
        "conv0.bias": torch.from_numpy(tf["conv0/bias"].copy()),
        "head.weight": conv_weight(tf["conv8/filters"]),
        "head.bias": torch.from_numpy(tf["conv8/bias"].copy()),
    }
    for i in range(len(_CHANNELS) - 1):
        state.update(separable_state(tf, f"conv{i + 1}", f"blocks.{i}"))
    save_file(
        {k: v.contiguous() for k, v in sorted(state.items())},
        str(out_path),
        metadata={"source": "face-api 1.7.15"},
    )


def load_tiny_detector(*, device: torch.device | str | None = None) -> TinyFaceDetectorNet:
    """The network with converted weights (``resolve("faceapi_tiny_detector")``), in eval mode."""
    from safetensors.torch import load_file

    from ganfit_core.assets import resolve

    net = TinyFaceDetectorNet()
    net.load_state_dict(load_file(str(resolve(ASSET_NAME))))
    return net.eval().to(device or "cpu")


@dataclass(frozen=True)
class BoxCandidate:
    """A detector box in photo pixels: ``box`` (4,) x0, y0, x1, y1 and objectness ``score``."""

    box: np.ndarray
    score: float


def _iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """IoU of ``box`` (4,) with ``others`` (N, 4), corner format."""
    x0 = np.maximum(box[0], others[:, 0])
    y0 = np.maximum(box[1], others[:, 1])
    x1 = np.minimum(box[2], others[:, 2])
    y1 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-12)


def non_max_suppression(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[int]:
    """Greedy NMS; ``boxes`` (N, 4) corners, ``scores`` (N,) → kept indices, best score first.

    Example:
        >>> b = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], dtype=float)
        >>> non_max_suppression(b, np.array([0.9, 0.8, 0.7]), 0.4)
        [0, 2]
    """
    order = list(np.argsort(-scores, kind="stable"))
    keep: list[int] = []
    while order:
        best = order.pop(0)
        keep.append(int(best))
        if order:
            ious = _iou(boxes[best], boxes[order])
            order = [i for i, iou in zip(order, ious, strict=True) if iou <= iou_threshold]
    return keep


def decode_boxes(raw: np.ndarray, score_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Raw head output (5·5, G, G) → boxes (N, 4) in [0, 1] of the padded square input, scores (N,)."""
    grid = raw.shape[-1]
    cells = raw.reshape(len(ANCHORS), 5, grid, grid).transpose(2, 3, 0, 1)  # (row, col, anchor, 5)
    sig = 1.0 / (1.0 + np.exp(-cells.astype(np.float64)))
    rows, cols, anchors = np.nonzero(sig[..., 4] > score_threshold)
    cx = (cols + sig[rows, cols, anchors, 0]) / grid
    cy = (rows + sig[rows, cols, anchors, 1]) / grid
    w = np.exp(cells[rows, cols, anchors, 2]) * ANCHORS[anchors, 0] / grid
    h = np.exp(cells[rows, cols, anchors, 3]) * ANCHORS[anchors, 1] / grid
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    return boxes, sig[rows, cols, anchors, 4]


class TinyFaceDetector:
    """Face boxes in a photo: face-api's detector at several input sizes, merged by NMS.

    face-api runs one 416 px pass (score > 0.5, IoU 0.4). That pass misses some large
    frontal faces (2 of 82 London studio portraits); a second, cheap 224 px pass finds them
    all, so both run by default and their boxes are merged by non-maximum suppression.
    """

    def __init__(
        self,
        net: TinyFaceDetectorNet,
        *,
        input_sizes: tuple[int, ...] = (416, 224),
        score_threshold: float = 0.5,
        iou_threshold: float = 0.4,
    ) -> None:
        if not input_sizes or any(size <= 0 or size % 32 for size in input_sizes):
            raise ValueError(f"input sizes must be positive multiples of 32, got {input_sizes}")
        self.net = net
        self.input_sizes = tuple(input_sizes)
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold

    @staticmethod
    def prepare(image: np.ndarray, input_size: int) -> tuple[torch.Tensor, float]:
        """Photo (H, W, 3) uint8 → input (1, 3, S, S) in [0, 1], padded bottom/right; photo px/input px."""
        height, width = image.shape[:2]
        scale = input_size / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
        canvas = np.zeros((input_size, input_size, 3), dtype=np.uint8)
        canvas[: size[1], : size[0]] = small
        tensor = torch.from_numpy(canvas).permute(2, 0, 1)[None].float() / 255.0
        return tensor, 1.0 / scale

    @torch.no_grad()
    def __call__(self, image: np.ndarray) -> list[BoxCandidate]:
        """Boxes in photo pixels (clipped to the photo), best score first, for (H, W, 3) uint8 RGB."""
        device = next(self.net.parameters()).device
        all_boxes, all_scores = [], []
        for input_size in self.input_sizes:
            tensor, photo_per_input = self.prepare(image, input_size)
            raw = self.net(tensor.to(device))[0].cpu().numpy()
            boxes, scores = decode_boxes(raw, self.score_threshold)
            all_boxes.append(boxes * input_size * photo_per_input)
            all_scores.append(scores)
        boxes, scores = np.concatenate(all_boxes), np.concatenate(all_scores)
        height, width = image.shape[:2]
        limits = np.array([width, height, width, height], dtype=np.float64)
        return [
            BoxCandidate(box=np.clip(boxes[i], 0.0, limits), score=float(scores[i]))
            for i in non_max_suppression(boxes, scores, self.iou_threshold)
        ]
