"""Benchmark: peak resident memory (and wall time) for the worst inputs and the worst accepted settings.

Each case runs in a fresh interpreter (``tests/probe_images.peak_rss_mib``), so one case's memory
never hides another's; ``baseline`` is the RSS after the case's imports, ``peak`` the process's
maximum. Inputs are generated into a temporary folder (nothing is downloaded or committed):

* ``png16_16384``: 16384² 16-bit grey PNG (0.6 MB file), ``rgba_16384``: 16384² RGBA PNG (1.1 MB),
  ``rgb_16000``: 16000² RGB PNG (0.9 MB), each through ``load_image``;
* ``noface_4096``: a 4096×3072 noisy photo without a face through ``prepare_target`` (the detector's
  whole pyramid, upright and turned);
* ``small_face_4000``: a London portrait pasted with a ~150 px face into a 4000×3000 photo, through
  ``prepare_target``;
* ``fit_default`` and ``fit_worst``: a whole fit of the portrait at the default settings and at the
  largest accepted memory settings (region ``full``, ``render_size`` 512, ``detail_resolution`` 1024,
  ``num_identity`` 100, PCA prior), with ``--steps`` iterations per stage (default 3: memory does not
  grow with the step count, time does).

    python bench/robustness.py [--cases NAME ...] [--steps 3] [--json bench/results/robustness.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from probe_images import peak_rss_mib, write_quadrant_png  # noqa: E402

SHARED = Path(os.environ.get("GANFIT_SOURCE_DIR", REPO.parent / "shared"))
PORTRAIT = SHARED / "london-faces" / "neutral_front" / "001_03.jpg"
WORST = {
    "region": "full",
    "render_size": 512,
    "detail_resolution": 1024,
    "num_identity": 100,
    "texture_prior": "pca",
    "device": "cpu",
}


def _load_case(path: Path) -> str:
    return (
        "from ganfit_core.face.image_io import load_image\n# -- measure --\n"
        f"result = list(load_image({str(path)!r}).shape)"
    )


def _target_case(path: Path) -> str:
    return (
        "from ganfit_core.fitting.target import prepare_target\n"
        "from ganfit_core.face.detect import _backend\n_backend('faceapi')\n# -- measure --\n"
        "try:\n"
        f"    t = prepare_target({str(path)!r})\n"
        "    result = {'rotation': t.rotation, 'score': round(t.detection_score, 3)}\n"
        "except ValueError as exc:\n"
        "    result = {'error': type(exc).__name__}\n"
    )


def _fit_case(settings: dict[str, object]) -> str:
    return (
        "from ganfit_core.fitting.config import FitConfig\n"
        "from ganfit_core.fitting.engine import fit, run_to_end\n"
        "from ganfit_core.fitting.target import prepare_target\n# -- measure --\n"
        f"config = FitConfig(**{settings!r})\n"
        f"target = prepare_target({str(PORTRAIT)!r}, resolution=config.render_size)\n"
        "r = run_to_end(fit(target, config))\n"
        "result = {'quality': r.quality.status, 'residual': round(r.quality.landmark_residual, 3)}\n"
    )


def _make_inputs(folder: Path) -> dict[str, str]:
    """Case name -> code of the snippet to measure (inputs written into ``folder``)."""
    import numpy as np
    from PIL import Image

    cases = {
        "png16_16384": _load_case(
            write_quadrant_png(folder / "l16.png", 16384, 16384, mode="L", bit_depth=16)
        ),
        "rgba_16384": _load_case(write_quadrant_png(folder / "rgba.png", 16384, 16384, mode="RGBA")),
        "rgb_16000": _load_case(write_quadrant_png(folder / "rgb.png", 16000, 16000, mode="RGB")),
    }
    rng = np.random.default_rng(0)
    noface = rng.integers(60, 120, (3072, 4096, 1), dtype=np.uint8).repeat(3, axis=2)
    Image.fromarray(noface).save(folder / "noface.jpg", quality=90)
    cases["noface_4096"] = _target_case(folder / "noface.jpg")
    if PORTRAIT.is_file():
        portrait = np.asarray(Image.open(PORTRAIT).convert("RGB"))
        side = round(portrait.shape[0] * 150 / 546)  # the portrait's face box is ~546 px of 1350
        small = np.asarray(Image.fromarray(portrait).resize((side, side), Image.Resampling.BOX))
        canvas = rng.integers(70, 110, (3000, 4000, 1), dtype=np.uint8).repeat(3, axis=2)
        canvas[900 : 900 + side, 2400 : 2400 + side] = small
        Image.fromarray(canvas).save(folder / "small_face.jpg", quality=92)
        cases["small_face_4000"] = _target_case(folder / "small_face.jpg")
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", nargs="*", default=None, help="run only these cases")
    parser.add_argument("--steps", type=int, default=3, help="iterations per stage of the fit cases")
    parser.add_argument("--json", type=Path, default=None, help="write the rows as JSON here")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="ganfit-robustness-") as tmp:
        cases = _make_inputs(Path(tmp))
        if PORTRAIT.is_file():
            steps = {f"{s}_steps": args.steps for s in ("rigid", "shape", "full", "detail")}
            cases["fit_default"] = _fit_case({**steps, "device": "cpu"})
            cases["fit_worst"] = _fit_case({**steps, **WORST})
        else:
            print(f"portrait not found at {PORTRAIT}: the face and fit cases are skipped", file=sys.stderr)
        for name, code in cases.items():
            if args.cases and name not in args.cases:
                continue
            start = time.perf_counter()
            probe = peak_rss_mib(code, timeout_s=900)
            rows.append(
                {
                    "case": name,
                    "baseline_mib": round(probe["baseline_mib"]),
                    "peak_mib": round(probe["peak_mib"]),
                    "wall_s": round(time.perf_counter() - start, 1),
                    "result": probe["result"],
                }
            )
            row = rows[-1]
            print(
                f"{name:16s} baseline {row['baseline_mib']:6d} MiB  peak {row['peak_mib']:6d} MiB  "
                f"{row['wall_s']:6.1f} s  {json.dumps(row['result'])}",
                flush=True,
            )
    print("\n| case | baseline MiB | peak MiB | wall s | result |\n|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['case']} | {row['baseline_mib']} | {row['peak_mib']} | {row['wall_s']} | "
            f"{json.dumps(row['result'])} |"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"steps": args.steps, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
