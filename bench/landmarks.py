"""Benchmark: 2D landmark accuracy against the hand-placed FRL templates of ../shared/london-faces.

Ground truth: each photo's 189-point WebMorph FRL template (``.tem``; point names in WebMorph's
``FRL.csv`` template definition: "left" there is the image-left side, the subject's right). Only
template points that are the same anatomical feature as a predicted point are scored
(:data:`POINTS`): eye corners, mouth corners, lip midpoints, subnasale, chin, outer brow corners.

Methods (each a function ``photo -> {point name: (x, y)}``, see :data:`METHODS`; add a fitted
model's projected landmarks the same way):

* ``faceapi68``: face-api's 68 iBUG points (our default detector);
* ``facemesh``: MediaPipe FaceMesh's 468 points (our port), cropped from face-api's 68;
* ``facemesh_one_pass`` (``--variants``): FaceMesh on the first crop only (no MediaPipe-style
  second crop around its own points);
* ``dlib68``: dlib's HOG detector + 68-point predictor, when the test-only ``dlib-bin`` and
  ``face-recognition-models`` packages are installed (a peer).

NME = mean point error divided by the inter-ocular distance (template outer eye corners) or by
the box size (sqrt of the width x height of the template's face box: brows, eyes, nose, mouth,
jaw), in %. Reported over each method's own points and over the points every method has.

    python bench/landmarks.py [--folders neutral_front canada] [--limit N] [--variants] [--no-dlib]
                              [--threads 2] [--json out.json]

``--limit N`` scores the first N photos of each folder (a subset, for a busy machine).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ganfit_core.face import detect_faces, load_image
from ganfit_core.face.facemesh import dense_landmarks

SHARED = Path(os.environ.get("GANFIT_SOURCE_DIR", Path(__file__).resolve().parents[2] / "shared"))

#: Scored points: name → (FRL template index, iBUG-68 index or None, MediaPipe FaceMesh index or None).
#: Image-left / image-right as in the FRL names ("left" = image-left = the subject's right).
POINTS: dict[str, tuple[int, int | None, int | None]] = {
    "eye_outer_left": (18, 36, 33),
    "eye_inner_left": (22, 39, 133),
    "eye_inner_right": (23, 42, 362),
    "eye_outer_right": (27, 45, 263),
    "mouth_corner_left": (87, 48, 61),
    "mouth_corner_right": (93, 54, 291),
    "upper_lip_top": (90, 51, 0),
    "upper_lip_bottom": (96, 62, 13),
    "lower_lip_top": (101, 66, 14),
    "lower_lip_bottom": (106, 57, 17),
    "subnasale": (55, 33, 2),
    "chin": (129, 8, 152),
    "brow_outer_left": (71, 17, None),
    "brow_outer_right": (82, 26, None),
}
#: FRL points spanning the face box for the box-size normaliser: eyes, brows, nose, mouth, jaw.
BOX_POINTS = [*range(18, 34), *range(50, 109), *range(125, 134)]
FRL_OUTER_EYES = (18, 27)

Predictor = Callable[[np.ndarray], "dict[str, np.ndarray] | None"]


def read_template(path: Path) -> np.ndarray:
    """FRL template (189, 2) px from a ``.tem`` file (first line: point count, then ``x y`` rows)."""
    count = int(path.read_text().split(None, 1)[0])
    points = np.loadtxt(path, skiprows=1, max_rows=count)
    if points.shape != (189, 2):
        raise ValueError(f"{path}: expected 189 FRL points, got {points.shape}")
    return points


def _named(points: np.ndarray, column: int) -> dict[str, np.ndarray]:
    return {name: points[idx[column]] for name, idx in POINTS.items() if idx[column] is not None}


def faceapi68(image: np.ndarray) -> dict[str, np.ndarray] | None:
    """face-api's 68 points of the largest face, by name (None: no face)."""
    faces = detect_faces(image)
    return _named(faces[0].landmarks, 1) if faces else None


def facemesh(image: np.ndarray) -> dict[str, np.ndarray] | None:
    """FaceMesh's points (cropped from face-api's 68) of the largest face, by name."""
    faces = detect_faces(image)
    return _named(dense_landmarks(image, faces[0].landmarks).points[:, :2], 2) if faces else None


def facemesh_one_pass(image: np.ndarray) -> dict[str, np.ndarray] | None:
    """FaceMesh without the second, re-centred crop (``refine=False``), for choosing the default."""
    faces = detect_faces(image)
    if not faces:
        return None
    return _named(dense_landmarks(image, faces[0].landmarks, refine=False).points[:, :2], 2)


def _dlib_predictor() -> Predictor | None:
    spec = importlib.util.find_spec("face_recognition_models")
    if importlib.util.find_spec("dlib") is None or spec is None or spec.origin is None:
        return None
    import dlib

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(
        str(Path(spec.origin).parent / "models" / "shape_predictor_68_face_landmarks.dat"))

    def dlib68(image: np.ndarray) -> dict[str, np.ndarray] | None:
        rects = sorted(detector(image, 0), key=lambda r: -r.area())
        if not rects:
            return None
        points = np.array([[p.x + 0.5, p.y + 0.5] for p in predictor(image, rects[0]).parts()])
        return _named(points, 1)

    return dlib68


