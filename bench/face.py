"""Benchmark: face detection + 68 landmarks — speed by photo size, accuracy on London portraits.

Speed: ms per photo (detect + landmarks, all faces) for the face-api port and, when the
test-only packages ``dlib-bin`` + ``face-recognition-models`` are installed, dlib's HOG
detector (no upsampling) + 68-point predictor, at several long-side sizes.

Accuracy on ``london-faces/neutral_front`` (frontal 1350² studio photos):
* ``nme_vs_dlib``: mean point distance between face-api's and dlib's 68 landmarks, divided by
  the inter-ocular distance (dlib eye centres) — an agreement figure, not ground truth;
* ``eye_vs_pupil``: distance of each method's eye centre (mean of the 6 eye points) from the
  photo's hand-placed FRL pupil points (template points 0 and 1) / inter-ocular distance.

    python bench/face.py [--n 20] [--sizes 640 1280 1920] [--threads 2] [--json out.json]
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=20, help="London portraits for the accuracy part")
    parser.add_argument("--sizes", type=int, nargs="+", default=[640, 1280, 1920], help="long sides (px)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--no-dlib", action="store_true", help="skip the dlib comparison")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
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
    result = {"device": "cpu", "threads": args.threads, "speed": rows, "accuracy": acc}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
