"""Small TensorFlow-compatible layers shared by the face-api network ports.

TensorFlow's ``'same'`` padding puts the odd extra pixel at the bottom/right, unlike
PyTorch's symmetric ``padding=``; these helpers reproduce it exactly.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def tf_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding TensorFlow's ``'same'`` adds along one axis of length ``size``."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def pad_same(x: torch.Tensor, kernel: int, stride: int, value: float = 0.0) -> torch.Tensor:
    """Pad ``x`` (B, C, H, W) like TF ``'same'`` for a ``kernel``/``stride`` window."""
    top, bottom = tf_same_padding(x.shape[-2], kernel, stride)
    left, right = tf_same_padding(x.shape[-1], kernel, stride)
    if top == bottom == left == right == 0:
        return x
    return F.pad(x, (left, right, top, bottom), value=value)


def max_pool_same(x: torch.Tensor, stride: int) -> torch.Tensor:
    """TF ``maxPool(x, [2, 2], [stride, stride], 'same')`` on (B, C, H, W)."""
    return F.max_pool2d(pad_same(x, 2, stride, value=-math.inf), 2, stride)


class SeparableConv(nn.Module):
    """Depthwise 3×3 then pointwise 1×1 convolution with bias (TF ``separableConv2d`` + bias).

    ``padding="same"`` pads like TensorFlow for ``stride``; ``padding="one"`` pads one zero
    pixel on each side first (face-api's tiny-YOLO blocks).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, padding: str = "same") -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, stride, groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=True)
        self.stride = stride
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = pad_same(x, 3, self.stride) if self.padding == "same" else F.pad(x, (1, 1, 1, 1))
        return self.pointwise(self.depthwise(x))


def conv_weight(tf_filter: np.ndarray) -> torch.Tensor:
    """TF conv filter (kh, kw, in, out) → torch (out, in, kh, kw)."""
    return torch.from_numpy(np.ascontiguousarray(tf_filter.transpose(3, 2, 0, 1)))


def depthwise_weight(tf_filter: np.ndarray) -> torch.Tensor:
    """TF depthwise filter (kh, kw, in, 1) → torch grouped conv (in, 1, kh, kw)."""
    return torch.from_numpy(np.ascontiguousarray(tf_filter.transpose(2, 3, 0, 1)))


def separable_state(tf: dict[str, np.ndarray], prefix: str, out_prefix: str) -> dict[str, torch.Tensor]:
    """State-dict entries of a :class:`SeparableConv` from face-api tensors ``prefix/...``."""
    return {
        f"{out_prefix}.depthwise.weight": depthwise_weight(tf[f"{prefix}/depthwise_filter"]),
        f"{out_prefix}.pointwise.weight": conv_weight(tf[f"{prefix}/pointwise_filter"]),
        f"{out_prefix}.pointwise.bias": torch.from_numpy(tf[f"{prefix}/bias"].copy()),
    }
