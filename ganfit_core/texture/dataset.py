"""The UV texture data set: photos -> aligned UV albedo maps, stored as one safetensors file.

Extraction (``python -m ganfit_core.texture extract --source DIR --out DIR``), per photo:

1. load, detect the face and its 68 landmarks, crop (:func:`ganfit_core.fitting.target.prepare_target`);
2. fit pose, focal length, identity and expression to the landmarks with the fitting engine's
   landmark stages (``rigid`` + ``shape``; :func:`geometry_config`);
3. downscale the photo so the face is about ``resolution`` pixels wide (the UV map's texel density)
   and map the fit's crop camera to it;
4. unwrap the visible pixels into UV space, divide out estimated SH shading, fill poorly seen texels
   from the mirrored side (:mod:`ganfit_core.texture.unwrap`).

Then, over the whole set: texels seen in no photo (nor their mirror) blend into the set's mean
(weighted by confidence), and texels outside the UV charts copy their nearest chart texel.

File layout (``uv_textures.safetensors``): ``textures`` (N, R, R, 3) uint8 (row 0 at v = 1),
``weights`` (N, R, R) uint8 confidence (255 = seen head-on; after mirroring), ``uv_mask`` (R, R)
uint8 (1 on the mesh's UV charts); metadata ``ganfit`` (JSON): stems, identities, resolution,
source attribution, per-photo landmark RMS. Built files are derived from CC BY 4.0 photos: they stay
in git-ignored folders, and publishing them needs the attribution in :data:`ATTRIBUTION`.

Trade-offs (CPU budget: all 204 photos in a few minutes on 2 cores, about 0.7 s of CPU a photo):
geometry comes from landmarks only (no photometric stage), lighting is estimated per photo by SH
least squares on the unwrapped colours assuming one skin albedo (not by the engine's lighting
stage), and the resolution defaults to 256 texels. Deterministic for a given code version (one
thread, fixed seeds); ``info["seconds"]`` is the only field that changes between runs.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy import ndimage

if TYPE_CHECKING:
    from ganfit_core.fitting.config import FitConfig

__all__ = [
    "ATTRIBUTION",
    "DATASET_FILENAME",
    "UVDataset",
    "list_photos",
    "identity_of",
    "heldout_stems",
    "extract_dataset",
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
STUDIO_FOV_DEG = 8.0  # horizontal field of view across the face crop the geometry fit starts from
_MIN_TOTAL_WEIGHT = 0.5  # summed confidence over the set below which a texel counts as never seen
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
                                "`python -m ganfit_core.texture extract --source DIR --out DIR`")
    with safe_open(str(path), framework="numpy") as f:
        meta = json.loads((f.metadata() or {})[_META_KEY])
        tensors = {k: f.get_tensor(k) for k in ("textures", "weights", "uv_mask")}
    stems = tuple(meta.pop("stems"))
    identities = tuple(meta.pop("identities"))
    mask = tensors["uv_mask"].astype(bool)
    return UVDataset(tensors["textures"], tensors["weights"], mask, stems, identities, meta)


# --------------------------------------------------------------------------------------------
# Extraction from photos


@dataclass(frozen=True)
class _Unwrapped:
    albedo: np.ndarray  # (R, R, 3) float64
    weight: np.ndarray  # (R, R) float64
    rms_px: float


def geometry_config() -> FitConfig:
    """The fitting engine's settings used for the data set: its landmark stages only (rigid + shape).

    The studio portraits were taken with a long lens: starting from a narrow field of view
    (``STUDIO_FOV_DEG`` across the face crop) keeps the perspective weak, so the cheeks are seen
    nearly head-on (a 40 degree start loses about 12 % of the well-seen texels).
    """
    from ganfit_core.fitting.config import FitConfig

    return FitConfig(full_steps=0, detail_steps=0, preview_every=0, texture_prior="simple", device="cpu",
                     renderer="torch", seed=0, initial_fov_deg=STUDIO_FOV_DEG)


def _unwrap_one(path: Path, context, config: FitConfig, layout, *, target_face_px: float) -> _Unwrapped:
    """Detect, fit (engine landmark stages) and unwrap one photo (see the module docstring)."""
    from PIL import Image

    from ganfit_core.face.image_io import load_image
    from ganfit_core.fitting.engine import fit, run_to_end
    from ganfit_core.fitting.target import prepare_target
    from ganfit_core.texture.unwrap import mirror_fill, project_points, remove_shading, unwrap_photo

    image = load_image(path)
    target = prepare_target(image, resolution=config.render_size)
    result = run_to_end(fit(target, config, context=context))
    rotation = result.camera.rotation.astype(np.float64)
    translation = result.camera.translation.astype(np.float64)
    vertices_cam = result.vertices.astype(np.float64) @ rotation.T + translation
    # The fit's camera lives in crop pixels; crop -> photo is an axis-aligned scale + shift.
    crop_to_photo = np.asarray(target.crop_to_photo, dtype=np.float64)
    crop_scale = float(crop_to_photo[0, 0])
    focal_crop = result.camera.focal
    principal_crop = result.camera.principal.astype(np.float64)
    landmarks_crop = project_points(vertices_cam[context.model.landmark_indices.cpu().numpy()], focal_crop,
                                    tuple(principal_crop))
    rms_crop = float(np.sqrt(((landmarks_crop - target.landmarks) ** 2).sum(1).mean()))

    # Work on the photo downscaled so the face is about target_face_px wide (the texel density).
    landmarks = target.landmarks.astype(np.float64) * crop_scale
    jaw_px = float(np.linalg.norm(landmarks[16] - landmarks[0]))
    scale = min(1.0, target_face_px / max(jaw_px, 1.0))
    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    work = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BOX), dtype=np.float64) / 255.0
    sx, sy = size[0] / width, size[1] / height
    focal = focal_crop * crop_scale * sx
    principal = ((crop_scale * principal_crop[0] + crop_to_photo[0, 2]) * sx,
                 (crop_scale * principal_crop[1] + crop_to_photo[1, 2]) * sy)
    sampled = unwrap_photo(work, vertices_cam, layout, focal, principal)
    albedo, _ = remove_shading(sampled)
    albedo, weight = mirror_fill(albedo, sampled.weight)
    return _Unwrapped(albedo, weight, rms_crop * crop_scale)


def extract_dataset(
    source_dir: Path,
    *,
    resolution: int = 256,
    limit: int | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> UVDataset:
    """Build the UV data set from the London/Canada face photos under ``source_dir`` (deterministic).

    Args:
        source_dir: the ``london-faces`` folder (with ``neutral_front/``, ``smiling_front/``, ``canada/``).
        resolution: UV map side in texels.
        limit: use only the first ``limit`` photos (quick checks).
        progress: called as ``progress(done, total, stem)`` after each photo.
    """
    from ganfit_core.fitting.engine import build_context
    from ganfit_core.texture.unwrap import fill_outside, uv_layout

    photos = list_photos(source_dir)[:limit]
    config = geometry_config()
    context = build_context(config)
    model = context.model
    layout = uv_layout(model.faces.cpu().numpy(), model.uvs.cpu().numpy(), model.uv_faces.cpu().numpy(),
                       resolution)
    start = time.perf_counter()
    results: list[_Unwrapped] = []
    skipped: list[str] = []
    kept: list[Path] = []
    for i, path in enumerate(photos):
        try:
            results.append(_unwrap_one(path, context, config, layout, target_face_px=1.0 * resolution))
            kept.append(path)
        except ValueError as exc:  # no face found, or too little of it seen
            skipped.append(f"{path.name}: {exc}")
        if progress is not None:
            progress(i + 1, len(photos), path.stem)
    if not results:
        raise RuntimeError(f"no usable photo under {source_dir}: {skipped[:3]}")

    albedo = np.stack([r.albedo for r in results])  # (N, R, R, 3)
    weight = np.stack([r.weight for r in results])  # (N, R, R)
    total = weight.sum(0)
    mean = (albedo * weight[..., None]).sum(0) / np.maximum(total, 1e-6)[..., None]
    # Texels no photo sees (inner lips, nostrils, behind the ears) take the nearest seen texel's mean.
    seen = total > _MIN_TOTAL_WEIGHT
    _, (ri, rj) = ndimage.distance_transform_edt(~seen, return_indices=True)
    mean = mean[ri, rj]
    alpha = np.clip(weight / 0.3, 0.0, 1.0)[..., None]
    filled = alpha * albedo + (1.0 - alpha) * mean[None]
    filled = np.stack([fill_outside(t, layout) for t in filled])
    stems = tuple(p.stem for p in kept)
    info = {
        "format": 1,
        "resolution": resolution,
        "source": "london-faces",
        "attribution": ATTRIBUTION,
        "fit_rms_px": [round(r.rms_px, 3) for r in results],
        "skipped": skipped,
        "seconds": round(time.perf_counter() - start, 1),
    }
    return UVDataset(
        textures=np.round(np.clip(filled, 0.0, 1.0) * 255.0).astype(np.uint8),
        weights=np.round(weight * 255.0).astype(np.uint8),
        uv_mask=layout.mask.copy(),
        stems=stems,
        identities=tuple(identity_of(s) for s in stems),
        info=info,
    )


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
