"""Loss terms of the GANFIT fit. Pure functions on tensors; every one returns a 0-dim tensor.

Conventions: images channels-last ``(B, H, W, 3)`` float in [0, 1]; masks ``(B, H, W, 1)``
float in [0, 1]; landmarks ``(B, 68, 2)`` in pixels (CONTRACTS.md pixel convention).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "landmark_loss",
    "slide_contour",
    "masked_pixel_loss",
    "identity_loss",
    "content_loss",
    "coefficient_regulariser",
    "texture_smoothness",
    "texture_symmetry",
    "face_size",
    "exposure_prior",
]


def face_size(landmarks: torch.Tensor) -> torch.Tensor:
    """Diagonal of the landmarks' bounding box ``(B,)`` in px, from ``landmarks (B, K, 2)``."""
    span = landmarks.amax(dim=1) - landmarks.amin(dim=1)
    return span.norm(dim=-1).clamp_min(1.0)


def landmark_loss(
    predicted: torch.Tensor, target: torch.Tensor, *, weights: torch.Tensor | None = None,
    robust_scale: float = 0.0,
) -> torch.Tensor:
    """Weighted mean squared landmark distance, normalised by the target's face size squared.

    Args:
        predicted: (B, K, 2) projected model landmarks, px.
        target: (B, K, 2) detected landmarks, px.
        weights: (K,) non-negative per-landmark weights (default 1).
        robust_scale: s > 0 replaces each landmark's normalised squared error ``r^2`` by the
            Cauchy form ``s^2 log(1 + r^2 / s^2)``: the same for errors well below ``s`` (a fraction
            of the face size), bounded growth beyond, so that a few wrong detector points (a jaw
            contour on the wrong silhouette, a hidden eye corner) cannot drag the shape.

    Returns: scalar; 1e-4 means an RMS error of 1 % of the face diagonal (without ``robust_scale``;
    with it, for errors well below the scale).

    Example:
        >>> t = torch.zeros(1, 2, 2); t[0, 1] = torch.tensor([30.0, 40.0])
        >>> round(float(landmark_loss(t + torch.tensor([3.0, 4.0]), t)), 6)
        0.01
    """
    if predicted.shape != target.shape or predicted.shape[-1] != 2:
        raise ValueError(f"landmarks: expected equal shapes (B, K, 2), got {tuple(predicted.shape)} "
                         f"and {tuple(target.shape)}")
    sq = (predicted - target).pow(2).sum(-1) / face_size(target).pow(2)[:, None]  # (B, K)
    if robust_scale > 0:
        sq = robust_scale**2 * torch.log1p(sq / robust_scale**2)
    if weights is not None:
        sq = sq * weights.to(sq)
        denom = weights.sum().clamp_min(1e-8)
    else:
        denom = torch.tensor(float(sq.shape[1]), device=sq.device)
    per_face = sq.sum(-1) / denom
    return per_face.mean()


@torch.no_grad()
def slide_contour(
    candidates: torch.Tensor, target: torch.Tensor, centres: Sequence[int], *, window: int = 2
) -> torch.Tensor:
    """Choose, for each contour landmark, the jawline candidate nearest to its detected point.

    The sliding-jawline approximation used by the fit: the contour landmarks of a photo lie on
    the face's silhouette, which moves over the jaw as the head turns. ICT-FaceKit lists 17
    extended jawline vertices per side, ordered along the jaw; landmark ``k`` may slide to any
    candidate within ``window`` places of its default candidate ``centres[k]``, and we pick the
    one whose projection is closest to the detected point (no gradient through the choice).

    Args:
        candidates: (B, C, 2) projected candidate vertices, px, in jawline order.
        target: (B, K, 2) detected contour landmarks, px.
        centres: K default candidate positions (indices into C).
        window: how many places a landmark may slide either way.

    Returns: (B, K) int64 indices into the C candidates.

    Example:
        >>> c = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0]]])
        >>> slide_contour(c, torch.tensor([[[2.9, 0.0]]]), [1], window=1).tolist()
        [[2]]
    """
    num = candidates.shape[1]
    offsets = torch.arange(-window, window + 1, device=candidates.device)
    idx = (torch.as_tensor(list(centres), device=candidates.device)[:, None] + offsets).clamp(0, num - 1)
    cand = candidates[:, idx]  # (B, K, 2w+1, 2)
    dist = (cand - target[:, :, None]).pow(2).sum(-1)
    best = dist.argmin(-1)  # (B, K)
    return torch.gather(idx.expand(candidates.shape[0], -1, -1), 2, best[..., None])[..., 0]


