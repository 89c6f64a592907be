"""The UV texture data set: aligned UV albedo maps of photos, stored as one safetensors file.

This module is pure data (no fitting engine): the file format, the identity split, contact sheets
and a synthetic set for tests. The extraction from photos needs the fitter and lives above both
packages, in :mod:`ganfit_core.pipelines.uv_extract`
(``python -m ganfit_core.pipelines.uv_extract --source DIR --out DIR``).

File layout (``uv_textures.safetensors``): ``textures`` (N, R, R, 3) uint8 (row 0 at v = 1),
``weights`` (N, R, R) uint8 confidence of the photo colour (255 = skin seen head-on; after
mirroring), ``uv_mask`` (R, R) uint8 (1 on the mesh's UV charts); metadata ``ganfit`` (JSON): stems,
identities, resolution, source attribution, per-photo landmark RMS, ``format``.
``format`` 1: unmasked unwrapping (hair/background kept, weight = visibility x viewing angle);
``format`` 2 (current): per-texel skin selection -- ``weights`` is 0 on hair, background, eyes,
mouth interior and occluders, and ``textures`` there are completed from the set's mean at the
person's skin tone by multi-band blending. Same tensors, names and dtypes in both formats.
Built files are derived from CC BY 4.0 photos: they stay in git-ignored folders, and publishing them
needs the attribution in :data:`ATTRIBUTION`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "ATTRIBUTION",
    "DATASET_FILENAME",
    "UVDataset",
    "list_photos",
    "identity_of",
    "heldout_stems",
    "save_uv_dataset",
    "load_uv_dataset",
    "synthetic_uv_dataset",
    "contact_sheet",
]

DATASET_FILENAME = "uv_textures.safetensors"
PHOTO_FOLDERS: tuple[str, ...] = ("neutral_front", "smiling_front", "canada")
ATTRIBUTION = (
    "Derived from the Face Research Lab London Set (DeBruine & Jones 2017, "
    "doi:10.6084/m9.figshare.5047666.v5) "
    "and Young Adult White Faces with Manipulated Versions (DeBruine 2016, doi:10.6084/m9.figshare.4220517), "
    "CC BY 4.0."
)
_META_KEY = "ganfit"
_HELDOUT_FILE = "heldout.txt"


@dataclass(frozen=True)
class UVDataset:
    """A set of aligned UV textures.

    Attributes:
        textures: (N, R, R, 3) uint8 albedo, row 0 at v = 1.
        weights: (N, R, R) uint8 per-texel confidence (0 = filled in, 255 = seen head-on).
        uv_mask: (R, R) bool, True on the UV charts.
        stems: N photo file stems (e.g. ``"001_03"``); identities: N identity keys.
        info: extra metadata (resolution, source, attribution, per-photo fit RMS...).
    """

    textures: np.ndarray
    weights: np.ndarray
    uv_mask: np.ndarray
    stems: tuple[str, ...]
    identities: tuple[str, ...]
    info: dict

    @property
    def resolution(self) -> int:
        return int(self.textures.shape[1])

    def __len__(self) -> int:
        return int(self.textures.shape[0])

    def split(self) -> tuple[np.ndarray, np.ndarray]:
        """Indices (train, held-out) by identity, using the package's fixed held-out list."""
        held = set(heldout_stems())
        is_held = np.array([s in held for s in self.stems], dtype=bool)
        return np.flatnonzero(~is_held), np.flatnonzero(is_held)

    def subset(self, indices: Sequence[int] | np.ndarray) -> UVDataset:
        idx = np.asarray(indices, dtype=np.int64)
        return UVDataset(self.textures[idx], self.weights[idx], self.uv_mask,
                         tuple(self.stems[i] for i in idx), tuple(self.identities[i] for i in idx), self.info)

    def float_textures(self) -> torch.Tensor:
        """(N, R, R, 3) float32 in [0, 1]."""
        return torch.from_numpy(self.textures).to(torch.float32) / 255.0


def list_photos(source_dir: Path) -> list[Path]:
    """The data set's photos, sorted (folder order of :data:`PHOTO_FOLDERS`, then file name)."""
    source_dir = Path(source_dir)
    photos: list[Path] = []
    for folder in PHOTO_FOLDERS:
        photos += sorted((source_dir / folder).glob("*.jpg"))
    if not photos:
        raise FileNotFoundError(f"no photos under {source_dir}/{{{','.join(PHOTO_FOLDERS)}}}/*.jpg")
    return photos


def identity_of(stem: str) -> str:
    """Identity key of a photo stem (London photos of one person share the number before ``_``).

    Example:
        >>> identity_of("001_08"), identity_of("003f")
        ('london-001', 'canada-003f')
    """
    if "_" in stem:
        return "london-" + stem.split("_")[0]
    return "canada-" + stem


