"""The morphable model restricted to the landmark and jawline vertices (the fast landmark-only stages)."""

from __future__ import annotations

import torch

from ganfit_core.model.layout import NUM_SPARSE_ROWS

__all__ = ["SparseLandmarkModel"]


class SparseLandmarkModel(torch.nn.Module):
    """Rows (see ``ganfit_core.model.layout``): ``SPARSE_LANDMARK_ROWS`` the 68 landmark vertices,
    ``SPARSE_JAW_RIGHT_ROWS`` / ``SPARSE_JAW_LEFT_ROWS`` the 17 ``jaw_right`` / ``jaw_left`` candidates.

    ``index`` (102,) holds the region vertex of each row.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        index = torch.cat([model.landmark_indices, model.jaw_right, model.jaw_left])
        if len(index) != NUM_SPARSE_ROWS:
            raise ValueError(f"sparse model: expected {NUM_SPARSE_ROWS} rows, got {len(index)}")
        self.register_buffer("index", index)
        self.register_buffer("mean", model.mean[index].clone())
        num_id = model.identity_basis.shape[0]
        self.register_buffer("identity_basis", model.identity_basis[:, index].reshape(num_id, -1))
        num_exp = model.expression_basis.shape[0]
        self.register_buffer("expression_basis", model.expression_basis[:, index].reshape(num_exp, -1))

    def forward(self, identity: torch.Tensor, expression: torch.Tensor) -> torch.Tensor:
        """(B, 102, 3) model-space vertices, mm."""
        k = identity.shape[1]
        flat = self.mean.reshape(1, -1) + identity @ self.identity_basis[:k]
        flat = flat + expression @ self.expression_basis
        return flat.reshape(identity.shape[0], -1, 3)
