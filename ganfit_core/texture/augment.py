"""Augmentations for training texture priors on a small UV data set (about 170 training maps).

Two kinds, both on channels-first batches ``(B, 3, R, R)`` float in [0, 1]:

- :func:`augment_real` -- applied to the *data* only, producing new plausible UV maps, so the
  generator learns them too:
    - **mirror**: left-right flip (the ICT UV layout is mirror-symmetric, so a flipped map is the
      mirrored face), probability 0.5;
    - **colour / lighting jitter**: per-sample brightness gain (x0.9-1.1), per-channel gain
      (+-4 %, white balance), saturation (x0.85-1.15) and a weak vertical/horizontal
      brightness gradient (+-4 %, residual shading);
    - **small warps**: translation by up to 1.5 % of the map (bilinear, border-clamped). Larger
      warps would break the alignment of eyes and lips that the prior must keep.
- :func:`augment_residual` -- mirror and small translation only, for the GAN's residual maps
  (zero-mean, any range: colour jitter of a residual means nothing).
- :func:`diff_augment` -- DiffAugment (Zhao et al. 2020, "colour,translation,cutout"), applied to
  *both* real and generated images right before the discriminator, differentiably, so the
  discriminator cannot memorise the few training maps while the generator is not pushed to
  produce augmented-looking textures.

All randomness comes from an explicit ``torch.Generator`` (reproducible runs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["augment_real", "augment_residual", "diff_augment"]


def _rand(batch: int, gen: torch.Generator, like: torch.Tensor, *shape: int) -> torch.Tensor:
    return torch.rand(batch, *shape, generator=gen).to(like)


def augment_real(x: torch.Tensor, gen: torch.Generator, *, translate: float = 0.015) -> torch.Tensor:
    """Mirror, colour/lighting jitter and a small translation of real UV maps (B, 3, R, R) in [0, 1]."""
    b, _, h, w = x.shape
    flip = _rand(b, gen, x, 1, 1, 1) < 0.5
    x = torch.where(flip, x.flip(-1), x)
    gain = 0.9 + 0.2 * _rand(b, gen, x, 1, 1, 1)
    channel = 0.96 + 0.08 * _rand(b, gen, x, 3, 1, 1)
    x = x * gain * channel
    grey = x.mean(dim=1, keepdim=True)
    x = grey + (x - grey) * (0.85 + 0.3 * _rand(b, gen, x, 1, 1, 1))
    ys = torch.linspace(-1, 1, h, device=x.device).view(1, 1, h, 1)
    xs = torch.linspace(-1, 1, w, device=x.device).view(1, 1, 1, w)
    slope = (_rand(b, gen, x, 2, 1, 1) - 0.5) * 0.08
    x = x * (1.0 + slope[:, :1] * ys + slope[:, 1:] * xs)
    shift = (_rand(b, gen, x, 2) - 0.5) * 2.0 * translate * 2.0  # in normalised [-1, 1] units
    theta = torch.zeros(b, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = 1.0
    theta[:, 1, 1] = 1.0
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return x.clamp(0.0, 1.0)


def augment_residual(x: torch.Tensor, gen: torch.Generator, *, translate: float = 0.015) -> torch.Tensor:
    """Mirror (p = 0.5) and a small shift of residual maps (B, 3, R, R) (any range; no colour jitter)."""
    b = x.shape[0]
    flip = _rand(b, gen, x, 1, 1, 1) < 0.5
    x = torch.where(flip, x.flip(-1), x)
    shift = (_rand(b, gen, x, 2) - 0.5) * 2.0 * translate * 2.0
    theta = torch.zeros(b, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = 1.0
    theta[:, 1, 1] = 1.0
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def diff_augment(x: torch.Tensor, gen: torch.Generator, *, translation: float = 0.125,
                 cutout: float = 0.5) -> torch.Tensor:
    """DiffAugment colour + translation + cutout on (B, 3, R, R); differentiable in ``x``."""
    b, _, h, w = x.shape
    # colour: brightness, saturation, contrast
    x = x + (_rand(b, gen, x, 1, 1, 1) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand(b, gen, x, 1, 1, 1) * 2.0) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * (_rand(b, gen, x, 1, 1, 1) + 0.5) + mean
    # translation with zero padding, by integer texels
    sx, sy = int(w * translation + 0.5), int(h * translation + 0.5)
    tx = (_rand(b, gen, x, 1) * (2 * sx + 1)).long().view(b) - sx
    ty = (_rand(b, gen, x, 1) * (2 * sy + 1)).long().view(b) - sy
    x = _shift(x, tx, ty)
    # cutout: one zeroed square per sample
    ch, cw = int(h * cutout + 0.5), int(w * cutout + 0.5)
    ox = (_rand(b, gen, x, 1) * (w + 1 - cw % 2)).long().view(b, 1, 1)
    oy = (_rand(b, gen, x, 1) * (h + 1 - ch % 2)).long().view(b, 1, 1)
    yy = torch.arange(h, device=x.device).view(1, h, 1)
    xx = torch.arange(w, device=x.device).view(1, 1, w)
    inside = ((yy - oy).abs() <= ch // 2) & ((xx - ox).abs() <= cw // 2)
    return x * (~inside).unsqueeze(1).to(x.dtype)


def _shift(x: torch.Tensor, tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    """Shift each sample by integer (tx, ty) texels, zero padding: (B, C, H, W)."""
    b, c, h, w = x.shape
    yy = torch.arange(h, device=x.device).view(1, h, 1) - ty.view(b, 1, 1)
    xx = torch.arange(w, device=x.device).view(1, 1, w) - tx.view(b, 1, 1)
    valid = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
    index = (yy.clamp(0, h - 1) * w + xx.clamp(0, w - 1)).view(b, 1, h * w).expand(-1, c, -1)
    out = x.reshape(b, c, h * w).gather(2, index).view(b, c, h, w)
    return out * valid.unsqueeze(1).to(x.dtype)
