"""Benchmark the fitted 3D shape on data the project has (issue #13, benchmarks 2 and 3).

Usage::

    python bench/shape.py consistency [--people 12] [--variant NAME:field=value,...] [--json PATH]
    python bench/shape.py synthetic   [--faces 8]   [--variant NAME:field=value,...] [--json PATH]

**consistency** (benchmark 2, identity-shape consistency): for each of the 82 London people
(``london-faces/neutral_front/NNN_03.jpg`` and ``smiling_front/NNN_08.jpg``), fit both photos and
take the *neutral-expression* shape (fitted identity, expression weights zero). Distances are the
mean vertex distance (mm) on ICT's narrow face after similarity alignment. Same-person pairs:
neutral photo vs smiling photo of one person; different-people pairs: neutral of one vs smiling
of another. Scores: ``ratio`` = mean different-people distance / mean same-person distance
(> 1: the shape carries the person), and ``auc`` = ROC AUC of "different people" against
"same person" by distance (ties count half). The mean face gives every photo the same shape:
ratio 1 and AUC 0.5 by definition (it scores nothing).

**synthetic** (benchmark 3, synthetic faces that are not in-model): ICT shapes (all 100
identity modes ~N(0, 1), a few expressions) textured with real UV maps unwrapped from held-out
London photos by the texture data pipeline (``ganfit_core.texture.dataset``), rendered at 512 px
over a smooth random background with random pose (yaw up to 75 degrees), random SH lighting and a
random focal length (10-75 degrees field of view across the image; the fit is not told it). The
photo then goes through the ordinary pipeline (detector landmarks, crop, fit); when the detector
finds no face the exact projected 68 landmarks are used instead (FaceMesh then runs from them),
and the row says so. Score: mean
vertex error (mm) on the narrow face after similarity alignment, against the rendered shape.

Each run scores the mean face and every fit variant: ``default`` (``FitConfig()``), ``baseline``
(the fit of main before #13, i.e. :data:`BASELINE` overrides) and any ``--variant``. Only the
public API is used (``prepare_target``, ``fit``, ``FitConfig``). Fits run with one torch thread
unless ``--threads`` says otherwise; wall times depend on the machine's load.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ganfit_core import FitConfig, prepare_target  # noqa: E402
from ganfit_core.fitting import fit  # noqa: E402
from ganfit_core.metrics import procrustes_error_mm  # noqa: E402

SHARED = Path(os.environ.get("GANFIT_SOURCE_DIR", Path(__file__).resolve().parents[2] / "shared"))
LONDON = SHARED / "london-faces"
NARROW_FACE = 6706  # ICT narrow-face vertices 0..6705
#: FitConfig overrides that reproduce the fit of main before issue #13 (the "current" fit).
BASELINE: dict[str, object] = {
    "focal_hypotheses": 0, "landmark_robust_scale": 0.0, "contour_weight": 0.5, "identity_reg_weight": 1e-3,
    "expression_bounds": "full", "fit_gaze": 1, "expression_l1_weight": 0.0,
    "expression_symmetry_weight": 0.0, "dense_weight": 0.0,
}


# ---------------------------------------------------------------------------------------------
# Shared helpers


def load_model() -> torch.nn.Module:
    """The ICT face-region morphable model (wherever the package keeps it)."""
    try:
        from ganfit_core.model.morphable import load_morphable_model
    except ImportError:
        from ganfit_core.morphable import load_morphable_model
    return load_morphable_model("face", device="cpu")


def fitted_identity(result: object) -> np.ndarray:
    """(K,) fitted identity coefficients of a FitResult (typed field or params dict)."""
    face = getattr(result, "face", None)
    if face is not None and hasattr(face, "identity"):
        return np.asarray(face.identity, dtype=np.float32).reshape(-1)
    return np.asarray(result.params["identity"], dtype=np.float32).reshape(-1)


def fitted_focal_photo_px(result: object) -> float | None:
    """Fitted focal length in photo px (the fit's camera lives in crop px), if the result has it."""
    camera = getattr(result, "camera", None)
    if camera is not None and hasattr(camera, "focal"):
        focal = float(np.asarray(camera.focal).reshape(-1)[0])
    elif isinstance(getattr(result, "params", None), dict) and "focal_px" in result.params:
        focal = float(result.params["focal_px"][0])
    else:
        return None
    linear = np.asarray(result.crop_to_photo)[:2, :2]
    return focal * math.sqrt(abs(float(np.linalg.det(linear))))


def neutral_shape(model: torch.nn.Module, identity: np.ndarray) -> np.ndarray:
    """(V, 3) mm: the model with ``identity`` and all expression weights zero."""
    ident = torch.zeros(1, model.num_identity)
    ident[0, : len(identity)] = torch.from_numpy(identity)
    with torch.no_grad():
        return model(ident, torch.zeros(1, model.num_expression))[0].numpy()


def run_fit(target: object, config: FitConfig) -> tuple[object, float]:
    """Run ``fit`` to its end: (FitResult, wall seconds)."""
    start = time.perf_counter()
    result = None
    for event in fit(target, config):
        result = event.result or result
    if result is None:
        raise RuntimeError("the fit ended without a result")
    return result, time.perf_counter() - start


def parse_variants(items: list[str], overrides: list[str]) -> dict[str, FitConfig]:
    """``default``, ``baseline`` and each ``NAME:field=value,...`` as FitConfigs."""
    def convert(key: str, value: str) -> object:
        kind = type(getattr(FitConfig(), key))
        if kind is bool:
            return value.lower() in ("1", "true", "yes")
        return kind(value)

    default_changes = dict(item.split("=", 1) for item in overrides)
    variants = {"default": FitConfig().replace(**{k: convert(k, v) for k, v in default_changes.items()}),
                "baseline": FitConfig().replace(**BASELINE)}
    for item in items:
        name, _, spec = item.partition(":")
        changes = dict(pair.split("=", 1) for pair in spec.split(",") if pair)
        variants[name] = FitConfig().replace(**{k: convert(k, v) for k, v in changes.items()})
    return variants


def roc_auc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """P(positive > negative) + P(equal) / 2 (the Mann-Whitney form of the ROC AUC)."""
    pos = np.asarray(positives, np.float64)[:, None]
    neg = np.asarray(negatives, np.float64)[None, :]
    return float((pos > neg).mean() + 0.5 * (pos == neg).mean())


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def table(rows: list[dict], columns: tuple[str, ...]) -> str:
    cells = [list(columns)] + [[_fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells)


def machine() -> dict:
    return {"cpu_count": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
            "loadavg": os.getloadavg(), "threads": torch.get_num_threads()}


# ---------------------------------------------------------------------------------------------
# Benchmark 2: identity-shape consistency (neutral vs smiling photo of the same person)


def london_people(limit: int | None) -> list[tuple[str, Path, Path]]:
    """(person id, neutral photo, smiling photo) for the London people having both, sorted."""
    out = []
    for neutral in sorted((LONDON / "neutral_front").glob("*_03.jpg")):
        person = neutral.stem.split("_")[0]
        smiling = LONDON / "smiling_front" / f"{person}_08.jpg"
        if smiling.is_file():
            out.append((person, neutral, smiling))
    if not out:
        raise SystemExit(f"no London photos under {LONDON} (set GANFIT_SOURCE_DIR)")
    return out[:limit]


def consistency_scores(neutral: list[np.ndarray], smiling: list[np.ndarray]) -> dict:
    """Same-person vs different-people distances of neutral-expression shapes (narrow face, mm)."""
    n = len(neutral)
    dist = np.array([[procrustes_error_mm(neutral[i][:NARROW_FACE], smiling[j][:NARROW_FACE])
                      for j in range(n)] for i in range(n)])
    dist = np.round(dist, 6)  # identical shapes align to ~1e-7 mm, not 0: call that 0
    same = np.diag(dist)
    different = dist[~np.eye(n, dtype=bool)]
    mean_same, mean_diff = float(same.mean()), float(different.mean())
    ratio = 1.0 if mean_same == mean_diff == 0 else mean_diff / max(mean_same, 1e-12)
    # Rank-1 identification: is the person's own smiling shape the nearest to their neutral one?
    rank1 = float(np.mean([dist[i, i] < np.delete(dist[i], i).min() for i in range(n)])) if n > 1 else 0.0
    return {"same_mm": mean_same, "different_mm": mean_diff, "ratio": ratio,
            "auc": roc_auc(different, same), "rank1": rank1 if mean_diff > 0 else 1.0 / n,
            "pairs_same": int(n), "pairs_different": int(different.size)}


def bench_consistency(args: argparse.Namespace, variants: dict[str, FitConfig]) -> dict:
    model = load_model()
    people = london_people(args.people)
    print(f"consistency: {len(people)} people, variants {list(variants)}", flush=True)
    mean_shape = model.mean.numpy()
    results: dict[str, dict] = {"mean_face": consistency_scores([mean_shape] * len(people),
                                                                [mean_shape] * len(people))}
    per_photo: list[dict] = []
    targets: dict[tuple[Path, int], object] = {}  # detection runs once per photo and resolution
    for name, config in variants.items():
        shapes = {"neutral": [], "smiling": []}
        seconds = []
        for person, neutral_path, smiling_path in people:
            for kind, path in (("neutral", neutral_path), ("smiling", smiling_path)):
                key = (path, config.render_size)
                if key not in targets:
                    targets[key] = prepare_target(path, resolution=config.render_size)
                target = targets[key]
                result, wall = run_fit(target, config)
                identity = fitted_identity(result)
                shapes[kind].append(neutral_shape(model, identity))
                seconds.append(wall)
                per_photo.append({"variant": name, "person": person, "photo": kind, "wall_s": wall,
                                  "identity_norm": float(np.linalg.norm(identity)),
                                  "focal_photo_px": fitted_focal_photo_px(result),
                                  "stage_seconds": dict(result.stage_seconds)})
                print(f"  {name} {person} {kind}: {wall:.1f} s  |identity| {np.linalg.norm(identity):.2f}",
                      flush=True)
        scores = consistency_scores(shapes["neutral"], shapes["smiling"])
        scores["fit_s_median"] = float(np.median(seconds))
        results[name] = scores
    rows = [{"method": k, **v} for k, v in results.items()]
    print()
    print(table(rows, ("method", "same_mm", "different_mm", "ratio", "auc", "rank1", "fit_s_median")))
    return {"benchmark": "consistency", "people": [p for p, _, _ in people],
            "configs": {k: v.to_dict() for k, v in variants.items()}, "scores": results,
            "per_photo": per_photo, "machine": machine()}


# ---------------------------------------------------------------------------------------------
# Benchmark 3: synthetic faces that are not in-model


@dataclass(frozen=True)
class SyntheticPhoto:
    """One rendered face: the photo, its true shape and how it was made."""

    image: np.ndarray  # (S, S, 3) uint8
    vertices: np.ndarray  # (V, 3) mm, model space (identity + expression)
    landmarks: np.ndarray  # (68, 2) photo px, exact projections (contour on the jaw centres)
    yaw_deg: float
    fov_deg: float
    uv_stem: str


def uv_maps(count: int, cache: Path) -> tuple[np.ndarray, list[str]]:
    """(N, R, R, 3) uint8 UV maps unwrapped from held-out London neutral photos (cached in ``cache``)."""
    try:
        from ganfit_core.pipelines.uv_extract import extract_dataset
        from ganfit_core.texture.dataset import heldout_stems, load_uv_dataset, save_uv_dataset
    except ImportError as exc:  # pragma: no cover - the pipeline moved
        raise SystemExit(f"the texture data pipeline is not importable: {exc}") from exc
    stems = [s for s in heldout_stems() if s.endswith("_03")][:count]
    path = cache / f"uv_heldout_{'_'.join(stems)}.safetensors"
    if path.is_file():
        data = load_uv_dataset(path)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "neutral_front"
            folder.mkdir()
            for stem in stems:
                (folder / f"{stem}.jpg").symlink_to(LONDON / "neutral_front" / f"{stem}.jpg")
            print(f"unwrapping {len(stems)} held-out photos into UV maps ...", flush=True)
            data = extract_dataset(Path(tmp), resolution=256)
        cache.mkdir(parents=True, exist_ok=True)
        save_uv_dataset(data, path)
    return data.textures, list(data.stems)


def render_synthetic(seed: int, model: torch.nn.Module, renderer: object, textures: np.ndarray,
                     stems: list[str], *, size: int = 512, max_yaw_deg: float = 75.0,
                     fov_range: tuple[float, float] = (10.0, 75.0)) -> SyntheticPhoto:
    """Render synthetic face ``seed`` (deterministic): see the module docstring."""
    from ganfit_core.render.camera import FRONTAL_ROTATION, PinholeCamera, axis_angle_to_matrix, project
    from ganfit_core.render.lighting import ambient_sh

    rng = np.random.default_rng(1000 + seed)
    identity = torch.from_numpy(rng.normal(0.0, 1.0, (1, model.num_identity)).astype(np.float32))
    expression = torch.zeros(1, model.num_expression)
    names = list(model.expression_names)
    allowed = [i for i, n in enumerate(names) if not n.startswith("eyeLook")]
    active = rng.choice(allowed, size=4, replace=False)
    expression[0, active] = torch.from_numpy(rng.uniform(0.0, 0.4, 4).astype(np.float32))
    yaw = float(rng.uniform(-max_yaw_deg, max_yaw_deg))
    pitch, roll = float(rng.uniform(-15, 15)), float(rng.uniform(-10, 10))
    fov = float(rng.uniform(*fov_range))
    focal = 0.5 * size / math.tan(math.radians(fov) / 2.0)
    with torch.no_grad():
        vertices = model(identity, expression)
        face_width_mm = float(vertices[0, :, 0].max() - vertices[0, :, 0].min())
        width_px = rng.uniform(0.3, 0.45) * size
        depth = focal * face_width_mm / width_px
        offset = rng.uniform(-0.08, 0.08, 2) * size
        translation = torch.tensor([[offset[0] * depth / focal, offset[1] * depth / focal, depth]],
                                   dtype=torch.float32)
        rotation = torch.tensor([[math.radians(pitch), math.radians(yaw), math.radians(roll)]])
        cam_rotation = FRONTAL_ROTATION @ axis_angle_to_matrix(rotation)
        cam_vertices = vertices @ cam_rotation.transpose(1, 2) + translation[:, None]
        camera = PinholeCamera(torch.tensor([focal]), torch.tensor([[size / 2, size / 2]]), size, size)
        k = seed % len(textures)
        texture = torch.from_numpy(textures[k]).float().div(255.0)[None]
        sh = ambient_sh(1, float(rng.uniform(0.75, 1.0)))
        sh[:, 1:4, :] += torch.from_numpy(rng.uniform(-0.35, 0.35, 3).astype(np.float32))[None, :, None]
        sh[:, 0, :] *= torch.from_numpy(rng.uniform(0.92, 1.08, 3).astype(np.float32))
        out = renderer.render(cam_vertices, model.faces, model.uvs, model.uv_faces, texture, camera, sh)
        yy, xx = np.mgrid[0:size, 0:size] / size
        colours = rng.uniform(0.15, 0.8, (2, 3))
        background = colours[0] * (1 - yy[..., None]) + colours[1] * yy[..., None]
        background = background + rng.normal(0.0, 0.02, background.shape)
        back = torch.from_numpy(background.astype(np.float32))[None]
        image = out.image + (1.0 - out.mask) * back
        idx = model.landmark_indices.clone()
        jaw = [1, 3, 5, 7, 9, 11, 13, 15]
        idx[0:8] = model.jaw_right[jaw]
        idx[9:17] = model.jaw_left[jaw]
        landmarks = project(cam_vertices[:, idx], camera)[0].numpy()
    image_u8 = (image[0].clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
    return SyntheticPhoto(image_u8, vertices[0].numpy(), landmarks.astype(np.float64), yaw, fov, stems[k])


def synthetic_target(photo: SyntheticPhoto, resolution: int) -> tuple[object, str]:
    """FitTarget of a synthetic photo: detector landmarks, or the exact ones when it finds no face."""
    from ganfit_core import FitTarget
    from ganfit_core.face import FaceDetection, FaceError, crop_face

    try:
        return prepare_target(photo.image, resolution=resolution, min_face_px=40), "detector"
    except FaceError:
        pass
    from ganfit_core.face.detect import with_dense_landmarks

    lm = photo.landmarks
    box = np.array([lm[:, 0].min(), lm[:, 1].min(), lm[:, 0].max(), lm[:, 1].max()])
    detection = FaceDetection(box=box, score=1.0, landmarks=lm)
    crop = crop_face(photo.image, detection, resolution)
    # FaceMesh from the exact 68 points' crop, mapped into the fit's crop like prepare_target does.
    points = with_dense_landmarks(photo.image, detection).dense_landmarks
    to_crop = np.linalg.inv(crop.crop_to_photo)
    scale = float(np.sqrt(abs(np.linalg.det(crop.crop_to_photo[:2, :2]))))
    xy = points[:, :2] @ to_crop[:2, :2].T + to_crop[:2, 2]
    dense = np.concatenate([xy, points[:, 2:] / scale], axis=1)
    size = photo.image.shape[1], photo.image.shape[0]
    target = FitTarget.from_crop(crop.image, np.asarray(crop.landmarks, np.float32),
                                 crop_to_photo=crop.crop_to_photo, photo_size=size, dense_landmarks=dense)
    return target, "exact 68 (no detection)"


def bench_synthetic(args: argparse.Namespace, variants: dict[str, FitConfig]) -> dict:
    from ganfit_core.render.renderer import make_renderer

    model = load_model()
    renderer = make_renderer("torch", device="cpu")
    textures, stems = uv_maps(min(args.faces, 12), args.cache)
    print(f"synthetic: {args.faces} faces, {len(textures)} UV maps, variants {list(variants)}", flush=True)
    mean = model.mean.numpy()[:NARROW_FACE]
    rows: list[dict] = []
    targets: dict[int, tuple[object, str]] = {}
    for seed in range(args.faces):
        photo = render_synthetic(seed, model, renderer, textures, stems)
        truth = photo.vertices[:NARROW_FACE]
        row = {"face": seed, "uv": photo.uv_stem, "yaw_deg": photo.yaw_deg, "fov_deg": photo.fov_deg,
               "mean_face_mm": procrustes_error_mm(mean, truth)}
        for name, config in variants.items():
            if config.render_size not in targets:
                targets[config.render_size] = synthetic_target(photo, config.render_size)
            target, source = targets[config.render_size]
            row["landmarks"] = source
            result, wall = run_fit(target, config)
            row[f"{name}_mm"] = procrustes_error_mm(result.vertices[:NARROW_FACE], truth)
            row[f"{name}_s"] = wall
            focal = fitted_focal_photo_px(result)
            if focal is not None:
                row[f"{name}_fov_deg"] = math.degrees(2 * math.atan(0.5 * photo.image.shape[1] / focal))
        targets.clear()
        rows.append(row)
        print("  " + "  ".join(f"{k}={_fmt(v)}" for k, v in row.items()), flush=True)
    summary = {"mean_face_mm": float(np.mean([r["mean_face_mm"] for r in rows]))}
    for name in variants:
        summary[f"{name}_mm"] = float(np.mean([r[f"{name}_mm"] for r in rows]))
        summary[f"{name}_s_median"] = float(np.median([r[f"{name}_s"] for r in rows]))
    columns = ("face", "uv", "yaw_deg", "fov_deg", "landmarks", "mean_face_mm",
               *[c for name in variants for c in (f"{name}_mm", f"{name}_fov_deg", f"{name}_s")])
    print()
    print(table(rows + [{"face": "mean", **summary}], columns))
    return {"benchmark": "synthetic", "configs": {k: v.to_dict() for k, v in variants.items()},
            "summary": summary, "rows": rows, "machine": machine()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmark", choices=("consistency", "synthetic"))
    parser.add_argument("--people", type=int, default=82, help="consistency: first N London people")
    parser.add_argument("--faces", type=int, default=8, help="synthetic: number of rendered faces")
    parser.add_argument("--variants", default="default,baseline",
                        help="comma list of the fit variants to run (default, baseline, --variant names)")
    parser.add_argument("--variant", action="append", default=[], help="NAME:field=value,... extra variant")
    parser.add_argument("--set", nargs="*", default=[], help="field=value overrides of the default variant")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=Path("bench/results/shape_cache"),
                        help="folder for the unwrapped UV maps (git-ignored)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    variants = parse_variants(args.variant, args.set)
    wanted = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(wanted) - set(variants))
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {sorted(variants)}")
    variants = {k: variants[k] for k in wanted}
    if "baseline" in variants and "default" in variants and variants["baseline"] == variants["default"]:
        print("note: baseline == default (no #13 change in the default config yet): running it once")
        variants.pop("baseline")
    report = (bench_consistency if args.benchmark == "consistency" else bench_synthetic)(args, variants)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
