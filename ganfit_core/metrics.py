"""Evaluation metrics: aligned vertex error (mm), PSNR and SSIM inside a mask."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["procrustes_error_mm", "psnr", "ssim"]


def procrustes_error_mm(predicted: np.ndarray, truth: np.ndarray, *, scale: bool = True) -> float:
    """Mean vertex distance (mm) after the best similarity (or rigid) alignment of ``predicted`` to ``truth``.

    Args:
        predicted, truth: (V, 3) corresponding vertices, mm.

    Example:
        >>> x = np.random.default_rng(0).normal(size=(10, 3))
        >>> round(procrustes_error_mm(2 * x + 1, x), 6)
        0.0
    """
    p, t = np.asarray(predicted, np.float64), np.asarray(truth, np.float64)
    pm, tm = p.mean(0), t.mean(0)
    pc, tc = p - pm, t - tm
    u, s, vt = np.linalg.svd(pc.T @ tc)
    d = np.sign(np.linalg.det(u @ vt))
    fix = np.diag([1.0, 1.0, d])
    rot = u @ fix @ vt
    k = (s * np.diag(fix)).sum() / (pc**2).sum() if scale else 1.0
    aligned = k * pc @ rot + tm
    return float(np.linalg.norm(aligned - t, axis=1).mean())


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB between uint8 (or [0, 255] float) images (H, W, 3), optionally inside ``mask`` (H, W)."""
    diff = (np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2
    if mask is not None:
        m = np.asarray(mask, bool)
        if not m.any():
            raise ValueError("psnr: the mask is empty")
        diff = diff[m]
    mse = float(diff.mean())
    return float("inf") if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None, *, sigma: float = 1.5) -> float:
    """Mean SSIM (Wang et al. 2004, Gaussian window, grey levels of uint8 RGB) over ``mask`` (H, W).

    Example:
        >>> x = np.random.default_rng(0).integers(0, 255, (32, 32, 3)).astype(np.uint8)
        >>> round(ssim(x, x), 6)
        1.0
    """
    radius = max(1, int(round(3.5 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()

    def gaussian_filter(x: np.ndarray, _sigma: float) -> np.ndarray:
        """Separable Gaussian blur with reflected borders (no SciPy needed)."""
        padded = np.pad(x, radius, mode="reflect")
        rows = sum(t * padded[:, i : i + x.shape[1]] for i, t in enumerate(taps))
        return sum(t * rows[i : i + x.shape[0], :] for i, t in enumerate(taps))

    def grey(x: np.ndarray) -> np.ndarray:
        return np.asarray(x, np.float64) @ np.array([0.299, 0.587, 0.114])

    x, y = grey(a), grey(b)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = gaussian_filter(x, sigma), gaussian_filter(y, sigma)
    vx = gaussian_filter(x * x, sigma) - mx * mx
    vy = gaussian_filter(y * y, sigma) - my * my
    cxy = gaussian_filter(x * y, sigma) - mx * my
    value = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    if mask is not None:
        m = np.asarray(mask, bool)
        if not m.any():
            raise ValueError("ssim: the mask is empty")
        value = value[m]
    return float(value.mean())
