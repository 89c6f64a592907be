"""The ICT-FaceKit Light morphable face model as a PyTorch module.

``vertices = mean + identity @ identity_basis + expression @ expression_basis``, in millimetres,
model space (+y up, +z out of the face, +x towards the subject's left). Identity coefficients are
~N(0, 1) (the 100 PCA modes are scaled by their standard deviation: displacement RMS on the face
falls from 3.9 mm for mode 0 to 0.09 mm for mode 99); expression coefficients (53 ARKit-style
blendshapes, full-strength targets) live in [0, 1].

Triangles (``faces``) wind counter-clockwise seen from outside, so ``(v1 - v0) x (v2 - v0)``
points out of the head (+z on the face front).

Regions (ICT vertex / polygon ranges; regions nest, each a prefix of the full mesh):

================  ==========  ========  ==========  ===========================================
region            vertices    polygons  triangles   UVs
================  ==========  ========  ==========  ===========================================
``narrow_face``   6,706       6,560     13,120      in [0, 1]
``face``          9,409       9,230     18,460      in [0, 1]
``face_neck``     11,248      11,144    22,288      head/neck on UDIM tile u in [1, 2]
``full``          26,719      26,384    52,220      eyes, teeth, mouth on further tiles (u < 7)
================  ==========  ========  ==========  ===========================================
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ganfit_core.errors import check_shape
from ganfit_core.model.layout import (
    JAW_CENTRES,
    JAW_LEFT_LANDMARKS,
    JAW_RIGHT_LANDMARKS,
    NUM_LANDMARKS,
    REGIONS,
)

__all__ = ["MorphableModel", "load_morphable_model", "REGIONS", "NUM_LANDMARKS"]
_METADATA_KEY = "ganfit"


def _check_coefficients(name: str, coeffs: torch.Tensor, max_count: int) -> None:
    """(B, K) with K <= ``max_count``: the shape through the shared checker, then the bound."""
    if not isinstance(coeffs, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor of shape (B, K<={max_count}), got {type(coeffs)}")
    check_shape(coeffs, "B K", name)
    if coeffs.shape[1] > max_count:
        raise ValueError(f"{name}: expected shape (B, K<={max_count}), got {tuple(coeffs.shape)}")


class MorphableModel(nn.Module):
    """Linear 3D face model (ICT-FaceKit Light) restricted to one region.

    Buffers (move with ``.to(device)``):
        mean: (V, 3) float32 mm, the neutral face.
        identity_basis: (100, V, 3) float32 mm per unit coefficient (one standard deviation).
        expression_basis: (53, V, 3) float32 mm at coefficient 1 (full expression).
        faces: (F, 3) int64 triangles into the region's vertices, counter-clockwise from outside.
        uvs: (T, 2) float32 texture coordinates (u, v), v up.
        uv_faces: (F, 3) int64 triangles into ``uvs``.
        landmark_indices: (68,) int64 Multi-PIE landmark vertices (region indices).
        jaw_right, jaw_left: (17,) int64 extended jawline candidates (region indices) that may
            replace contour landmarks 0-7 (subject's right) and 9-16 (subject's left).
        vertex_ids: (V,) int64 the full-mesh ICT index of each region vertex.

    Attributes: ``expression_names`` (53 names, ICT order), ``num_identity``, ``num_expression``,
    ``num_vertices``, ``region``.
    """

    mean: torch.Tensor
    identity_basis: torch.Tensor
    expression_basis: torch.Tensor
    faces: torch.Tensor
    uvs: torch.Tensor
    uv_faces: torch.Tensor
    landmark_indices: torch.Tensor
    jaw_right: torch.Tensor
    jaw_left: torch.Tensor
    vertex_ids: torch.Tensor

    def __init__(self, tensors: dict[str, torch.Tensor], expression_names: list[str], region: str) -> None:
        super().__init__()
        for name in ("mean", "identity_basis", "expression_basis", "uvs"):
            self.register_buffer(name, tensors[name].to(torch.float32).contiguous())
        for name in ("faces", "uv_faces", "landmark_indices", "jaw_right", "jaw_left", "vertex_ids"):
            self.register_buffer(name, tensors[name].to(torch.int64).contiguous())
        if len(expression_names) != self.expression_basis.shape[0]:
            raise ValueError(f"expected {self.expression_basis.shape[0]} expression names, "
                             f"got {len(expression_names)}")
        self.expression_names: list[str] = list(expression_names)
        self.region = region

    @property
    def num_identity(self) -> int:
        return int(self.identity_basis.shape[0])

    @property
    def num_expression(self) -> int:
        return int(self.expression_basis.shape[0])

    @property
    def num_vertices(self) -> int:
        return int(self.mean.shape[0])

    def forward(self, identity: torch.Tensor, expression: torch.Tensor | None = None) -> torch.Tensor:
        """Vertices (B, V, 3) mm, model space.

        Args:
            identity: (B, K) with K <= 100, the first K identity coefficients (the rest are 0).
            expression: (B, M) with M <= 53, the first M expression weights; None means neutral.
        """
        _check_coefficients("identity", identity, self.num_identity)
        batch, k = identity.shape
        dtype = self.mean.dtype
        width = 3 * self.num_vertices
        flat_mean = self.mean.reshape(1, width).expand(batch, width)
        out = torch.addmm(flat_mean, identity.to(dtype), self.identity_basis[:k].reshape(k, width))
        if expression is not None:
            _check_coefficients("expression", expression, self.num_expression)
            if expression.shape[0] != batch:
                raise ValueError(f"expression: expected batch {batch} (as identity), "
                                 f"got {expression.shape[0]}")
            m = expression.shape[1]
            out = torch.addmm(out, expression.to(dtype), self.expression_basis[:m].reshape(m, width))
        return out.reshape(batch, self.num_vertices, 3)

    def default_landmark_vertices(self) -> torch.Tensor:
        """(68,) int64 region vertex of each landmark, contour landmarks on their :data:`JAW_CENTRES`
        jawline candidates (where the sliding jawline starts)."""
        idx = self.landmark_indices.clone()
        idx[JAW_RIGHT_LANDMARKS] = self.jaw_right[list(JAW_CENTRES)]
        idx[JAW_LEFT_LANDMARKS] = self.jaw_left[list(JAW_CENTRES)]
        return idx

    def extra_repr(self) -> str:
        return (f"region={self.region!r}, vertices={self.num_vertices}, faces={self.faces.shape[0]}, "
                f"identity={self.num_identity}, expression={self.num_expression}")


def _select_region(path: Path, region: str) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Read the asset file, keeping only ``region``'s vertices, triangles and UVs."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt", device="cpu") as f:
        meta = json.loads((f.metadata() or {})[_METADATA_KEY])
        v0, v1 = meta["regions"][region]["vertices"]
        p0, p1 = meta["regions"][region]["polygons"]
        out = {
            "mean": f.get_slice("mean")[v0:v1],
            "identity_basis": f.get_slice("identity_basis")[:, v0:v1],
            "expression_basis": f.get_slice("expression_basis")[:, v0:v1],
        }
        faces, uv_faces, owner = f.get_tensor("faces"), f.get_tensor("uv_faces"), f.get_tensor("face_polygon")
        uvs = f.get_tensor("uvs")
        marks = {name: f.get_tensor(name) for name in ("landmark_indices", "jaw_right", "jaw_left")}

    keep = (owner >= p0) & (owner < p1)
    faces, uv_faces = faces[keep], uv_faces[keep]
    if faces.numel() and (faces.min() < v0 or faces.max() >= v1):
        raise ValueError(f"{path}: region {region!r} triangles reach outside vertices [{v0}, {v1})")
    out["faces"] = faces - v0
    used_uvs, out["uv_faces"] = torch.unique(uv_faces, return_inverse=True)
    out["uvs"] = uvs[used_uvs]
    for name, indices in marks.items():
        if indices.min() < v0 or indices.max() >= v1:
            raise ValueError(f"{path}: {name} reach outside region {region!r} vertices [{v0}, {v1})")
        out[name] = indices - v0
    out["vertex_ids"] = torch.arange(v0, v1, dtype=torch.int64)
    return out, list(meta["expression_names"])


def load_morphable_model(
    region: str = "face", *, device: torch.device | str | None = None, path: Path | None = None
) -> MorphableModel:
    """Load the ICT face model (asset ``ict_face_model``) restricted to ``region``.

    Args:
        region: one of ``"narrow_face"``, ``"face"``, ``"face_neck"``, ``"full"``.
        device: where the buffers go (default CPU).
        path: an explicit model file; default ``ganfit_core.assets.resolve("ict_face_model")``
            (which builds it from ICT-FaceKit on first use).
    """
    if region not in REGIONS:
        raise ValueError(f"region: expected one of {REGIONS}, got {region!r}")
    if path is None:
        from ganfit_core.assets import resolve

        path = resolve("ict_face_model")
    tensors, names = _select_region(Path(path), region)
    model = MorphableModel(tensors, names, region)
    return model.to(device) if device is not None else model
