"""``python -m ganfit_core detect PHOTO``: faces, boxes, 68 and 468 landmarks as JSON on stdout.

Output: ``{"image": path, "width": W, "height": H, "backend": name, "faces": [{"box": [x0, y0,
x1, y1], "score": s, "landmarks": [[x, y] × 68], "dense_landmarks": [[x, y, z] × 468],
"dense_presence": p}, …] (largest first), "selected": i | null, "error": message | null}``,
coordinates in pixels of the loaded photo (EXIF-rotated, downsized to ``--max-side``). The dense
points are MediaPipe FaceMesh's (z: relative depth in the same pixel scale, smaller = nearer);
``--no-dense`` leaves them out (and skips FaceMesh).

Exit codes: 0 a face was selected; 2 bad input (unreadable or non-image file, bad option);
3 no usable face (none found, too small, bad ``--face-index``; JSON still printed);
4 the backend is unavailable (missing package, weights or asset).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_NO_FACE = 3
EXIT_BACKEND = 4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments: PHOTO, ``--backend``, ``--face-index``, ``--min-size``, ``--max-side``, ``--indent``,
    ``--no-dense``."""
    from ganfit_core.face.detect import BACKENDS

    parser.add_argument("photo", type=Path, help="photo file (JPEG, PNG, WebP, …)")
    parser.add_argument("--backend", choices=BACKENDS, default="faceapi", help="detector (default: faceapi)")
    parser.add_argument("--face-index", type=int, default=None, help="face to select (0 = largest; default)")
    parser.add_argument("--min-size", type=float, default=80.0, help="smallest usable face, px (default: 80)")
    parser.add_argument("--max-side", type=int, default=2048, help="downsize photos larger than this (px)")
    parser.add_argument("--indent", type=int, default=None, help="indent the JSON output")
    parser.add_argument("--no-dense", dest="dense", action="store_false",
                        help="leave out FaceMesh's 468 dense landmarks (smaller JSON, faster)")


def run(args: argparse.Namespace) -> int:
    """Detect, select, print JSON; return the exit code (errors go to stderr, no traceback)."""
    from ganfit_core.assets import AssetError
    from ganfit_core.face import FaceError, ImageLoadError, detect_faces, load_image, select_face

    def fail(code: int, message: str) -> int:
        print(f"error: {message}", file=sys.stderr)
        return code

    if args.max_side < 1:
        return fail(EXIT_BAD_INPUT, f"--max-side must be >= 1, got {args.max_side}")
    try:
        image = load_image(args.photo, max_side=args.max_side)
    except ImageLoadError as exc:
        return fail(EXIT_BAD_INPUT, str(exc))
    try:
        faces = detect_faces(image, backend=args.backend, dense=args.dense)
    except (FaceError, AssetError) as exc:
        return fail(EXIT_BACKEND, str(exc))
    report: dict[str, object] = {
        "image": str(args.photo),
        "width": int(image.shape[1]),
        "height": int(image.shape[0]),
        "backend": args.backend,
        "faces": [face.to_dict() for face in faces],
        "selected": None,
        "error": None,
    }
    code = EXIT_OK
    try:
        chosen = select_face(faces, args.face_index, min_size_px=args.min_size)
        report["selected"] = next(i for i, face in enumerate(faces) if face is chosen)
    except FaceError as exc:
        report["error"] = str(exc)
        code = fail(EXIT_NO_FACE, str(exc))
    print(json.dumps(report, indent=args.indent))
    return code