def masked_pixel_loss(
    rendered: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, *, eps: float = 1e-3
) -> torch.Tensor:
    """Robust (Charbonnier, ~L1) colour distance averaged over the mask.

    Args:
        rendered, target: (B, H, W, 3) in [0, 1].
        mask: (B, H, W, 1) weights in [0, 1] (rendered coverage times the face-skin mask).

    Returns: scalar, mean per-pixel distance summed over the 3 channels.
    """
    if rendered.shape != target.shape:
        raise ValueError(f"images: expected equal shapes, got {tuple(rendered.shape)} and "
                         f"{tuple(target.shape)}")
    diff = torch.sqrt((rendered - target).pow(2).sum(-1, keepdim=True) + eps * eps) - eps
    return (diff * mask).sum() / mask.sum().clamp_min(1.0)


def identity_loss(embedding_a: torch.Tensor, embedding_b: torch.Tensor) -> torch.Tensor:
    """``1 - cos`` between embeddings (B, D), averaged over the batch; 0 means identical direction."""
    return (1.0 - F.cosine_similarity(embedding_a, embedding_b, dim=-1)).mean()


def content_loss(features_a: Sequence[torch.Tensor], features_b: Sequence[torch.Tensor]) -> torch.Tensor:
    """Mean over layers of the squared activation difference, each normalised by ``b``'s energy."""
    if len(features_a) != len(features_b) or not features_a:
        raise ValueError(f"content_loss: expected two equal, non-empty lists of features, got "
                         f"{len(features_a)} and {len(features_b)}")
    pairs = zip(features_a, features_b, strict=True)
    terms = [(a - b).pow(2).mean() / b.pow(2).mean().clamp_min(1e-6) for a, b in pairs]
    return torch.stack(terms).mean()


def coefficient_regulariser(coefficients: torch.Tensor) -> torch.Tensor:
    """Sum of squares over coefficients ``(B, K)`` averaged over the batch (a Gaussian prior's -log p)."""
    return coefficients.pow(2).sum(-1).mean()


def texture_smoothness(texture: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between neighbouring texels of ``texture (B, H, W, C)``."""
    dy = (texture[:, 1:] - texture[:, :-1]).pow(2).mean()
    dx = (texture[:, :, 1:] - texture[:, :, :-1]).pow(2).mean()
    return dx + dy


def texture_symmetry(texture: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between ``texture (B, H, W, C)`` and its mirror across ``u = 0.5``."""
    return (texture - texture.flip(2)).pow(2).mean()


def exposure_prior(vertices_cam: torch.Tensor, faces: torch.Tensor, sh: torch.Tensor,
                   level: float = 1.0) -> torch.Tensor:
    """Squared distance of the face's mean shading from ``level``, summed over colours, batch mean.

    The mean is over the mesh's vertices weighted by how much they face the camera (``max(0, -n_z)``
    of the camera-space unit normal: a projected-area weight), so every SH band counts, not only the
    constant one (band 2's ``3 z^2 - 1`` alone can darken a frontal face).

    Args:
        vertices_cam: (B, V, 3) camera-space vertices, mm (detach them to leave the shape alone).
        faces: (F, 3) triangles; sh: (B, 9, 3) SH lighting.

    Example:
        >>> from ganfit_core.render.lighting import ambient_sh
        >>> v = torch.tensor([[[0.0, 0, 500], [0, 1, 500], [1, 0, 500]]])
        >>> round(float(exposure_prior(v, torch.tensor([[0, 1, 2]]), ambient_sh(1, 0.8))), 4)
        0.12
    """
    from ganfit_core.render.lighting import sh_shading
    from ganfit_core.render.normals import vertex_normals

    normals = vertex_normals(vertices_cam, faces)
    weight = (-normals[..., 2]).clamp_min(0.0)  # (B, V)
    shading = sh_shading(normals, sh)  # (B, V, 3)
    mean = (shading * weight[..., None]).sum(1) / weight.sum(1).clamp_min(1e-6)[:, None]
    return (mean - level).pow(2).sum(-1).mean()


def lowpass_gradient(image: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """``image`` (B, H, W, C) unchanged in the forward pass; its gradient blurred by a Gaussian of
    ``sigma_px`` in the backward pass (0: unchanged).

    A recogniser's gradient with respect to single pixels is mostly adversarial: followed per texel
    (Adam normalises every texel's step) it paints speckles that fool the network, not faces. Blurred,
    it can only move colour over areas a person would see.
    """
    if sigma_px <= 0:
        return image
    radius = max(1, int(round(3.0 * sigma_px)))
    r = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
    kernel = torch.exp(-0.5 * (r / sigma_px) ** 2)
    kernel = kernel / kernel.sum()
    c = image.shape[-1]
    x = F.pad(image.permute(0, 3, 1, 2), (radius, radius, 0, 0), mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)  # separable: rows
    x = F.pad(x, (0, 0, radius, radius), mode="replicate")
    blurred = F.conv2d(x, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c).permute(0, 2, 3, 1)
    return image.detach() + (blurred - blurred.detach())
