"""face-api's port of dlib's ResNet face descriptor, in PyTorch, and its weight converter.

The network (``FaceRecognitionNet`` in face-api, MIT, @vladmandic/face-api 1.7.15) is a port of
dlib's ``dlib_face_recognition_resnet_model_v1``: a 29-conv ResNet that maps an aligned
150 x 150 RGB face chip to a 128-D descriptor (same person: L2 distance below ~0.6).

Layer by layer it follows face-api's ``src/faceRecognitionNet``:

- input ``x`` in [0, 1] -> ``(255 x - mean_rgb) / 256`` with ``mean_rgb = (122.782, 117.001, 104.298)``;
- ``conv32_down``: 7x7 conv, stride 2, no padding ("valid"), + bias, per-channel scale and
  shift (dlib's affine layer), ReLU -> 3x3 max pool, stride 2, no padding;
- residual blocks ``conv(3x3) -> ReLU -> conv(3x3) -> + x -> ReLU`` ("same" padding);
- down blocks: first conv has stride 2 and no padding; the shortcut is a 2x2 average pool,
  zero-padded in channels, and where the pooled map is one pixel larger than the conv branch,
  the conv branch gets one zero row at the bottom and one zero column on the right (dlib's
  ``add_prev`` adds tensors of different sizes that way);
- global average pool -> ``fc`` (256 -> 128, no bias).

Spatial sizes for a 150 x 150 chip: 72 -> 35 (stage 32) -> 17 (64) -> 8 (128) -> 4 (256) -> 2.

The converter reads face-api's TF.js manifest (``face_recognition_model-weights_manifest.json``
and its ``.bin``) and writes a safetensors file whose keys are this module's ``state_dict`` keys.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganfit_core.face.tfjs import load_tfjs_weights

__all__ = [
    "FaceRecognitionNet",
    "FEATURE_LAYERS",
    "MEAN_RGB",
    "CHIP_SIZE",
    "build_faceapi_recognition",
    "convert_faceapi_weights",
]

CHIP_SIZE = 150
MEAN_RGB = (122.782, 117.001, 104.298)
MANIFEST_NAME = "face_recognition_model-weights_manifest.json"

# (block name, input channels, output channels, downsamples)
_BLOCKS: tuple[tuple[str, int, int, bool], ...] = (
    ("conv32_1", 32, 32, False),
    ("conv32_2", 32, 32, False),
    ("conv32_3", 32, 32, False),
    ("conv64_down", 32, 64, True),
    ("conv64_1", 64, 64, False),
    ("conv64_2", 64, 64, False),
    ("conv64_3", 64, 64, False),
    ("conv128_down", 64, 128, True),
    ("conv128_1", 128, 128, False),
    ("conv128_2", 128, 128, False),
    ("conv256_down", 128, 256, True),
    ("conv256_1", 256, 256, False),
    ("conv256_2", 256, 256, False),
    ("conv256_down_out", 256, 256, True),
)

# Outputs of these blocks are the intermediate features returned for GANFIT's content loss:
# the end of each resolution stage, (B, 32, 35, 35), (B, 64, 17, 17), (B, 128, 8, 8), (B, 256, 4, 4).
FEATURE_LAYERS: tuple[str, ...] = ("conv32_3", "conv64_3", "conv128_2", "conv256_2")


class ConvScale(nn.Module):
    """Conv (+bias) followed by dlib's per-channel affine ``y * weight + bias``; optional ReLU.

    ``stride == 2`` uses no padding (TF "valid"); ``stride == 1`` uses "same" padding.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, relu: bool) -> None:
        super().__init__()
        padding = 0 if stride == 2 else kernel // 2
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=padding, bias=True)
        self.scale_weight = nn.Parameter(torch.ones(out_ch))
        self.scale_bias = nn.Parameter(torch.zeros(out_ch))
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x) * self.scale_weight[:, None, None] + self.scale_bias[:, None, None]
        return F.relu(out) if self.relu else out


