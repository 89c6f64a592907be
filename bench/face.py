"""Benchmark: face detection + 68 landmarks — speed by photo size, accuracy on London portraits.

Speed: ms per photo (detect + landmarks, all faces) for the face-api port and, when the
test-only packages ``dlib-bin`` + ``face-recognition-models`` are installed, dlib's HOG
detector (no upsampling) + 68-point predictor, at several long-side sizes.

Accuracy on ``london-faces/neutral_front`` (frontal 1350² studio photos):
* ``nme_vs_dlib``: mean point distance between face-api's and dlib's 68 landmarks, divided by
  the inter-ocular distance (dlib eye centres) — an agreement figure, not ground truth;
* ``eye_vs_pupil``: distance of each method's eye centre (mean of the 6 eye points) from the
  photo's hand-placed FRL pupil points (template points 0 and 1) / inter-ocular distance.

Accuracy on synthetic renders (``--synthetic N``): N random ICT faces from
:func:`ganfit_core.synthetic.make_synthetic_face` (416² render, head ~240 px wide, yaw cycling
0 / +20 / -20 degrees) pasted at a random place in a 512² canvas over a plain or noisy
background; the mesh's eye and mouth holes are filled with an off-white eye with a brown iris
(without it the detector misses half the faces). The true landmarks are exact projections, so
the error is against ground truth: mean px and / inter-ocular distance (outer eye corners 36,
45), jawline (0-16) vs inner (17-67).
The synthetic jawline is fixed model vertices while the detector places it on the silhouette,
so the inner-point error is the fair figure.

    python bench/face.py [--n 20] [--sizes 640 1280 1920] [--synthetic 12] [--synthetic-only]
                         [--threads 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.ndimage import binary_fill_holes

from ganfit_core.face import detect_faces, load_image

SHARED = Path(os.environ.get("GANFIT_SOURCE_DIR", Path(__file__).resolve().parents[2] / "shared"))


def _dlib() -> tuple[object, object] | None:
    """(HOG detector, 68-point predictor) or None without the test-only packages."""
    spec = importlib.util.find_spec("face_recognition_models")
    if importlib.util.find_spec("dlib") is None or spec is None or spec.origin is None:
        return None
    import dlib

    model = Path(spec.origin).parent / "models" / "shape_predictor_68_face_landmarks.dat"
    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(model))


def _dlib_faces(dlib_models: tuple[object, object], image: np.ndarray) -> list[np.ndarray]:
    """dlib landmarks (68, 2) in our pixel convention, per face, largest first."""
    detector, predictor = dlib_models
    rects = sorted(detector(image, 0), key=lambda r: -r.area())  # type: ignore[operator]
    return [
        np.array([[p.x + 0.5, p.y + 0.5] for p in predictor(image, r).parts()])  # type: ignore[operator]
        for r in rects
    ]


def _resize(image: np.ndarray, long_side: int) -> np.ndarray:
    scale = long_side / max(image.shape[:2])
    size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))


def _time_ms(fn: object, image: np.ndarray, repeats: int) -> float:
    fn(image)  # type: ignore[operator]  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn(image)  # type: ignore[operator]
    return (time.perf_counter() - start) / repeats * 1000.0


def _eyes(landmarks: np.ndarray) -> np.ndarray:
    return np.stack([landmarks[36:42].mean(axis=0), landmarks[42:48].mean(axis=0)])


def speed(
    sizes: list[int], repeats: int, dlib_models: tuple[object, object] | None
) -> list[dict[str, object]]:
    photo = load_image(SHARED / "face-api" / "samples" / "sample1.jpg", max_side=4096)
    rows = []
    for size in sizes:
        image = _resize(photo, size)
        row: dict[str, object] = {"long_side": size, "faces": len(detect_faces(image))}
        row["faceapi_ms"] = _time_ms(detect_faces, image, repeats)
        if dlib_models is not None:
            row["dlib_faces"] = len(_dlib_faces(dlib_models, image))
            row["dlib_ms"] = _time_ms(lambda im: _dlib_faces(dlib_models, im), image, repeats)
        rows.append(row)
    return rows


def accuracy(n: int, dlib_models: tuple[object, object] | None) -> dict[str, object]:
    paths = sorted((SHARED / "london-faces" / "neutral_front").glob("*.jpg"))[:n]
    nme, pupil_fa, pupil_dlib, found = [], [], [], 0
    for path in paths:
        image = load_image(path)
        pupils = np.loadtxt(path.with_suffix(".tem"), skiprows=1, max_rows=2)
        pupils = pupils[np.argsort(pupils[:, 0])]
        iod = float(np.linalg.norm(pupils[1] - pupils[0]))
        faces = detect_faces(image)
        if len(faces) != 1:
            continue
        found += 1
        ours = faces[0].landmarks
        pupil_fa.append(np.linalg.norm(_eyes(ours) - pupils, axis=1).mean() / iod)
        if dlib_models is not None:
            theirs = _dlib_faces(dlib_models, image)
            if theirs:
                ref = theirs[0]
                nme.append(
                    np.linalg.norm(ours - ref, axis=1).mean() / np.linalg.norm(*np.diff(_eyes(ref), axis=0))
                )
                pupil_dlib.append(np.linalg.norm(_eyes(ref) - pupils, axis=1).mean() / iod)
    out: dict[str, object] = {"photos": len(paths), "exactly_one_face": found}
    out["faceapi_eye_vs_pupil"] = float(np.mean(pupil_fa)) if pupil_fa else None
    if nme:
        out["nme_vs_dlib"] = float(np.mean(nme))
        out["nme_vs_dlib_median"] = float(np.median(nme))
        out["dlib_eye_vs_pupil"] = float(np.mean(pupil_dlib))
    return out


SYNTH_CANVAS = 512  # px, side of the synthetic test image
SYNTH_RENDER = 416  # px, side of the render pasted into it (head ~240 px, outer eye corners ~150 px)
SYNTH_YAWS = (0.0, 20.0, -20.0)  # degrees, cycled over the faces


def _background(rng: np.random.Generator, noisy: bool) -> np.ndarray:
    """(SYNTH_CANVAS, SYNTH_CANVAS, 3) float32 in [0, 1]: a plain colour, or a gradient plus noise."""
    size = SYNTH_CANVAS
    colour = rng.uniform(0.15, 0.85, 3).astype(np.float32)
    back = np.broadcast_to(colour, (size, size, 3)).copy()
    if noisy:
        ramp = np.linspace(-0.5, 0.5, size, dtype=np.float32)
        gx, gy = rng.uniform(-0.3, 0.3, 2)
        back += (gx * ramp[None, :] + gy * ramp[:, None])[..., None]
        back += rng.normal(0.0, 0.08, back.shape).astype(np.float32)
    return back.clip(0.0, 1.0)


def _eyes_and_mouth(landmarks: np.ndarray, size: int) -> np.ndarray:
    """(size, size, 3) float32 fill for the mesh's eye/mouth holes: off-white, a brown iris disk
    (radius 0.3 eye widths) at each eye's centre; ``landmarks`` (68, 2) px in the render."""
    fill = np.full((size, size, 3), 0.8, dtype=np.float32)
    ys, xs = np.mgrid[:size, :size] + 0.5
    for first in (36, 42):
        centre = landmarks[first : first + 6].mean(axis=0)
        radius = 0.3 * np.linalg.norm(landmarks[first + 3] - landmarks[first])
        fill[(xs - centre[0]) ** 2 + (ys - centre[1]) ** 2 < radius**2] = (0.25, 0.18, 0.12)
    return fill