METHODS: dict[str, Predictor] = {"faceapi68": faceapi68, "facemesh": facemesh}


def evaluate(photos: list[Path], methods: dict[str, Predictor]) -> dict[str, object]:
    """Per method: NME (% IOD, % box) over its points and over the common points; per-point errors."""
    common = [n for n in POINTS if all(_has(m, n) for m in methods)]
    errors: dict[str, list[dict[str, float]]] = {m: [] for m in methods}
    misses = dict.fromkeys(methods, 0)
    seconds = dict.fromkeys(methods, 0.0)
    for path in photos:
        truth = read_template(path.with_suffix(".tem"))
        iod = float(np.linalg.norm(truth[FRL_OUTER_EYES[0]] - truth[FRL_OUTER_EYES[1]]))
        box = truth[BOX_POINTS]
        box_size = float(np.sqrt(np.prod(box.max(axis=0) - box.min(axis=0))))
        image = load_image(path)
        for name, predict in methods.items():
            start = time.perf_counter()
            predicted = predict(image)
            seconds[name] += time.perf_counter() - start
            if predicted is None:
                misses[name] += 1
                continue
            dist = {p: float(np.linalg.norm(predicted[p] - truth[POINTS[p][0]])) for p in predicted}
            errors[name].append({"iod": iod, "box": box_size, **dist})
    results: dict[str, object] = {"photos": len(photos), "common_points": common, "methods": {}}
    for name in methods:
        rows = errors[name]
        own = [p for p in POINTS if _has(name, p)]

        def nme(points: list[str], key: str, rows: list[dict[str, float]] = rows) -> float | None:
            if not rows:
                return None
            return float(np.mean([np.mean([r[p] for p in points]) / r[key] * 100 for r in rows]))

        results["methods"][name] = {  # type: ignore[index]
            "faces": len(rows), "missed": misses[name], "points": len(own),
            "nme_iod_own": nme(own, "iod"), "nme_box_own": nme(own, "box"),
            "nme_iod_common": nme(common, "iod"), "nme_box_common": nme(common, "box"),
            "seconds_per_photo": seconds[name] / max(len(photos), 1),
            "per_point_nme_iod": {p: float(np.mean([r[p] / r["iod"] * 100 for r in rows])) for p in own}
            if rows else {},
        }
    return results


def _has(method: str, point: str) -> bool:
    column = 2 if method.startswith("facemesh") else 1
    return POINTS[point][column] is not None


def _table(results: dict[str, object]) -> str:
    lines = [f"{results['photos']} photos; common points: {len(results['common_points'])}",
             f"{'method':<18} {'faces':>5} {'pts':>4} {'NME%IOD own':>12} {'NME%box own':>12} "
             f"{'NME%IOD common':>15} {'NME%box common':>15} {'s/photo':>8}"]
    for name, r in results["methods"].items():  # type: ignore[union-attr]
        def f(v: float | None) -> str:
            return "-" if v is None else f"{v:.2f}"
        lines.append(f"{name:<18} {r['faces']:>5} {r['points']:>4} {f(r['nme_iod_own']):>12} "
                     f"{f(r['nme_box_own']):>12} {f(r['nme_iod_common']):>15} {f(r['nme_box_common']):>15} "
                     f"{r['seconds_per_photo']:>8.2f}")
    names = list(results["methods"])  # type: ignore[arg-type]
    lines.append("")
    lines.append(f"{'point (NME % IOD)':<20}" + "".join(f"{n:>18}" for n in names))
    for point in POINTS:
        cells = [results["methods"][n]["per_point_nme_iod"].get(point) for n in names]  # type: ignore[index]
        lines.append(f"{point:<20}" + "".join(f"{'-' if c is None else f'{c:.2f}':>18}" for c in cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folders", nargs="+", default=["neutral_front", "canada"],
                        help="london-faces folders with .tem templates (default: neutral_front canada)")
    parser.add_argument("--limit", type=int, default=None, help="first N photos of each folder (a subset)")
    parser.add_argument("--no-dlib", action="store_true", help="leave out the dlib peer")
    parser.add_argument("--variants", action="store_true",
                        help="also score FaceMesh with one crop pass (facemesh_one_pass)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--json", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    photos = []
    for folder in args.folders:
        folder_path = SHARED / "london-faces" / folder
        found = sorted(p for p in folder_path.glob("*.jpg") if p.with_suffix(".tem").is_file())
        photos += found[: args.limit] if args.limit else found
    if not photos:
        parser.error(f"no photos with .tem templates under {SHARED / 'london-faces'} {args.folders}")
    methods = dict(METHODS)
    if args.variants:
        methods["facemesh_one_pass"] = facemesh_one_pass
    dlib68 = None if args.no_dlib else _dlib_predictor()
    if dlib68 is not None:
        methods["dlib68"] = dlib68
    results = evaluate(photos, methods)
    results["folders"], results["limit"] = args.folders, args.limit
    print(_table(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