class ResidualBlock(nn.Module):
    """Two 3x3 conv+scale layers with an identity (or pooled, zero-padded) shortcut."""

    def __init__(self, in_ch: int, out_ch: int, down: bool) -> None:
        super().__init__()
        self.down = down
        self.out_ch = out_ch
        self.conv1 = ConvScale(in_ch, out_ch, 3, 2 if down else 1, relu=True)
        self.conv2 = ConvScale(out_ch, out_ch, 3, 1, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        if not self.down:
            return F.relu(out + x)
        pooled = F.avg_pool2d(x, 2, 2)
        dh = pooled.shape[-2] - out.shape[-2]
        dw = pooled.shape[-1] - out.shape[-1]
        if dh or dw:
            out = F.pad(out, (0, dw, 0, dh))
        dc = out.shape[1] - pooled.shape[1]
        if dc:
            pooled = F.pad(pooled, (0, 0, 0, 0, 0, dc))
        return F.relu(out + pooled)


class FaceRecognitionNet(nn.Module):
    """Aligned chips ``(B, 3, 150, 150)`` float RGB in [0, 1] -> descriptors ``(B, 128)``.

    Other square sizes run too, but the descriptor is only meaningful on dlib-aligned
    150 x 150 chips (see ``ganfit_core.face.identity``).
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv32_down = ConvScale(3, 32, 7, 2, relu=True)
        self.blocks = nn.ModuleDict({name: ResidualBlock(i, o, d) for name, i, o, d in _BLOCKS})
        self.fc = nn.Linear(256, 128, bias=False)
        self.register_buffer("mean_rgb", torch.tensor(MEAN_RGB).view(1, 3, 1, 1), persistent=False)

    def forward_with_features(self, chips: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Chips ``(B, 3, S, S)`` in [0, 1] -> (descriptor ``(B, 128)``, features of ``FEATURE_LAYERS``)."""
        x = (chips * 255.0 - self.mean_rgb) / 256.0
        x = F.max_pool2d(self.conv32_down(x), 3, 2)
        features: list[torch.Tensor] = []
        for name, block in self.blocks.items():
            x = block(x)
            if name in FEATURE_LAYERS:
                features.append(x)
        return self.fc(x.mean(dim=(2, 3))), features

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        """Chips ``(B, 3, S, S)`` in [0, 1] -> descriptors ``(B, 128)``."""
        return self.forward_with_features(chips)[0]


# ---------------------------------------------------------------------------------------------
# Converter


def convert_faceapi_weights(weights: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """face-api tensor names/layouts -> ``FaceRecognitionNet`` state dict (float32, contiguous).

    TF conv filters ``(kh, kw, in, out)`` become ``(out, in, kh, kw)``; ``fc (256, 128)`` is transposed.
    """

    def conv(prefix: str, dst: str) -> dict[str, torch.Tensor]:
        filters = weights[f"{prefix}/conv/filters"].transpose(3, 2, 0, 1)
        return {
            f"{dst}.conv.weight": torch.from_numpy(np.ascontiguousarray(filters)),
            f"{dst}.conv.bias": torch.from_numpy(weights[f"{prefix}/conv/bias"].copy()),
            f"{dst}.scale_weight": torch.from_numpy(weights[f"{prefix}/scale/weights"].copy()),
            f"{dst}.scale_bias": torch.from_numpy(weights[f"{prefix}/scale/biases"].copy()),
        }

    state = conv("conv32_down", "conv32_down")
    for name, *_ in _BLOCKS:
        state |= conv(f"{name}/conv1", f"blocks.{name}.conv1")
        state |= conv(f"{name}/conv2", f"blocks.{name}.conv2")
    state["fc.weight"] = torch.from_numpy(np.ascontiguousarray(weights["fc"].T))
    return {k: v.float().contiguous() for k, v in state.items()}


def _find_manifest(source_dir: Path) -> Path:
    for candidate in (source_dir / MANIFEST_NAME, source_dir / "model" / MANIFEST_NAME,
                      source_dir / "face-api" / "model" / MANIFEST_NAME):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{MANIFEST_NAME} not found under {source_dir} (looked in ., model/, face-api/model/); "
        "pass the folder of @vladmandic/face-api's model files"
    )


def build_faceapi_recognition(source_dir: Path, out_path: Path) -> None:
    """Asset builder: face-api TF.js recognition weights -> deterministic safetensors at ``out_path``.

    The metadata has a single key on purpose: safetensors writes a multi-key metadata map in a
    random order, which would change the file's sha256 from run to run.
    """
    from safetensors.torch import save_file

    state = convert_faceapi_weights(load_tfjs_weights(_find_manifest(Path(source_dir))))
    reference = FaceRecognitionNet().state_dict()
    if set(state) != set(reference):
        raise ValueError(f"converted keys differ from the module's: {sorted(set(state) ^ set(reference))}")
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(reference[key].shape):
            expected = tuple(reference[key].shape)
            raise ValueError(f"{key}: expected shape {expected}, got {tuple(tensor.shape)}")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    save_file(dict(sorted(state.items())), str(out_path),
              metadata={"source": "@vladmandic/face-api 1.7.15 face_recognition_model (MIT)"})
