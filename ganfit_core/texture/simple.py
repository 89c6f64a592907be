"""The ``"simple"`` texture prior: a low-resolution, left/right-mirrored UV albedo grid.

No learned data. The latent is the left half (plus centre column) of a coarse
``grid x grid`` RGB grid in logit space; decoding mirrors it across the UV
square's vertical centre line ``u = 0.5`` (ICT-FaceKit's face UV layout is
left/right symmetric about that line, see ``figures/uv_face.png``), blurs it
with a small binomial kernel, applies a sigmoid (so albedo stays in (0, 1)) and
upsamples bilinearly to ``resolution``. The regulariser penalises differences
between neighbouring grid cells (smoothness) plus a weak pull towards the
skin-tone mean. Zero latent decodes to a uniform skin tone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganfit_core.texture.base import TexturePrior

__all__ = ["SimpleTexturePrior", "load_simple_prior", "SKIN_TONE"]

SKIN_TONE: tuple[float, float, float] = (0.72, 0.55, 0.46)
"""Mean albedo (linear RGB in [0, 1]) the prior starts from."""


class SimpleTexturePrior(TexturePrior):
    """Mirrored coarse UV grid prior.

    Args:
        grid: side of the coarse grid in cells (even, >= 4).
        resolution: side of the decoded texture in texels.
        mean_color: RGB in (0, 1), the texture at latent 0.
        magnitude_weight: weight of the pull towards the mean inside :meth:`regulariser`.
    """

    def __init__(
        self,
        *,
        grid: int = 32,
        resolution: int = 512,
        mean_color: tuple[float, float, float] = SKIN_TONE,
        magnitude_weight: float = 0.05,
    ) -> None:
        super().__init__()
        if grid < 4 or grid % 2:
            raise ValueError(f"grid must be an even number >= 4, got {grid}")
        if resolution < grid:
            raise ValueError(f"resolution ({resolution}) must be >= grid ({grid})")
        if not all(0.0 < c < 1.0 for c in mean_color):
            raise ValueError(f"mean_color must lie in (0, 1), got {mean_color}")
        self.grid = grid
        self.resolution = resolution
        self.half = grid // 2
        self.latent_size = grid * self.half * 3
        self.magnitude_weight = magnitude_weight
        mean = torch.tensor(mean_color, dtype=torch.float32)
        self.register_buffer("mean_logit", torch.log(mean / (1 - mean)), persistent=False)
        kernel = torch.tensor([1.0, 2.0, 1.0])
        kernel = torch.outer(kernel, kernel) / 16.0
        self.register_buffer("kernel", kernel.expand(3, 1, 3, 3).clone(), persistent=False)

    def _half_grid(self, latent: torch.Tensor) -> torch.Tensor:
        if latent.ndim != 2 or latent.shape[1] != self.latent_size:
            raise ValueError(f"latent must be (B, {self.latent_size}), got {tuple(latent.shape)}")
        return latent.reshape(-1, 3, self.grid, self.half)

    def grid_logits(self, latent: torch.Tensor) -> torch.Tensor:
        """Latent ``(B, L)`` -> full mirrored, blurred grid logits ``(B, 3, grid, grid)``."""
        half = self._half_grid(latent)
        full = torch.cat([half, half.flip(-1)], dim=-1)
        full = F.conv2d(F.pad(full, (1, 1, 1, 1), mode="replicate"), self.kernel, groups=3)
        return full + self.mean_logit.view(1, 3, 1, 1)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Latent ``(B, L)`` -> texture ``(B, R, R, 3)`` in (0, 1), row 0 at v = 1, symmetric in u."""
        logits = self.grid_logits(latent)
        size = (self.resolution, self.resolution)
        up = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return torch.sigmoid(up).permute(0, 2, 3, 1).contiguous()

    def regulariser(self, latent: torch.Tensor) -> torch.Tensor:
        """Mean squared neighbour difference of the half grid + ``magnitude_weight`` * mean squared latent."""
        half = self._half_grid(latent)
        dy = (half[..., 1:, :] - half[..., :-1, :]).pow(2).mean()
        dx = (half[..., :, 1:] - half[..., :, :-1]).pow(2).mean()
        return dy + dx + self.magnitude_weight * half.pow(2).mean()

    def initial_latent(self, batch: int) -> torch.Tensor:
        """Zeros ``(batch, L)``: a uniform skin tone."""
        return torch.zeros(batch, self.latent_size, device=self.mean_logit.device)


def load_simple_prior(*, device: torch.device | str | None = None, **kwargs: object) -> SimpleTexturePrior:
    """Build the simple prior (no files needed) on ``device``.

    Example:
        >>> prior = load_simple_prior()
        >>> tex = prior.decode(prior.initial_latent(2))
        >>> tuple(tex.shape), bool(torch.allclose(tex, tex.flip(2)))
        ((2, 512, 512, 3), True)
    """
    prior = SimpleTexturePrior(**kwargs)  # type: ignore[arg-type]
    return prior.to(device) if device is not None else prior
