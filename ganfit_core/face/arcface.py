"""Optional ArcFace identity backend (online users): ONNX ArcFace R100 converted with ``onnx2torch``.

The weights are asset ``arcface_r100``: ``arcface.onnx`` from the Hugging Face repo
``FoivosPar/Arc2Face`` (InsightFace's antelopev2 ``glintr100``, ArcFace R100, 261 MB). Offline and
not cached, :func:`load_arcface_identity` raises the registry's ``AssetError``. InsightFace's
pretrained models are for non-commercial research: check the licence before relying on it; the
face-api network stays the default.

Alignment follows InsightFace's ``norm_crop``: a similarity transform from five points (eye
centres, nose tip, mouth corners, derived from the 68 landmarks) to the standard 112 x 112 ArcFace
template; input ``(255 x - 127.5) / 127.5`` RGB; output a 512-D embedding. No content features.
"""

from __future__ import annotations

import torch
from torch import nn

from ganfit_core.face.identity import IdentityNetwork, similarity_transform

__all__ = ["ARCFACE_TEMPLATE", "ArcFaceNet", "arcface_chip_transform", "five_points", "load_arcface_identity"]

ARCFACE_SIZE = 112
#: InsightFace's ``arcface_dst`` (112 x 112 chip, integer pixel centres): subject's right eye,
#: left eye, nose tip, right and left mouth corners (as seen: left to right).
ARCFACE_TEMPLATE = (
    (38.2946, 51.6963),
    (73.5318, 51.5014),
    (56.0252, 71.7366),
    (41.5493, 92.3655),
    (70.7299, 92.2041),
)


def five_points(landmarks: torch.Tensor) -> torch.Tensor:
    """iBUG-68 landmarks (B, 68, 2) -> (B, 5, 2): eye centres, nose tip (30), mouth corners (48, 54)."""
    return torch.stack(
        [landmarks[:, 36:42].mean(1), landmarks[:, 42:48].mean(1), landmarks[:, 30], landmarks[:, 48],
         landmarks[:, 54]],
        dim=1,
    )


def arcface_chip_transform(landmarks: torch.Tensor, size: int = ARCFACE_SIZE) -> torch.Tensor:
    """Chip-to-image pixel map (B, 2, 3) for InsightFace-style alignment (a ``ChipTransform``).

    InsightFace warps with OpenCV (integer pixel centres); we keep the +0.5 convention of
    docs/CONTRACTS.md on both sides.
    """
    template = torch.tensor(ARCFACE_TEMPLATE, dtype=landmarks.dtype, device=landmarks.device) * (
        size / ARCFACE_SIZE
    )
    A, t = similarity_transform(template, five_points(landmarks) - 0.5)
    offset = t + 0.5 - A @ torch.full((2,), 0.5, dtype=A.dtype, device=A.device)
    return torch.cat([A, offset[..., None]], dim=-1)


class ArcFaceNet(nn.Module):
    """Converted ONNX graph behind the ``forward_with_features`` interface (no features)."""

    def __init__(self, graph: nn.Module) -> None:
        super().__init__()
        self.graph = graph

    def forward_with_features(self, chips: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Chips (B, 3, 112, 112) RGB in [0, 1] -> (embedding (B, 512), [])."""
        return self.graph((chips * 255.0 - 127.5) / 127.5), []

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        """Chips (B, 3, 112, 112) RGB in [0, 1] -> embeddings (B, 512)."""
        return self.forward_with_features(chips)[0]


def load_arcface_identity(*, device: torch.device | str | None = None) -> IdentityNetwork:
    """ArcFace R100 as an :class:`IdentityNetwork` (512-D, 112 x 112 chips, ``feature_layers == ()``).

    Raises:
        ganfit_core.assets.AssetError: ``arcface.onnx`` is neither local, cached nor downloadable.
        ImportError: ``onnx2torch`` is not installed.
    """
    from ganfit_core.assets import resolve

    path = resolve("arcface_r100")
    try:
        from onnx2torch import convert
    except ImportError as exc:
        raise ImportError(
            "the ArcFace backend needs onnx2torch (`pip install onnx2torch`); "
            "or use the default backend 'faceapi'"
        ) from exc
    net = ArcFaceNet(convert(str(path)))
    return IdentityNetwork(
        net, chip_transform=arcface_chip_transform, chip_size=ARCFACE_SIZE, embedding_size=512,
        feature_layers=(),
    ).to(device)
