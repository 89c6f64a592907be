"""Differentiable face identity network: align a face from its 68 landmarks, embed it.

GANFIT's identity loss compares face-recognition embeddings of the photo and of the rendering,
and its content loss compares intermediate activations of the same network. Both images are
aligned with the *same* landmarks (the photo's), so the network sees them the same way.

Default backend: face-api's port of dlib's ResNet descriptor (``ganfit_core.face.faceapi_recognition``,
asset ``faceapi_recognition``), 128-D, offline. Alignment reproduces dlib's
``get_face_chip(img, shape, 150, 0.25)``: a least-squares similarity transform from 33 of the 68
landmarks (nose, eyes, outer mouth, upper inner lip) to dlib's mean face, then bilinear sampling
with ``grid_sample`` (plus a [1, 3, 3, 1] blur-and-halve pyramid where the face is more than twice
the chip's resolution, as dlib does), so gradients reach the image.

Optional backend ``"arcface"`` (online users; see ``ganfit_core.face.arcface``).

Pixels follow docs/CONTRACTS.md: the centre of pixel (row i, column j) is (x, y) = (j + 0.5, i + 0.5).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ganfit_core.face.faceapi_recognition import CHIP_SIZE, FEATURE_LAYERS, FaceRecognitionNet

__all__ = [
    "IdentityNetwork",
    "IdentityOutput",
    "IdentityInputError",
    "load_identity_network",
    "dlib_chip_transform",
    "dlib_face_chip",
    "ChipTransform",
    "load_faceapi_identity",
    "similarity_transform",
    "sample_chip",
    "DLIB_PADDING",
    "FEATURE_LAYERS",
]

DLIB_PADDING = 0.25

# dlib's mean face (get_face_chip_details), points 17..67 in [0, 1] chip units.
_MEAN_FACE_X = (
    0.000213256, 0.0752622, 0.18113, 0.29077, 0.393397, 0.586856, 0.689483, 0.799124,
    0.904991, 0.98004, 0.490127, 0.490127, 0.490127, 0.490127, 0.36688, 0.426036,
    0.490127, 0.554217, 0.613373, 0.121737, 0.187122, 0.265825, 0.334606, 0.260918,
    0.182743, 0.645647, 0.714428, 0.793132, 0.858516, 0.79751, 0.719335, 0.254149,
    0.340985, 0.428858, 0.490127, 0.551395, 0.639268, 0.726104, 0.642159, 0.556721,
    0.490127, 0.423532, 0.338094, 0.290379, 0.428096, 0.490127, 0.552157, 0.689874,
    0.553364, 0.490127, 0.42689,
)
_MEAN_FACE_Y = (
    0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891,
    0.0187482, 0.038915, 0.106454, 0.203352, 0.307009, 0.409805, 0.515625, 0.587326,
    0.609345, 0.628106, 0.609345, 0.587326, 0.216423, 0.178758, 0.179852, 0.231733,
    0.245099, 0.244077, 0.231733, 0.179852, 0.178758, 0.216423, 0.244077, 0.245099,
    0.780233, 0.745405, 0.727388, 0.742578, 0.727388, 0.745405, 0.780233, 0.864805,
    0.902192, 0.909281, 0.902192, 0.864805, 0.784792, 0.778746, 0.785343, 0.778746,
    0.784792, 0.824182, 0.831803, 0.824182,
)
# dlib skips the eyebrows (17-26) and the lower lip (55-59, 65-67).
DLIB_ALIGN_INDICES: tuple[int, ...] = tuple(range(27, 55)) + tuple(range(60, 65))


class IdentityInputError(ValueError):
    """Images or landmarks of the wrong shape, dtype or batch size."""


def _check(name: str, tensor: torch.Tensor, shape: tuple[int | None, ...]) -> None:
    """Raise IdentityInputError unless ``tensor`` is floating with ``shape`` (None = any size)."""
    ok = tensor.ndim == len(shape) and all(
        s is None or s == t for s, t in zip(shape, tensor.shape, strict=True)
    )
    if not ok or not tensor.is_floating_point():
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise IdentityInputError(
            f"{name}: expected a float tensor of shape {want}, got {tuple(tensor.shape)} {tensor.dtype}"
        )


# ---------------------------------------------------------------------------------------------
# Alignment


def similarity_transform(src: torch.Tensor, dst: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares similarity (rotation, uniform scale, translation; no reflection) ``src -> dst``.

    Args:
        src: (*, K, 2) points. dst: (*, K, 2) points (same units).
    Returns:
        ``(A (*, 2, 2), t (*, 2))`` with ``dst ~ src @ A.T + t``; differentiable (closed form,
        the 2-D case of Umeyama's method that dlib's ``find_similarity_transform`` uses).

    Example:
        >>> src = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
        >>> A, t = similarity_transform(src, 2 * src + 3)
        >>> torch.allclose(A, 2 * torch.eye(2)) and torch.allclose(t, torch.tensor([3.0, 3.0]))
        True
    """
    src_mean, dst_mean = src.mean(dim=-2, keepdim=True), dst.mean(dim=-2, keepdim=True)
    s, d = src - src_mean, dst - dst_mean
    # a = sum(conj(s) * d) / sum(|s|^2) with points as complex numbers.
    norm = (s * s).sum(dim=(-2, -1))
    ar = (s[..., 0] * d[..., 0] + s[..., 1] * d[..., 1]).sum(dim=-1) / norm
    ai = (s[..., 0] * d[..., 1] - s[..., 1] * d[..., 0]).sum(dim=-1) / norm
    A = torch.stack([torch.stack([ar, -ai], dim=-1), torch.stack([ai, ar], dim=-1)], dim=-2)
    t = dst_mean.squeeze(-2) - (src_mean @ A.transpose(-1, -2)).squeeze(-2)
    return A, t


