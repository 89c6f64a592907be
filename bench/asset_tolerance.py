"""How far a built asset moves when its float pipeline moves, against the content-check tolerance.

Rebuilds ``texture_pca`` with every photo decoded slightly differently (``--fraction`` of the
pixels moved by ±``--noise`` grey levels, seeded), as another JPEG library or CPU would, and
compares the result's fingerprint with the shipped reference: for each float tensor and statistic,
``|a - b| / (|b| + rms)`` against the asset's ``tolerance`` (the check accepts below 1).

Usage: ``python bench/asset_tolerance.py [--noise 1] [--fraction 0.1] [--source ../shared]
[--json PATH]``. Takes as long as a build of ``texture_pca`` (minutes).
"""

from __future__ import annotations

import argparse
import importlib
import json
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

from ganfit_core.assets import ASSETS, builder_source
from ganfit_core.face import image_io

verify = importlib.import_module("ganfit_core.assets.verify")


def perturbed_loader(noise: int, fraction: float):
    """``load_image`` whose output has ``fraction`` of its values moved by ±``noise`` (seeded per photo)."""
    original = image_io.load_image

    def load(source, **kwargs):
        image = original(source, **kwargs)
        seed = zlib.crc32(str(source).encode()) if isinstance(source, str | Path) else 0
        rng = np.random.default_rng(seed)
        moved = rng.random(image.shape) < fraction
        step = rng.choice(np.array([-noise, noise]), size=image.shape)
        return np.clip(image.astype(np.int16) + moved * step, 0, 255).astype(np.uint8)

    return load


def run(noise: int, fraction: float, source: Path | None) -> dict:
    spec = ASSETS["texture_pca"]
    reference = verify.reference_fingerprint(spec.name)
    if reference is None:
        raise SystemExit("texture_pca has no fingerprint (python -m ganfit_core assets pin texture_pca)")
    from ganfit_core.texture.pca import build_texture_pca

    image_io.load_image = perturbed_loader(noise, fraction)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / spec.filename
        start = time.perf_counter()
        build_texture_pca(builder_source(spec, source), out)
        seconds = time.perf_counter() - start
        actual = verify.fingerprint(out)
    rows = []
    for name, ref in sorted(reference["tensors"].items()):
        if "sha256" in ref:
            same = actual[name].get("sha256") == ref["sha256"]
            rows.append({"tensor": name, "stat": "bytes", "ratio": 0.0 if same else float("inf")})
            continue
        for stat in ("mean", "absmean", "l2"):
            ratio = abs(actual[name][stat] - ref[stat]) / (abs(ref[stat]) + ref["rms"]) / spec.tolerance
            rows.append({"tensor": name, "stat": stat, "ratio": ratio})
    problems = verify.compare_fingerprints(actual, reference["tensors"], spec.tolerance,
        exact_integers=spec.exact_integers)
    return {"noise": noise, "fraction": fraction, "tolerance": spec.tolerance, "build_s": round(seconds, 1),
            "rows": rows, "accepted": not problems, "problems": problems}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noise", type=int, default=1, help="grey levels a moved pixel value moves by")
    parser.add_argument("--fraction", type=float, default=0.1, help="fraction of pixel values moved")
    parser.add_argument("--source", type=Path, default=None, help="source root (default: ../shared)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    result = run(args.noise, args.fraction, args.source)
    print(f"texture_pca rebuilt with {args.fraction:.0%} of pixel values moved by ±{args.noise} "
          f"({result['build_s']} s); deviation / tolerance ({result['tolerance']:g}), accepted below 1:")
    print(f"{'tensor':<10} {'stat':<8} {'ratio':>10}")
    for row in result["rows"]:
        print(f"{row['tensor']:<10} {row['stat']:<8} {row['ratio']:>10.4f}")
    print("accepted" if result["accepted"] else f"REJECTED: {result['problems']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
