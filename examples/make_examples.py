"""Regenerate the example photos offered by the app (run from the repository root).

    python examples/make_examples.py

- ``astronaut.jpg``: scikit-image's ``astronaut.png`` (NASA, public domain), re-encoded as JPEG.
  Needs ``pip install scikit-image`` for this script only (it is not a dependency of ganfit).
- ``two_faces.jpg``: the astronaut beside her mirror image, for trying the "several faces" path
  (the face index control picks one; empty = the largest).

Only material the project may ship goes here: see ``examples/README.md``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from PIL import Image, ImageOps

HERE = Path(__file__).resolve().parent
JPEG_QUALITY = 92


def astronaut_source() -> Path:
    """Path of scikit-image's bundled ``astronaut.png``."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or spec.origin is None:
        raise SystemExit("scikit-image is needed to regenerate astronaut.jpg: pip install scikit-image")
    path = Path(spec.origin).parent / "data" / "astronaut.png"
    if not path.is_file():
        raise SystemExit(f"{path} not found in the installed scikit-image")
    return path


def make_astronaut(out: Path) -> Image.Image:
    image = Image.open(astronaut_source()).convert("RGB")
    image.save(out, quality=JPEG_QUALITY)
    return image


def make_two_faces(astronaut: Image.Image, out: Path) -> None:
    """The astronaut (left) and her mirror image at 80 % size (right), on one canvas."""
    width, height = astronaut.size
    small = ImageOps.mirror(astronaut).resize((int(width * 0.8), int(height * 0.8)), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (width + small.width, height), (236, 236, 236))
    canvas.paste(astronaut, (0, 0))
    canvas.paste(small, (width, height - small.height))
    canvas.save(out, quality=JPEG_QUALITY)


def main() -> None:
    astronaut = make_astronaut(HERE / "astronaut.jpg")
    make_two_faces(astronaut, HERE / "two_faces.jpg")
    print("wrote", ", ".join(sorted(p.name for p in HERE.glob("*.jpg"))))


if __name__ == "__main__":
    main()