def dlib_chip_transform(
    landmarks: torch.Tensor, *, size: int = CHIP_SIZE, padding: float = DLIB_PADDING
) -> torch.Tensor:
    """Affine map chip pixels -> image pixels, as dlib's ``get_face_chip_details`` + ``extract_image_chip``.

    Args:
        landmarks: (B, 68, 2) iBUG-68 landmarks, image pixels (pixel centres at +0.5).
        size: chip side in pixels. padding: dlib's padding (fraction of the face added on each side).
    Returns:
        (B, 2, 3) matrix ``T``: image point = ``T @ (x, y, 1)`` for a chip point (x, y) in chip
        pixels (same +0.5 convention). Differentiable in ``landmarks``.
    """
    _check("landmarks", landmarks, (None, 68, 2))
    idx = [i - 17 for i in DLIB_ALIGN_INDICES]
    mean_face = torch.tensor([[_MEAN_FACE_X[i], _MEAN_FACE_Y[i]] for i in idx], dtype=landmarks.dtype,
                             device=landmarks.device)
    # dlib works with pixel centres at integers: template and landmarks in that convention.
    template = (padding + mean_face) / (2 * padding + 1) * size
    A, t = similarity_transform(template, landmarks[:, DLIB_ALIGN_INDICES] - 0.5)
    # dlib's extract_image_chip samples chip pixel u (integer index) at tform(u + 0.5) (measured
    # against dlib 20.0 where no pyramid is involved: mean |difference| of the chips 0.5-0.9 grey
    # levels); in our +0.5 convention: image point = A @ (x, y) + t + 0.5.
    M = A
    offset = t + 0.5
    return torch.cat([M, offset[..., None]], dim=-1)


_BLUR = (1.0, 3.0, 3.0, 1.0)


def _halve(image: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H//2, W//2): separable [1,3,3,1]/8 blur, stride 2; points map p -> p/2."""
    c = image.shape[1]
    k = torch.tensor(_BLUR, dtype=image.dtype, device=image.device) / 8.0
    x = F.pad(image, (1, 1, 1, 1), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, 4).expand(c, 1, 1, 4).contiguous(), stride=(1, 2), groups=c)
    return F.conv2d(x, k.view(1, 1, 4, 1).expand(c, 1, 4, 1).contiguous(), stride=(2, 1), groups=c)


def sample_chip(images: torch.Tensor, chip_to_image: torch.Tensor, size: int = CHIP_SIZE) -> torch.Tensor:
    """Warp ``images`` (B, C, H, W) into (B, C, size, size) chips; differentiable in the images.

    ``chip_to_image`` (B, 2, 3) maps chip pixels to image pixels (see ``dlib_chip_transform``).
    Where one chip pixel covers more than two image pixels, the image is first blurred and
    halved (as dlib's pyramid does) to avoid aliasing. Outside the image: zeros.
    """
    _check("images", images, (None, None, None, None))
    _check("chip_to_image", chip_to_image, (images.shape[0], 2, 3))
    coords = (torch.arange(size, dtype=images.dtype, device=images.device) + 0.5)
    ys, xs = torch.meshgrid(coords, coords, indexing="ij")
    chip_points = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1).reshape(-1, 3)  # (S*S, 3)
    scales = torch.linalg.det(chip_to_image[:, :, :2]).abs().sqrt().detach()
    chips = []
    for b in range(images.shape[0]):
        image, points = images[b : b + 1], chip_points @ chip_to_image[b].transpose(0, 1)  # (S*S, 2)
        scale = float(scales[b])
        while scale > 2.0 and min(image.shape[-2:]) >= 4:
            image, points, scale = _halve(image), points / 2.0, scale / 2.0
        h, w = image.shape[-2:]
        grid = torch.stack([points[:, 0] * (2.0 / w) - 1.0, points[:, 1] * (2.0 / h) - 1.0], dim=-1)
        grid = grid.to(image.dtype).view(1, size, size, 2)
        chips.append(F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False))
    return torch.cat(chips, dim=0)


# ---------------------------------------------------------------------------------------------
# Network


@dataclass(frozen=True)
class IdentityOutput:
    """Embedding and content features of one forward pass.

    ``embedding``: (B, D) float (D = ``IdentityNetwork.embedding_size``; 128 for face-api, not normalised).
    ``features``: activations of ``IdentityNetwork.feature_layers``, each (B, C_i, H_i, W_i).
    """

    embedding: torch.Tensor
    features: tuple[torch.Tensor, ...]