def synthetic_photo(
    seed: int, yaw_deg: float, noisy: bool, model: torch.nn.Module, renderer: object
) -> tuple[np.ndarray, np.ndarray, float]:
    """One synthetic test photo: ((H, W, 3) uint8, true (68, 2) landmarks px, true yaw degrees).

    ``make_synthetic_face`` draws yaw = u * max_yaw_deg with u in [-1, 1] fixed by the seed, so a
    tiny probe render with max_yaw_deg=1 reads u and the real render then asks for yaw_deg / u.
    """
    from ganfit_core.synthetic import make_synthetic_face

    kwargs = {"model": model, "renderer": renderer, "background": (0.0, 0.0, 0.0)}
    max_yaw = 0.0
    if yaw_deg != 0.0:
        probe = make_synthetic_face(seed, size=16, max_yaw_deg=1.0, **kwargs)  # type: ignore[arg-type]
        u = float(np.degrees(probe.rotation[1]))
        max_yaw = yaw_deg / u if abs(u) > 1e-3 else 0.0
    face = make_synthetic_face(seed, size=SYNTH_RENDER, max_yaw_deg=max_yaw, **kwargs)  # type: ignore[arg-type]
    truth = face.target.landmarks
    rng = np.random.default_rng(seed)
    canvas = _background(rng, noisy)
    x0, y0 = rng.integers(0, SYNTH_CANVAS - SYNTH_RENDER + 1, 2)
    region = canvas[y0 : y0 + SYNTH_RENDER, x0 : x0 + SYNTH_RENDER]
    # Rendered over black, so the render is already coverage-weighted: add what lies behind it, the
    # background outside the head and _eyes_and_mouth in the mesh's eye and mouth holes.
    coverage = face.mask[..., None]
    holes = (binary_fill_holes(face.mask > 0.5) & (face.mask <= 0.5))[..., None]
    behind = np.where(holes, _eyes_and_mouth(truth, SYNTH_RENDER), region)
    region[:] = face.target.image / np.float32(255) + (1 - coverage) * behind
    image = (canvas.clip(0, 1) * 255 + 0.5).astype(np.uint8)
    return image, truth + np.array([x0, y0], np.float32), float(np.degrees(face.rotation[1]))


