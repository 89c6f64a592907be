"""face-api's Tiny Face Detector (tiny-YOLOv2 with separable convolutions) in PyTorch.

Port of @vladmandic/face-api 1.7.15 ``TinyFaceDetector`` (MIT): a 3×3 conv and five
separable-conv blocks with leaky ReLU (slope 0.1) and 2×2 max-pools, a 1×1 head giving,
per cell of a 13×13 grid (for a 416 px input) and per each of 5 anchors,
``(tx, ty, tw, th, objectness)``. Input: the photo resized so its long side is
``input_size`` and zero-padded at the bottom/right to a square; pixel values minus the
mean RGB, divided by 256.
"""

from __future__ import annotations

import math
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
    "DETECTABLE_BOX_PX",
    "MEAN_RGB",
    "BoxCandidate",
    "TinyFaceDetector",
    "TinyFaceDetectorNet",
    "build_tiny_detector",
    "decode_boxes",
    "decode_cells",
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


def decode_cells(raw: np.ndarray, score_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Raw head output (5·5, Gh, Gw) → boxes (N, 4) x0, y0, x1, y1 in grid cells (one cell =
    :data:`CELL_PX` input px), objectness scores (N,)."""
    grid_h, grid_w = raw.shape[-2:]
    cells = raw.reshape(len(ANCHORS), 5, grid_h, grid_w).transpose(2, 3, 0, 1)  # (row, col, anchor, 5)
    sig = 1.0 / (1.0 + np.exp(-cells.astype(np.float64)))
    rows, cols, anchors = np.nonzero(sig[..., 4] > score_threshold)
    cx = cols + sig[rows, cols, anchors, 0]
    cy = rows + sig[rows, cols, anchors, 1]
    w = np.exp(cells[rows, cols, anchors, 2]) * ANCHORS[anchors, 0]
    h = np.exp(cells[rows, cols, anchors, 3]) * ANCHORS[anchors, 1]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    return boxes, sig[rows, cols, anchors, 4]


def decode_boxes(raw: np.ndarray, score_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Raw head output (5·5, G, G) → boxes (N, 4) in [0, 1] of the padded square input, scores (N,)."""
    boxes, scores = decode_cells(raw, score_threshold)
    return boxes / raw.shape[-1], scores


#: Smallest face box (px of the network's input, sqrt(w·h)) found with a score above 0.5: measured
#: on a London portrait pasted at decreasing sizes into a 416² input: 41 px → 0.66, 35 px → 0.18.
DETECTABLE_BOX_PX = 48.0
#: Input px per grid cell of the head (the net's total stride).
CELL_PX = 32
#: Scale ratio between successive pyramid levels (the net finds faces over a ~5× range of sizes).
LEVEL_STEP = 2.5
#: Largest tile side a fine pyramid level is cut into, and the tiles' overlap (input px: a face a
#: level must find is below ~DETECTABLE_BOX_PX × LEVEL_STEP = 120 px, larger ones were looked for
#: at the coarser levels). 640 px tiles run at ~0.7 µs/px here, 1024–1664 px
#: inputs at 1.3–1.8× that per pixel; they also bound the activations (~26 MB for the first layer).
TILE_PX = 640
TILE_OVERLAP_PX = 128


class TinyFaceDetector:
    """Face boxes in a photo of any size: face-api's detector over a coarse-to-fine pyramid.

    Level 0 is face-api's own whole-photo view at 416 px plus a cheap 224 px view (the 416 pass
    misses 2 of 82 London studio portraits, the 224 pass finds them), merged by NMS. Only when a
    level finds nothing does the search go finer: each next level sees the photo about
    :data:`LEVEL_STEP` times larger, cut into :data:`TILE_PX` tiles, down to the scale at which a
    face of ``min_face_px`` photo px is :data:`DETECTABLE_BOX_PX` input px (at most
    ``max_upscale``; a level never holds more than ``max_level_pixels``, so in a 4096×3072 photo
    faces from ~85 px are found, from 40 px up to 2048×1536). A portrait costs one level as before;
    a 150 px face in a 4000 px photo is found two levels down; a photo without any face costs the
    whole pyramid (measured in bench/robustness.py).
    """

    def __init__(
        self,
        net: TinyFaceDetectorNet,
        *,
        input_sizes: tuple[int, ...] = (416, 224),
        score_threshold: float = 0.5,
        iou_threshold: float = 0.4,
        min_face_px: float = 40.0,
        max_upscale: float = 2.0,
        max_level_pixels: int = 4_000_000,
    ) -> None:
        if not input_sizes or any(size <= 0 or size % 32 for size in input_sizes):
            raise ValueError(f"input sizes must be positive multiples of 32, got {input_sizes}")
        if min_face_px <= 0:
            raise ValueError(f"min_face_px must be > 0, got {min_face_px}")
        self.net = net
        self.input_sizes = tuple(input_sizes)
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold
        self.min_face_px = min_face_px
        self.max_upscale = max_upscale
        self.max_level_pixels = max_level_pixels

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

    def level_scales(self, size: tuple[int, int]) -> list[float]:
        """Input px per photo px of the fine levels (after level 0) for a photo of ``size`` (W, H);
        empty when level 0 already reaches faces of ``min_face_px``."""
        width, height = size
        coarse = max(self.input_sizes) / max(width, height)
        finest = min(
            self.max_upscale,
            DETECTABLE_BOX_PX / self.min_face_px,
            math.sqrt(self.max_level_pixels / (width * height)),
        )
        if finest <= coarse * 1.05:
            return []
        count = math.ceil(math.log(finest / coarse) / math.log(LEVEL_STEP))
        step = (finest / coarse) ** (1.0 / count)
        return [coarse * step**i for i in range(1, count + 1)]

    def _run(self, tile: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Net on one uint8 tile (h, w, 3), h and w multiples of :data:`CELL_PX` → boxes (N, 4) in
        tile px, scores (N,)."""
        device = next(self.net.parameters()).device
        batch = torch.from_numpy(tile).permute(2, 0, 1)[None].float().div(255.0)
        boxes, scores = decode_cells(self.net(batch.to(device))[0].cpu().numpy(), self.score_threshold)
        return boxes * CELL_PX, scores

    def _level0(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        all_boxes, all_scores = [], []
        for input_size in self.input_sizes:
            tensor, photo_per_input = self.prepare(image, input_size)
            canvas = (tensor[0].permute(1, 2, 0) * 255.0).round().byte().numpy()
            boxes, scores = self._run(canvas)
            all_boxes.append(boxes * photo_per_input)
            all_scores.append(scores)
        return np.concatenate(all_boxes), np.concatenate(all_scores)

    def _tiled_level(self, image: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
        """The photo resized by ``scale``, cut into overlapping tiles (zero-padded to whole grid
        cells); boxes in photo px."""
        height, width = image.shape[:2]
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        resample = Image.Resampling.BOX if scale < 0.5 else Image.Resampling.BILINEAR
        view = np.asarray(Image.fromarray(image).resize(size, resample))
        stride = TILE_PX - TILE_OVERLAP_PX
        boxes, scores = [], []
        for y in range(0, max(size[1] - TILE_OVERLAP_PX, 1), stride):
            for x in range(0, max(size[0] - TILE_OVERLAP_PX, 1), stride):
                part = view[y : y + TILE_PX, x : x + TILE_PX]
                rows, cols = (math.ceil(n / CELL_PX) * CELL_PX for n in part.shape[:2])
                tile = np.zeros((rows, cols, 3), dtype=np.uint8)
                tile[: part.shape[0], : part.shape[1]] = part
                tile_boxes, tile_scores = self._run(tile)
                boxes.append((tile_boxes + np.array([x, y, x, y])) * (width / size[0]))
                scores.append(tile_scores)
        return np.concatenate(boxes), np.concatenate(scores)

    @torch.no_grad()
    def __call__(self, image: np.ndarray, *, coarse_only: bool = False) -> list[BoxCandidate]:
        """Boxes in photo pixels (clipped to the photo), best score first, for (H, W, 3) uint8 RGB:
        those of the coarsest pyramid level that finds any (only level 0 if ``coarse_only``)."""
        height, width = image.shape[:2]
        limits = np.array([width, height, width, height], dtype=np.float64)
        boxes, scores = self._level0(image)
        for scale in [] if coarse_only else self.level_scales((width, height)):
            if len(scores):
                break
            boxes, scores = self._tiled_level(image, scale)
        return [
            BoxCandidate(box=np.clip(boxes[i], 0.0, limits), score=float(scores[i]))
            for i in non_max_suppression(boxes, scores, self.iou_threshold)
        ]