ChipTransform = Callable[[torch.Tensor, int], torch.Tensor]


def dlib_face_chip(landmarks: torch.Tensor, size: int) -> torch.Tensor:
    """``dlib_chip_transform`` with dlib's face-recognition padding 0.25 (a ``ChipTransform``)."""
    return dlib_chip_transform(landmarks, size=size, padding=DLIB_PADDING)


class IdentityNetwork(nn.Module):
    """Frozen face-recognition network with differentiable alignment.

    Parameters do not require gradients, but gradients flow to the input images. Images are
    (B, 3, H, W) float RGB in [0, 1]; landmarks (B, 68, 2) iBUG-68 in those images' pixels.

    Content features (face-api backend): outputs of the residual blocks ``conv32_3``
    (B, 32, 35, 35), ``conv64_3`` (B, 64, 17, 17), ``conv128_2`` (B, 128, 8, 8) and
    ``conv256_2`` (B, 256, 4, 4): the end of each resolution stage, after the ReLU.

    Args:
        net: a module with ``forward_with_features(chips (B, 3, S, S) in [0, 1]) ->
            (embedding (B, D), list of feature maps)``.
        chip_transform: ``fn(landmarks (B, 68, 2), size) -> (B, 2, 3)`` chip-to-image pixel map.
        chip_size: S. embedding_size: D. feature_layers: names of the feature maps, in order.
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        chip_transform: ChipTransform = dlib_face_chip,
        chip_size: int = CHIP_SIZE,
        embedding_size: int = 128,
        feature_layers: tuple[str, ...] = FEATURE_LAYERS,
    ) -> None:
        super().__init__()
        self.net = net
        self.chip_transform = chip_transform
        self.chip_size = chip_size
        self.embedding_size = embedding_size
        self.feature_layers = feature_layers
        self.eval()
        self.requires_grad_(False)

    def align(self, images: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) [0, 1] + landmarks (B, 68, 2) px -> aligned chips (B, 3, S, S)."""
        _check("images", images, (None, 3, None, None))
        _check("landmarks", landmarks, (images.shape[0], 68, 2))
        transform = self.chip_transform(landmarks.to(images.dtype), self.chip_size)
        return sample_chip(images, transform, self.chip_size)

    def embed_aligned(self, chips: torch.Tensor) -> torch.Tensor:
        """Aligned chips (B, 3, S, S) float RGB in [0, 1] (S = 150 for face-api) -> embeddings (B, D)."""
        _check("chips", chips, (None, 3, self.chip_size, self.chip_size))
        return self.net.forward_with_features(chips)[0]

    def embed(self, images: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) [0, 1] + landmarks (B, 68, 2) px -> embeddings (B, D), D = 128 for face-api."""
        return self.embed_aligned(self.align(images, landmarks))

    def features(self, images: torch.Tensor, landmarks: torch.Tensor) -> list[torch.Tensor]:
        """Content-loss activations (see the class docstring) of the aligned faces."""
        return list(self.analyse(images, landmarks).features)

    def analyse(self, images: torch.Tensor, landmarks: torch.Tensor) -> IdentityOutput:
        """Embedding and features in one forward pass (what the fitting losses need)."""
        embedding, features = self.net.forward_with_features(self.align(images, landmarks))
        return IdentityOutput(embedding, tuple(features))

    def forward(self, images: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`embed`."""
        return self.embed(images, landmarks)


BACKENDS = ("faceapi", "arcface")


def load_faceapi_identity(*, device: torch.device | str | None = None) -> IdentityNetwork:
    """face-api/dlib descriptor network from asset ``faceapi_recognition`` (built from source if needed)."""
    from safetensors.torch import load_file

    from ganfit_core.assets import resolve

    net = FaceRecognitionNet()
    net.load_state_dict(load_file(str(resolve("faceapi_recognition"))))
    return IdentityNetwork(net).to(device)


def load_identity_network(
    *, backend: str = "faceapi", device: torch.device | str | None = None
) -> IdentityNetwork:
    """The frozen identity network for GANFIT's identity and content losses.

    Args:
        backend: ``"faceapi"`` (default, offline, 128-D) or ``"arcface"`` (ONNX ArcFace R100 from
            the Hub, 512-D, needs ``onnx2torch``; see ``ganfit_core.face.arcface``).
        device: where to put it (default CPU).
    Returns:
        An :class:`IdentityNetwork` (eval mode, frozen parameters).
    Raises:
        ganfit_core.assets.AssetError: the weights cannot be found, downloaded or built.
        ValueError: unknown backend.
    """
    if backend == "faceapi":
        return load_faceapi_identity(device=device)
    if backend == "arcface":
        from ganfit_core.face.arcface import load_arcface_identity

        return load_arcface_identity(device=device)
    raise ValueError(f"unknown identity backend {backend!r}; expected one of {BACKENDS}")