def heldout_stems() -> tuple[str, ...]:
    """Photo stems of the held-out (evaluation) identities, from the package file ``heldout.txt``."""
    text = resources.files("ganfit_core.texture").joinpath(_HELDOUT_FILE).read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def choose_heldout(stems: Sequence[str], fraction: float = 0.15) -> list[str]:
    """Deterministic identity split: identities sorted by sha256 of their key, the first ``fraction``."""
    ids = sorted({identity_of(s) for s in stems}, key=lambda k: hashlib.sha256(k.encode()).hexdigest())
    held = set(ids[: round(fraction * len(ids))])
    return sorted(s for s in stems if identity_of(s) in held)


def save_uv_dataset(dataset: UVDataset, path: Path) -> None:
    """Write ``dataset`` as safetensors (deterministic bytes for equal contents)."""
    from safetensors.numpy import save_file

    meta = dict(dataset.info)
    meta.update(stems=list(dataset.stems), identities=list(dataset.identities))
    save_file(
        {
            "textures": np.ascontiguousarray(dataset.textures, dtype=np.uint8),
            "weights": np.ascontiguousarray(dataset.weights, dtype=np.uint8),
            "uv_mask": np.ascontiguousarray(dataset.uv_mask, dtype=np.uint8),
        },
        str(path),
        metadata={_META_KEY: json.dumps(meta, sort_keys=True)},
    )


def load_uv_dataset(path: Path) -> UVDataset:
    """Read a file written by :func:`save_uv_dataset` (a folder means ``folder/uv_textures.safetensors``)."""
    from safetensors import safe_open

    path = Path(path)
    if path.is_dir():
        path = path / DATASET_FILENAME
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no UV data set here; build one with "
                                "`python -m ganfit_core.pipelines.uv_extract --source DIR --out DIR`")
    with safe_open(str(path), framework="numpy") as f:
        meta = json.loads((f.metadata() or {})[_META_KEY])
        tensors = {k: f.get_tensor(k) for k in ("textures", "weights", "uv_mask")}
    stems = tuple(meta.pop("stems"))
    identities = tuple(meta.pop("identities"))
    mask = tensors["uv_mask"].astype(bool)
    return UVDataset(tensors["textures"], tensors["weights"], mask, stems, identities, meta)


def contact_sheet(textures: np.ndarray, *, columns: int = 16, size: int = 128) -> np.ndarray:
    """Tile (N, R, R, 3) uint8 textures into one (rows*size, columns*size, 3) uint8 image."""
    from PIL import Image

    n = len(textures)
    rows = max(1, -(-n // columns))
    sheet = np.zeros((rows * size, min(columns, n) * size, 3), dtype=np.uint8)
    for i, tex in enumerate(textures):
        tile = np.asarray(Image.fromarray(tex).resize((size, size), Image.Resampling.BOX))
        r, c = divmod(i, columns)
        sheet[r * size:(r + 1) * size, c * size:(c + 1) * size] = tile
    return sheet


# --------------------------------------------------------------------------------------------
# Synthetic data (tests, smoke runs)


def synthetic_uv_dataset(count: int, resolution: int, *, seed: int = 0) -> UVDataset:
    """Random smooth, left-right symmetric 'face-like' UV maps (no photos needed).

    Each texture is a skin tone plus a few Gaussian blobs at fixed 'eye', 'mouth' and 'brow'
    positions with random strength, and a low-frequency random field.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:resolution, 0:resolution] / resolution
    blobs = [(0.28, 0.33, 0.05), (0.28, 0.67, 0.05), (0.58, 0.5, 0.07),
             (0.22, 0.33, 0.04), (0.22, 0.67, 0.04)]
    textures = np.empty((count, resolution, resolution, 3))
    for n in range(count):
        skin = np.array([0.75, 0.55, 0.45]) * rng.uniform(0.6, 1.15) + rng.normal(0, 0.03, 3)
        tex = np.broadcast_to(skin, (resolution, resolution, 3)).copy()
        for cy, cx, s in blobs:
            g = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
            tex += g[..., None] * rng.normal(0, 0.15) * np.array([1.0, 0.7, 0.7])
        k = rng.normal(0, 1, (3, 2))
        field = np.sin(2 * np.pi * (k[0, 0] * xx + k[0, 1] * yy) + rng.uniform(0, 6.3))
        tex += 0.05 * field[..., None] * rng.normal(0, 1, 3)
        textures[n] = 0.5 * (tex + tex[:, ::-1])
    stems = tuple(f"synthetic{n:04d}" for n in range(count))
    return UVDataset(
        textures=np.round(np.clip(textures, 0, 1) * 255).astype(np.uint8),
        weights=np.full((count, resolution, resolution), 255, dtype=np.uint8),
        uv_mask=np.ones((resolution, resolution), dtype=bool),
        stems=stems,
        identities=stems,
        info={"format": 1, "resolution": resolution, "source": "synthetic"},
    )
