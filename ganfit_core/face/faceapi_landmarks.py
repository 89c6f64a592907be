"""face-api's 68-point landmark network (``FaceLandmark68Net``) in PyTorch.

Port of @vladmandic/face-api 1.7.15 (MIT): four dense blocks of separable convolutions
(112 → 56 → 28 → 14 → 7 px), 7×7 average pool, a fully connected layer giving 68 (x, y)
pairs relative to the 112×112 input square (0 = left/top edge, 1 = right/bottom edge).
Input normalisation: pixel values (0–255) minus the mean RGB, divided by 255.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ganfit_core.face._layers import SeparableConv, conv_weight, pad_same, separable_state
from ganfit_core.face.tfjs import load_tfjs_weights

__all__ = ["INPUT_SIZE", "MEAN_RGB", "LandmarkNet", "build_landmark68", "load_landmark_net"]

ASSET_NAME = "faceapi_landmark68"
MANIFEST = "model/face_landmark_68_model-weights_manifest.json"
INPUT_SIZE = 112
#: Mean RGB (0–255) subtracted from the input, face-api ``FaceFeatureExtractor``.
MEAN_RGB = (122.782, 117.001, 104.298)
_CHANNELS = (3, 32, 64, 128, 256)


class DenseBlock(nn.Module):
    """face-api ``denseBlock4``: a stride-2 conv then three separable convs with dense sums."""

    def __init__(self, in_channels: int, out_channels: int, *, first: bool) -> None:
        super().__init__()
        self.first = first
        self.conv0: nn.Module = (
            nn.Conv2d(in_channels, out_channels, 3, 2)
            if first
            else SeparableConv(in_channels, out_channels, 2)
        )
        self.conv1 = SeparableConv(out_channels, out_channels)
        self.conv2 = SeparableConv(out_channels, out_channels)
        self.conv3 = SeparableConv(out_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out1 = F.relu(self.conv0(pad_same(x, 3, 2) if self.first else x))
        out2 = self.conv1(out1)
        out3 = self.conv2(F.relu(out1 + out2))
        out4 = self.conv3(F.relu(out1 + out2 + out3))
        return F.relu(out1 + out2 + out3 + out4)


class LandmarkNet(nn.Module):
    """(B, 3, 112, 112) RGB in [0, 1] → (B, 68, 2) landmarks relative to the input square."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            DenseBlock(cin, cout, first=i == 0)
            for i, (cin, cout) in enumerate(zip(_CHANNELS[:-1], _CHANNELS[1:], strict=True))
        )
        self.fc = nn.Linear(_CHANNELS[-1], 136)
        self.register_buffer("mean", torch.tensor(MEAN_RGB).view(1, 3, 1, 1) / 255.0, persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images - self.mean
        for block in self.blocks:
            x = block(x)
        x = F.avg_pool2d(x, 7, 2).flatten(1)
        return self.fc(x).view(-1, 68, 2)


def build_landmark68(source_dir: Path, out_path: Path) -> None:
    """Asset builder: face-api TF.js weights under ``source_dir`` → safetensors at ``out_path``."""
    from safetensors.torch import save_file

    tf = load_tfjs_weights(Path(source_dir) / MANIFEST)
    state: dict[str, torch.Tensor] = {
        "blocks.0.conv0.weight": conv_weight(tf["dense0/conv0/filters"]),
        "blocks.0.conv0.bias": torch.from_numpy(tf["dense0/conv0/bias"].copy()),
        "fc.weight": torch.from_numpy(tf["fc/weights"].T.copy()),
        "fc.bias": torch.from_numpy(tf["fc/bias"].copy()),
    }
    for b in range(4):
        for c in range(4):
            if b == 0 and c == 0:
                continue
            state.update(separable_state(tf, f"dense{b}/conv{c}", f"blocks.{b}.conv{c}"))
    save_file(
        {k: v.contiguous() for k, v in sorted(state.items())},
        str(out_path),
        metadata={"source": "face-api 1.7.15"},
    )


def load_landmark_net(*, device: torch.device | str | None = None) -> LandmarkNet:
    """The network with converted weights (``resolve("faceapi_landmark68")``), in eval mode."""
    from safetensors.torch import load_file

    from ganfit_core.assets import resolve

    net = LandmarkNet()
    net.load_state_dict(load_file(str(resolve(ASSET_NAME))))
    return net.eval().to(device or "cpu")
