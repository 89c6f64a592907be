"""A prior on ICT's 53 expression weights that keeps a neutral face neutral.

Fitting the 68 sparse landmarks with free blendshapes drives rarely used ones to their bound on a
neutral face (measured on main before #13: cheekPuff_L 1.00, eyeLookIn_R 0.95, mouthStretch_R
0.83): they absorb identity, perspective and detector noise. Three remedies, all on the
coefficient vector only (no model needed):

- **bounds** per blendshape (:data:`REAL_FACE_UPPER`): the shapes a photographed face uses
  (smile, jaw open, blink, brows) keep [0, 1]; the ones that only appear in deliberate grimaces
  (cheek puff, mouth stretch, jaw sideways/forward, mouth left/right, funnel, pucker...) are capped
  at a fraction of full strength. Eye-gaze blendshapes (``eyeLook*``) are fixed at 0: they move
  the eyelids around the gaze direction, which the face fit cannot see from landmarks.
- **sparsity**: an L1 penalty (the weights are >= 0, so the plain sum), each weight scaled by
  the blendshape's displacement RMS relative to the mean RMS, so big shapes cost more per unit.
- **left/right coupling**: ``(w_L - w_R)^2`` for every ``_L``/``_R`` pair (asymmetric
  expressions stay possible, at a price).

Example:
    >>> names = ["jawOpen", "mouthSmile_L", "mouthSmile_R", "eyeLookIn_L", "cheekPuff_L"]
    >>> prior = ExpressionPrior.from_names(names)
    >>> prior.upper.tolist()
    [1.0, 1.0, 1.0, 0.0, 0.25]
    >>> prior.pairs.tolist()
    [[1, 2]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = ["ExpressionPrior", "REAL_FACE_UPPER", "GAZE_PREFIX"]

#: Blendshape names starting with this are the eye-gaze shapes (kept at 0 in the face fit).
GAZE_PREFIX = "eyeLook"

#: Upper bound per blendshape name (without the ``_L``/``_R`` suffix) for faces in photos;
#: names not listed keep the full range [0, 1].
REAL_FACE_UPPER: dict[str, float] = {
    "cheekPuff": 0.25,
    "mouthStretch": 0.4,
    "jawForward": 0.3,
    "jawLeft": 0.3,
    "jawRight": 0.3,
    "mouthLeft": 0.3,
    "mouthRight": 0.3,
    "mouthFunnel": 0.4,
    "mouthPucker": 0.5,
    "mouthRollLower": 0.5,
    "mouthRollUpper": 0.5,
    "mouthShrugLower": 0.5,
    "mouthShrugUpper": 0.5,
    "mouthPress": 0.5,
    "mouthDimple": 0.5,
    "mouthClose": 0.3,
    "noseSneer": 0.5,
    "eyeWide": 0.6,
}


def _base(name: str) -> str:
    return name[:-2] if name.endswith(("_L", "_R")) else name


@dataclass(frozen=True)
class ExpressionPrior:
    """Bounds, sparsity scales and left/right pairs for one model's expression weights.

    Attributes:
        upper: (E,) float32 upper bound of each weight (0 fixes it at 0); lower bounds are 0.
        pairs: (P, 2) int64 indices of the ``(_L, _R)`` blendshape pairs.
        l1_scale: (E,) float32 per-weight multiplier of the L1 penalty (displacement RMS / mean
            RMS when the bases were given, else 1).
    """

    upper: torch.Tensor
    pairs: torch.Tensor
    l1_scale: torch.Tensor

    @classmethod
    def from_names(
        cls,
        names: Sequence[str],
        *,
        bounds: str = "real",
        fit_gaze: bool = False,
        basis: torch.Tensor | None = None,
    ) -> ExpressionPrior:
        """Build the prior for expression ``names`` (ICT order).

        Args:
            names: E blendshape names.
            bounds: ``"real"`` (:data:`REAL_FACE_UPPER`) or ``"full"`` ([0, 1] for all).
            fit_gaze: keep the ``eyeLook*`` shapes free (in their bounds) instead of fixing them at 0.
            basis: optional (E, V, 3) expression displacements (mm) for the L1 scales.
        """
        if bounds not in ("real", "full"):
            raise ValueError(f"bounds: expected 'real' or 'full', got {bounds!r}")
        upper = []
        for name in names:
            cap = REAL_FACE_UPPER.get(_base(name), 1.0) if bounds == "real" else 1.0
            if name.startswith(GAZE_PREFIX) and not fit_gaze:
                cap = 0.0
            upper.append(cap)
        index = {n: i for i, n in enumerate(names)}
        pairs = [(i, index[n[:-2] + "_R"]) for i, n in enumerate(names)
                 if n.endswith("_L") and n[:-2] + "_R" in index]
        if basis is not None:
            if basis.shape[0] != len(names):
                raise ValueError(f"basis: expected ({len(names)}, V, 3), got {tuple(basis.shape)}")
            rms = basis.detach().float().pow(2).sum(-1).mean(-1).sqrt().cpu()
            scale = rms / rms.mean().clamp_min(1e-8)
        else:
            scale = torch.ones(len(names))
        return cls(torch.tensor(upper, dtype=torch.float32),
                   torch.tensor(pairs, dtype=torch.int64).reshape(-1, 2), scale.float())

    def to(self, device: torch.device | str) -> ExpressionPrior:
        """The same prior with its tensors on ``device``."""
        return ExpressionPrior(self.upper.to(device), self.pairs.to(device), self.l1_scale.to(device))

    def l1(self, expression: torch.Tensor) -> torch.Tensor:
        """(B,) scaled L1 norm of ``expression`` (B, E) (weights are >= 0 after projection)."""
        return (expression.abs() * self.l1_scale.to(expression)).sum(-1)

    def asymmetry(self, expression: torch.Tensor) -> torch.Tensor:
        """(B,) sum over left/right pairs of ``(w_L - w_R)^2``."""
        if self.pairs.numel() == 0:
            return expression.new_zeros(expression.shape[0])
        left, right = expression[:, self.pairs[:, 0]], expression[:, self.pairs[:, 1]]
        return (left - right).pow(2).sum(-1)

    @torch.no_grad()
    def project_(self, expression: torch.Tensor) -> torch.Tensor:
        """Clamp ``expression`` (B, E) in place into [0, upper]; returns it."""
        upper = self.upper.to(expression)
        return torch.minimum(expression.clamp_(min=0.0), upper, out=expression)
