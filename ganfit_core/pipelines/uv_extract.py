"""Photos -> cleaned UV albedo maps (the texture priors' data set), and the ``texture_pca`` builder.

``python -m ganfit_core.pipelines.uv_extract --source DIR --out DIR [--resolution 256] [--limit N]
[--geometry-cache FILE] [--segmentation] [--no-brows]`` writes ``uv_textures.safetensors`` (format:
:mod:`ganfit_core.texture.dataset`), ``contact_sheet.png``, ``weights_sheet.png`` and ``mean.png``.

Per photo:

1. load, detect the face and its 68 landmarks, crop (:func:`ganfit_core.fitting.target.prepare_target`);
   fit pose, focal length, identity and expression to the landmarks with the fitting engine's
   landmark stages (``rigid`` + ``shape``; :func:`geometry_config`) -> :class:`PhotoGeometry`
   (cacheable: the slow part);
2. downscale the photo so the face is about ``resolution`` pixels wide (the UV map's texel density)
   and unwrap it into UV space with visibility and viewing-angle confidence
   (:func:`ganfit_core.texture.unwrap.unwrap_photo`);
3. **per-texel source selection** (:func:`unwrap_face`): a texel takes photo colour only where it
   is visible, faces the camera (confidence from ``normal . view``), and is skin: not in the eyes,
   the mouth interior, above the forehead bound (landmark regions,
   :func:`ganfit_core.texture.skin.landmark_regions`), and of the person's skin colour
   (a robust Gaussian fitted on the cheeks and nose, :func:`ganfit_core.texture.skin.fit_skin_colour`,
   which rejects hair, background and occluders), times an optional person/skin segmentation
   (``skin_mask``, photo px). Lips and brows are face features: kept whatever their colour;
4. divide out SH shading estimated on the skin texels only; fill from the mirrored side.

Then, over the whole set (:func:`complete_textures`): the set's confidence-weighted mean (texels
no photo sees take the nearest seen texel's mean); each map's unseen texels are filled with that
mean scaled to the person's skin tone, joined by multi-band (Laplacian) blending
(:func:`ganfit_core.texture.blend.multiband_blend`); texels outside the UV charts copy their nearest
chart texel.

Deterministic for a given code version (one thread, fixed seeds); ``info["seconds"]`` is the only
field that changes between runs. CPU: about 0.7 s a photo for the geometry and 0.3 s for the rest.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ganfit_core.texture.blend import gain_matched, multiband_blend, push_pull_fill
from ganfit_core.texture.dataset import ATTRIBUTION, UVDataset, identity_of, list_photos
from ganfit_core.texture.skin import select_skin
from ganfit_core.texture.unwrap import (
    UVLayout,
    fill_outside,
    mirror_fill,
    project_points,
    remove_shading,
    sample_mask,
    unwrap_photo,
    uv_layout,
)

if TYPE_CHECKING:
    from ganfit_core.fitting.config import FitConfig

__all__ = [
    "PhotoGeometry",
    "UnwrappedFace",
    "SkinMasker",
    "geometry_config",
    "fit_geometry",
    "unwrap_face",
    "complete_textures",
    "extract_dataset",
    "build_texture_pca",
    "main",
]

STUDIO_FOV_DEG = 8.0  # horizontal field of view across the face crop the geometry fit starts from
DATA_FORMAT = 2  # 1: unmasked unwrapping; 2: per-texel skin selection, multi-band completion
_MIN_TOTAL_WEIGHT = 0.5  # summed confidence over the set below which a texel counts as never seen
_GEOMETRY_VERSION = "landmark-stages-v1"
#: A person/skin segmentation: photo (H, W, 3) uint8 -> (H, W) float in [0, 1] (1 = person's skin).
SkinMasker = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class PhotoGeometry:
    """The landmark fit of one photo, in that photo's pixels.

    Attributes:
        vertices_cam: (V, 3) float64 fitted face vertices, OpenCV camera space, mm.
        focal: focal length, photo px; principal: (2,) principal point, photo px.
        landmarks: (68, 2) float64 detected landmarks, photo px.
        rms_px: RMS distance between detected and fitted landmarks, photo px.
    """

    vertices_cam: np.ndarray
    focal: float
    principal: np.ndarray
    landmarks: np.ndarray
    rms_px: float


@dataclass(frozen=True)
class UnwrappedFace:
    """One photo's cleaned UV albedo (before the set-level completion).

    Attributes:
        albedo: (R, R, 3) float64 in [0, 1], shading divided out, mirror-filled (0 where unseen).
        weight: (R, R) float64 confidence of the photo colour after mirroring (0 = fill).
        skin: (R, R) float64 the selection score in [0, 1] before mirroring (1 = skin seen).
        rms_px: landmark fit RMS, photo px.
    """

    albedo: np.ndarray
    weight: np.ndarray
    skin: np.ndarray
    rms_px: float


def geometry_config() -> FitConfig:
    """The fitting engine's settings used for the data set: its landmark stages only (rigid + shape).

    The studio portraits were taken with a long lens: starting from a narrow field of view
    (``STUDIO_FOV_DEG`` across the face crop) keeps the perspective weak, so the cheeks are seen
    nearly head-on (a 40 degree start loses about 12 % of the well-seen texels), so the focal
    length is not searched. The dense (FaceMesh) term stays off: its correspondence asset is built
    from renders textured by this data set's PCA, so using it here would make the two builds depend
    on each other.
    """
    from ganfit_core.fitting.config import FitConfig

    return FitConfig(full_steps=0, detail_steps=0, preview_every=0, texture_prior="simple", device="cpu",
                     renderer="torch", seed=0, initial_fov_deg=STUDIO_FOV_DEG, focal_hypotheses=0,
                     dense_weight=0.0)


def fit_geometry(image: np.ndarray, context, config: FitConfig, *, name: str = "photo") -> PhotoGeometry:
    """Detect, crop and fit the landmark stages on ``image`` (H, W, 3) uint8 -> :class:`PhotoGeometry`.

    Raises:
        ValueError: no face found (``FaceError``).
    """
    from ganfit_core.fitting.engine import fit, run_to_end
    from ganfit_core.fitting.target import prepare_target

    target = prepare_target(image, resolution=config.render_size, dense=False, segment=False, use_exif=False)
    result = run_to_end(fit(target, config, context=context))
    rotation = result.camera.rotation.astype(np.float64)
    translation = result.camera.translation.astype(np.float64)
    vertices_cam = result.vertices.astype(np.float64) @ rotation.T + translation
    # The fit's camera lives in crop pixels; crop -> photo is an axis-aligned scale + shift.
    crop_to_photo = np.asarray(target.crop_to_photo, dtype=np.float64)
    crop_scale = float(crop_to_photo[0, 0])
    focal_crop = float(result.camera.focal)
    principal_crop = result.camera.principal.astype(np.float64)
    landmarks_crop = project_points(vertices_cam[context.model.landmark_indices.cpu().numpy()], focal_crop,
                                    tuple(principal_crop))
    rms_crop = float(np.sqrt(((landmarks_crop - target.landmarks) ** 2).sum(1).mean()))
    return PhotoGeometry(
        vertices_cam=vertices_cam,
        focal=focal_crop * crop_scale,
        principal=crop_scale * principal_crop + crop_to_photo[:2, 2],
        landmarks=target.landmarks.astype(np.float64) * crop_scale + crop_to_photo[:2, 2],
        rms_px=rms_crop * crop_scale,
    )


def unwrap_face(
    image: np.ndarray,
    geometry: PhotoGeometry,
    layout: UVLayout,
    *,
    texel_density_px: float,
    skin_mask: np.ndarray | None = None,
    include_brows: bool = True,
) -> UnwrappedFace:
    """Unwrap one photo with per-texel source selection (module docstring, steps 2-4).

    Args:
        image: (H, W, 3) uint8 photo.
        geometry: its landmark fit (:func:`fit_geometry`).
        layout: :func:`ganfit_core.texture.unwrap.uv_layout` of the fitted mesh's topology.
        texel_density_px: the photo is downscaled so the jaw (landmarks 0-16) is about this many px.
        skin_mask: optional (H, W) float in [0, 1], photo px: a person/skin segmentation
            (MediaPipe selfie segmentation, a matting net...); multiplies the selection score.
        include_brows: take the brows from the photo (face features the priors should carry);
            False treats them like hair.

    Raises:
        ValueError: too few skin texels seen (no colour model or shading can be fitted).
    """
    from PIL import Image

    height, width = image.shape[:2]
    if skin_mask is not None and np.shape(skin_mask) != (height, width):
        raise ValueError(f"skin_mask: expected shape {(height, width)}, got {np.shape(skin_mask)}")
    jaw_px = float(np.linalg.norm(geometry.landmarks[16] - geometry.landmarks[0]))
    scale = min(1.0, texel_density_px / max(jaw_px, 1.0))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    work = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BOX), dtype=np.float64) / 255.0
    sxy = np.array([size[0] / width, size[1] / height])
    sampled = unwrap_photo(work, geometry.vertices_cam, layout, geometry.focal * sxy[0],
                           tuple(geometry.principal * sxy))
    mask = None if skin_mask is None else sample_mask(skin_mask, sampled.pixels / sxy)
    score = select_skin(sampled, geometry.landmarks * sxy, layout.mask, skin_mask=mask,
                        include_brows=include_brows)
    if (sampled.weight * score > 0.3).sum() < 50:
        raise ValueError("fewer than 50 skin texels selected (hair, occluder, or a segmentation without "
                         "the person?)")
    albedo, _ = remove_shading(sampled, skin=score)
    weight = sampled.weight * score
    albedo, weight = mirror_fill(np.where(weight[..., None] > 0, albedo, 0.0), weight)
    return UnwrappedFace(albedo=albedo, weight=weight, skin=score, rms_px=geometry.rms_px)


def complete_textures(faces: Sequence[UnwrappedFace], layout: UVLayout) -> tuple[np.ndarray, np.ndarray]:
    """Set-level completion (module docstring): -> textures (N, R, R, 3) float in [0, 1], mean (R, R, 3)."""
    albedo = np.stack([f.albedo for f in faces])
    weight = np.stack([f.weight for f in faces])
    total = weight.sum(0)
    mean = (albedo * weight[..., None]).sum(0) / np.maximum(total, 1e-6)[..., None]
    # Texels no photo sees (inner lips, nostrils, behind the ears) fill smoothly from their surroundings.
    mean = push_pull_fill(mean, np.clip(total / _MIN_TOTAL_WEIGHT - 1.0, 0.0, 1.0) * layout.mask)
    out = np.empty_like(albedo)
    for i, face in enumerate(faces):
        fill = gain_matched(mean, face.albedo, face.weight)
        alpha = np.clip(face.weight / 0.3, 0.0, 1.0)
        out[i] = fill_outside(multiband_blend(face.albedo, fill, alpha), layout)
    return np.clip(out, 0.0, 1.0), mean


def _geometry_cache_key(path: Path) -> str:
    return hashlib.sha256(f"{_GEOMETRY_VERSION}:{path.name}:{path.stat().st_size}".encode()).hexdigest()[:16]


def _load_geometry_cache(path: Path | None) -> dict[str, PhotoGeometry]:
    if path is None or not Path(path).is_file():
        return {}
    with np.load(path, allow_pickle=False) as data:
        keys = [str(k) for k in data["keys"]]
        return {k: PhotoGeometry(data["vertices"][i].astype(np.float64), float(data["focal"][i]),
                                 data["principal"][i], data["landmarks"][i], float(data["rms"][i]))
                for i, k in enumerate(keys)}


def _save_geometry_cache(path: Path, cache: dict[str, PhotoGeometry]) -> None:
    keys = sorted(cache)
    np.savez(path, keys=np.array(keys), vertices=np.stack([cache[k].vertices_cam for k in keys]),
             focal=np.array([cache[k].focal for k in keys]),
             principal=np.stack([cache[k].principal for k in keys]),
             landmarks=np.stack([cache[k].landmarks for k in keys]),
             rms=np.array([cache[k].rms_px for k in keys]))


def extract_dataset(
    source_dir: Path,
    *,
    resolution: int = 256,
    limit: int | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    skin_masker: SkinMasker | None = None,
    geometry_cache: Path | None = None,
    include_brows: bool = True,
) -> UVDataset:
    """Build the cleaned UV data set from the London/Canada face photos under ``source_dir``.

    Args:
        source_dir: the ``london-faces`` folder (with ``neutral_front/``, ``smiling_front/``, ``canada/``).
        resolution: UV map side in texels.
        limit: use only the first ``limit`` photos (quick checks).
        progress: called as ``progress(done, total, stem)`` after each photo.
        skin_masker: optional person/skin segmentation (:data:`SkinMasker`) applied to each photo.
        geometry_cache: optional ``.npz`` file keeping the landmark fits between runs (read and updated).
        include_brows: see :func:`unwrap_face`.
    """
    from ganfit_core.face.image_io import load_image
    from ganfit_core.fitting.engine import build_context

    photos = list_photos(source_dir)[:limit]
    config = geometry_config()
    context = build_context(config)
    model = context.model
    layout = uv_layout(model.faces.cpu().numpy(), model.uvs.cpu().numpy(), model.uv_faces.cpu().numpy(),
                       resolution)
    cache = _load_geometry_cache(geometry_cache)
    cache_changed = False
    start = time.perf_counter()
    results: list[UnwrappedFace] = []
    skipped: list[str] = []
    kept: list[Path] = []
    for i, path in enumerate(photos):
        try:
            image = load_image(path)
            key = _geometry_cache_key(path)
            if key not in cache:
                cache[key] = fit_geometry(image, context, config, name=path.name)
                cache_changed = True
            mask = None if skin_masker is None else skin_masker(image)
            results.append(unwrap_face(image, cache[key], layout, texel_density_px=1.0 * resolution,
                                       skin_mask=mask, include_brows=include_brows))
            kept.append(path)
        except ValueError as exc:  # no face found, or too little of it seen
            skipped.append(f"{path.name}: {exc}")
        if progress is not None:
            progress(i + 1, len(photos), path.stem)
    if geometry_cache is not None and cache_changed:
        _save_geometry_cache(Path(geometry_cache), cache)
    if not results:
        raise RuntimeError(f"no usable photo under {source_dir}: {skipped[:3]}")
    textures, _ = complete_textures(results, layout)
    stems = tuple(p.stem for p in kept)
    info = {
        "format": DATA_FORMAT,
        "resolution": resolution,
        "source": "london-faces",
        "attribution": ATTRIBUTION,
        "selection": {"include_brows": include_brows, "skin_masker": skin_masker is not None},
        "fit_rms_px": [round(r.rms_px, 3) for r in results],
        "skin_fraction": [round(float(r.skin[layout.mask].mean()), 4) for r in results],
        "skipped": skipped,
        "seconds": round(time.perf_counter() - start, 1),
    }
    return UVDataset(
        textures=np.round(textures * 255.0).astype(np.uint8),
        weights=np.round(np.stack([r.weight for r in results]) * 255.0).astype(np.uint8),
        uv_mask=layout.mask.copy(),
        stems=stems,
        identities=tuple(identity_of(s) for s in stems),
        info=info,
    )


def build_texture_pca(source_dir: Path, out_path: Path) -> None:
    """Asset builder for ``texture_pca``: extract the cleaned UV data set, PCA the training split.

    Deterministic on one machine (single-threaded torch, sorted inputs, float64 PCA).
    ``source_dir`` is the ``london-faces`` folder. Takes a few minutes on a 2-core CPU.
    """
    from ganfit_core.texture.pca import pca_from_dataset, save_pca

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        data = extract_dataset(Path(source_dir))
    finally:
        torch.set_num_threads(threads)
    save_pca(pca_from_dataset(data), Path(out_path))


def main(argv: list[str] | None = None) -> int:
    """CLI: photos -> ``uv_textures.safetensors`` + contact sheets (see the module docstring)."""
    from PIL import Image

    from ganfit_core.texture.dataset import DATASET_FILENAME, contact_sheet, save_uv_dataset

    parser = argparse.ArgumentParser(prog="python -m ganfit_core.pipelines.uv_extract",
                                     description="photos -> cleaned UV texture data set")
    parser.add_argument("--source", required=True, help="the london-faces folder")
    parser.add_argument("--out", required=True, help="output folder (git-ignored!)")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--limit", type=int, default=None, help="only the first N photos")
    parser.add_argument("--geometry-cache", type=Path, default=None,
                        help=".npz keeping the landmark fits between runs (speeds up re-extraction)")
    parser.add_argument("--no-brows", action="store_true", help="treat the brows as hair (not taken)")
    parser.add_argument("--segmentation", action="store_true",
                        help="also multiply the selection by MediaPipe's selfie segmentation (person mask; "
                        "asset mediapipe_selfie_segmentation). Off for the texture_pca asset: on the "
                        "studio photos the skin-colour model already rejects the plain background")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    def report(done: int, total: int, stem: str) -> None:
        print(f"\r[{done}/{total}] {stem}  {time.perf_counter() - start:.0f}s", end="", flush=True)

    masker = None
    if args.segmentation:
        from ganfit_core.face.segmentation import segment_person

        masker = segment_person
    data = extract_dataset(Path(args.source), resolution=args.resolution, limit=args.limit, progress=report,
                           geometry_cache=args.geometry_cache, include_brows=not args.no_brows,
                           skin_masker=masker)
    print()
    save_uv_dataset(data, out / DATASET_FILENAME)
    Image.fromarray(contact_sheet(data.textures)).save(out / "contact_sheet.png")
    weights = np.repeat(data.weights[..., None], 3, axis=-1)
    Image.fromarray(contact_sheet(weights, size=64)).save(out / "weights_sheet.png")
    mean = np.round(data.textures.astype(np.float64).mean(0)).astype(np.uint8)
    Image.fromarray(mean).save(out / "mean.png")
    rms = np.asarray(data.info["fit_rms_px"])
    seconds = time.perf_counter() - start
    print(f"{len(data)} textures at {data.resolution}x{data.resolution} in {seconds:.1f}s; "
          f"landmark RMS median {np.median(rms):.2f}px; skin fraction median "
          f"{np.median(data.info['skin_fraction']):.2f}; skipped {len(data.info['skipped'])}: "
          f"{data.info['skipped'][:5]}")
    print(f"wrote {out / DATASET_FILENAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