#: Landmark index ranges [start, stop) of the 68-point scheme.
REGIONS = {
    "jaw": (0, 17),
    "inner": (17, 68),
    "all": (0, 68),
    "brows": (17, 27),
    "nose": (27, 36),
    "eyes": (36, 48),
    "mouth": (48, 68),
}


def landmark_errors(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Mean point errors of (68, 2) ``predicted`` vs ``truth`` landmarks, px and / inter-ocular.

    The inter-ocular distance is between the true outer eye corners (points 36 and 45).

    Example:
        >>> truth = np.zeros((68, 2)); truth[45, 0] = 100.0
        >>> landmark_errors(truth + [3.0, 4.0], truth)["inner_nme"]
        0.05
    """
    iod = float(np.linalg.norm(truth[45] - truth[36]))
    dist = np.linalg.norm(predicted - truth, axis=1)
    out = {"iod_px": iod}
    for name, (start, stop) in REGIONS.items():
        part = dist[start:stop]
        out[f"{name}_px"] = float(part.mean())
        out[f"{name}_nme"] = float(part.mean() / iod)
    return out


def synthetic(n: int, first_seed: int = 1000) -> dict[str, object]:
    """Detection rate and landmark error on ``n`` synthetic ICT renders (ground-truth landmarks)."""
    from ganfit_core.model.morphable import load_morphable_model
    from ganfit_core.render.renderer import make_renderer

    model = load_morphable_model("face").cpu()
    renderer = make_renderer("torch", device="cpu")
    faces: list[dict[str, object]] = []
    for i in range(n):
        seed, target_yaw, noisy = first_seed + i, SYNTH_YAWS[i % len(SYNTH_YAWS)], i % 2 == 1
        image, truth, yaw = synthetic_photo(seed, target_yaw, noisy, model, renderer)
        detections = detect_faces(image)
        row: dict[str, object] = {
            "seed": seed,
            "yaw_deg": round(yaw, 2),
            "background": "noisy" if noisy else "plain",
            "faces": len(detections),
        }
        if detections:
            row.update(landmark_errors(detections[0].landmarks, truth))
        faces.append(row)
    groups: dict[str, object] = {}
    for label, keep in [(f"yaw {y:+.0f}", y) for y in SYNTH_YAWS] + [("all", None)]:
        rows = [r for r in faces if keep is None or abs(float(r["yaw_deg"]) - keep) < 0.5]  # type: ignore[arg-type]
        found = [r for r in rows if r["faces"]]
        group: dict[str, object] = {"renders": len(rows), "detected": len(found)}
        group["exactly_one"] = sum(r["faces"] == 1 for r in rows)
        for key in ["iod_px"] + [f"{name}_{unit}" for name in REGIONS for unit in ("px", "nme")]:
            group[key] = float(np.mean([r[key] for r in found])) if found else None  # type: ignore[misc]
        groups[label] = group
    return {"canvas_px": SYNTH_CANVAS, "render_px": SYNTH_RENDER, "groups": groups, "faces": faces}


def _print_synthetic(syn: dict[str, object]) -> None:
    print(
        f"\nSynthetic ICT renders ({syn['render_px']}² face render in a {syn['canvas_px']}² image), "
        "error vs true landmarks, NME = / inter-ocular (outer corners 36-45):"
    )
    print(
        f"{'group':>8}  {'found':>7}  {'IOD px':>6}  {'inner px':>8}  {'inner NME':>9}"
        f"  {'jaw px':>6}  {'jaw NME':>7}  {'all NME':>7}"
    )
    for label, g in syn["groups"].items():  # type: ignore[attr-defined]
        found = f"{g['detected']}/{g['renders']}"
        if g["inner_px"] is None:
            print(f"{label:>8}  {found:>7}")
            continue
        print(
            f"{label:>8}  {found:>7}  {g['iod_px']:6.1f}  {g['inner_px']:8.2f}  {g['inner_nme']:9.4f}"
            f"  {g['jaw_px']:6.2f}  {g['jaw_nme']:7.4f}  {g['all_nme']:7.4f}"
        )
    print(
        "  jaw = points 0-16: fixed model jawline vertices in the render vs the silhouette for the "
        "detector, so they differ by definition; inner (17-67) is the fair figure."
    )
    every = syn["groups"]["all"]  # type: ignore[index]
    if every["inner_px"] is not None:
        parts = ", ".join(f"{name} {every[f'{name}_nme']:.4f}" for name in ("brows", "nose", "eyes", "mouth"))
        print(f"  inner NME by region (all yaws): {parts}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=20, help="London portraits for the accuracy part")
    parser.add_argument("--sizes", type=int, nargs="+", default=[640, 1280, 1920], help="long sides (px)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--synthetic", type=int, default=12, help="synthetic ICT renders (0: skip)")
    parser.add_argument("--synthetic-only", action="store_true", help="skip the photo parts")
    parser.add_argument("--no-dlib", action="store_true", help="skip the dlib comparison")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result: dict[str, object] = {"device": "cpu", "threads": args.threads}
    if not args.synthetic_only:
        result.update(_photos(args))
    if args.synthetic > 0:
        result["synthetic"] = syn = synthetic(args.synthetic)
        _print_synthetic(syn)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


def _photos(args: argparse.Namespace) -> dict[str, object]:
    """Speed and London-portrait parts: print their tables, return their JSON."""
    dlib_models = None if args.no_dlib else _dlib()
    rows = speed(args.sizes, args.repeats, dlib_models)
    acc = accuracy(args.n, dlib_models)

    print(f"{'long side':>9}  {'faces':>5}  {'face-api ms':>11}  {'dlib faces':>10}  {'dlib ms':>8}")
    for row in rows:
        dlib_ms = f"{row['dlib_ms']:8.1f}" if "dlib_ms" in row else f"{'-':>8}"
        dlib_faces = row.get("dlib_faces", "-")
        size, faces, ms = row["long_side"], row["faces"], row["faceapi_ms"]
        print(f"{size:>9}  {faces:>5}  {ms:11.1f}  {dlib_faces:>10}  {dlib_ms}")
    print(f"\nLondon portraits: {acc['exactly_one_face']}/{acc['photos']} with exactly one face (face-api)")
    for key in ("faceapi_eye_vs_pupil", "dlib_eye_vs_pupil", "nme_vs_dlib", "nme_vs_dlib_median"):
        if acc.get(key) is not None:
            print(f"  {key:<22} {acc[key]:.4f}  (/ inter-ocular distance)")
    return {"speed": rows, "accuracy": acc}


if __name__ == "__main__":
    main()
