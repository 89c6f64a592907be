"""Benchmark the ICT morphable model: build from the archive, load, forward (and backward).

Usage: ``python bench/morphable.py [--skip-build] [--threads N] [--json PATH]``. Prints a table;
``--json`` also writes the figures. Times in milliseconds (build in seconds) on this machine's CPU.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch
from _timing import median_ms

from ganfit_core.assets import ASSETS, builder_source, resolve, sha256_file
from ganfit_core.model.ict_build import build_ict_face_model
from ganfit_core.model.morphable import REGIONS, load_morphable_model


def run(*, skip_build: bool, repeats: int) -> dict[str, object]:
    results: dict[str, object] = {}
    spec = ASSETS["ict_face_model"]
    if not skip_build:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / spec.filename
            start = time.perf_counter()
            build_ict_face_model(builder_source(spec), out, progress=False)
            results["build_s"] = round(time.perf_counter() - start, 2)
            results["build_sha256_matches"] = sha256_file(out) == spec.sha256
    start = time.perf_counter()
    path = resolve("ict_face_model")
    results["resolve_ms"] = round((time.perf_counter() - start) * 1000, 1)
    for region in REGIONS:
        load = lambda r=region: load_morphable_model(r, path=path)  # noqa: E731
        results[f"load_{region}_ms"] = round(median_ms(load, 5), 1)
    model = load_morphable_model("face", path=path)
    for batch in (1, 8):
        identity = torch.randn(batch, model.num_identity)
        expression = torch.rand(batch, model.num_expression)
        with torch.no_grad():
            forward = lambda i=identity, e=expression: model(i, e)  # noqa: E731
            results[f"forward_b{batch}_ms"] = round(median_ms(forward, repeats), 3)
        leaf = identity.clone().requires_grad_(True)
        results[f"forward_backward_b{batch}_ms"] = round(
            median_ms(lambda p=leaf, e=expression: model(p, e).square().sum().backward(), repeats), 3
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-build", action="store_true", help="skip timing the build from the archive")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = run(skip_build=args.skip_build, repeats=args.repeats)
    meta = {"torch": torch.__version__, "threads": args.threads, "region_forward": "face (9409 vertices)",
            "cpu": platform.processor() or platform.machine()}
    width = max(len(key) for key in results)
    print(f"{'measure'.ljust(width)}  value")
    for key, value in results.items():
        print(f"{key.ljust(width)}  {value}")
    print(f"({meta})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"results": results, "meta": meta}, indent=2))


if __name__ == "__main__":
    main()
