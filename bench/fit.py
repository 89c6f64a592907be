"""Benchmark the GANFIT fit at a given config: speed per stage, accuracy on synthetic faces, photos.

Usage::

    python bench/fit.py [--threads 2] [--synthetic 3] [--photos default|none|PATH[:INDEX],...]
                        [--set field=value ...] [--json PATH]

Synthetic faces (``ganfit_core.synthetic``, known shape): vertex error on ICT's front-of-face
vertices after similarity alignment (mm), against the mean face's error; PSNR/SSIM inside the
landmark hull. Photos (face-api group samples with a face index, london-faces neutral fronts):
seconds per stage, PSNR/SSIM of the final rendering inside the landmark hull, identity cosine
similarity photo vs rendering, and the largest gap between two progress events (including the
start). Identity similarity uses face-api's recogniser, the same network as the identity loss:
no independent recogniser (dlib, ArcFace) is installed offline here, so it is optimistic.

Wall times depend on the machine's load; ``cpu_s`` (process CPU time) is given beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from ganfit_core.fitting.config import FitConfig
from ganfit_core.fitting.engine import build_context, fit, run_to_end
from ganfit_core.metrics import procrustes_error_mm, psnr, ssim
from ganfit_core.synthetic import make_synthetic_face

SHARED = Path(os.environ.get("GANFIT_SOURCE_DIR", Path(__file__).resolve().parents[2] / "shared"))
NARROW_FACE = 6706
DEFAULT_PHOTOS = ("face-api/samples/sample1.jpg:0", "face-api/samples/sample3.jpg:1",
                  "face-api/samples/sample5.jpg:2",
                  "london-faces/neutral_front/*:3")


def _photo_list(spec: str) -> list[tuple[Path, int | None]]:
    if spec == "none":
        return []
    items = DEFAULT_PHOTOS if spec == "default" else tuple(spec.split(","))
    out: list[tuple[Path, int | None]] = []
    for item in items:
        path, _, index = item.partition(":")
        if path.endswith("/*"):  # first N photos of a folder
            folder = SHARED / path[:-2]
            out += [(p, None) for p in sorted(folder.glob("*.jpg"))[: int(index or 3)]]
            continue
        full = Path(path) if Path(path).is_absolute() else SHARED / path
        out.append((full, int(index) if index else None))
    return out


def _run_fit(target, config: FitConfig, context) -> tuple[object, dict[str, float]]:  # noqa: ANN001
    wall0, cpu0 = time.perf_counter(), time.process_time()
    clock = {"last": wall0, "gap": 0.0, "first": None}

    def tick(_event) -> None:  # noqa: ANN001
        now = time.perf_counter()
        clock["gap"] = max(clock["gap"], now - clock["last"])
        clock["first"] = now - wall0 if clock["first"] is None else clock["first"]
        clock["last"] = now

    result = run_to_end(fit(target, config, context=context), tick)
    tick(None)  # the last event (the result) counts as an event gap too
    gap, first = clock["gap"], clock["first"]
    timing = {"wall_s": time.perf_counter() - wall0, "cpu_s": time.process_time() - cpu0,
              "max_event_gap_s": gap, "first_event_s": first or 0.0}
    timing.update({f"{k}_s": v for k, v in result.stage_seconds.items()})
    return result, timing


def _identity_similarity(context, image: np.ndarray, render: np.ndarray,  # noqa: ANN001
                         landmarks: np.ndarray) -> float | None:
    net = context.identity_net
    if net is None:
        return None
    batch = torch.from_numpy(np.stack([image, render])).permute(0, 3, 1, 2).float().div(255)
    lms = torch.from_numpy(np.stack([landmarks, landmarks])).float()
    with torch.no_grad():
        emb = net.embed(batch.to(context.device), lms.to(context.device))
    return float(torch.nn.functional.cosine_similarity(emb[0:1], emb[1:2]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--synthetic", type=int, default=3, help="number of synthetic faces")
    parser.add_argument("--synthetic-size", type=int, default=None, help="default: the config's render_size")
    parser.add_argument("--photos", default="default", help="default | none | comma list of PATH[:INDEX]")
    parser.add_argument("--set", nargs="*", default=[], help="FitConfig overrides field=value")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = type(getattr(FitConfig(), key))(value)
    config = FitConfig(**overrides)
    start = time.perf_counter()
    context = build_context(config)
    load_s = time.perf_counter() - start
    rows: list[dict] = []
    size = args.synthetic_size or config.render_size
    for seed in range(args.synthetic):
        face = make_synthetic_face(seed, size=size, model=context.model, renderer=context.renderer,
                                   identity_scale=1.5)
        result, timing = _run_fit(face.target, config.replace(render_size=size), context)
        mask = face.target.face_mask
        rows.append({"name": f"synthetic seed {seed}", **timing,
                     "vertex_error_mm": procrustes_error_mm(result.vertices[:NARROW_FACE],
                                                            face.vertices[:NARROW_FACE]),
                     "mean_face_error_mm": procrustes_error_mm(context.model.mean.cpu().numpy()[:NARROW_FACE],
                                                               face.vertices[:NARROW_FACE]),
                     "psnr_db": psnr(result.render, face.target.image, mask),
                     "ssim": ssim(result.render, face.target.image, mask)})
        print(_row_text(rows[-1]), flush=True)
    from ganfit_core.fitting.target import prepare_target

    for path, index in _photo_list(args.photos):
        if not path.is_file():
            print(f"skip {path}: missing")
            continue
        prep0 = time.perf_counter()
        try:
            target = prepare_target(path, face_index=index, resolution=config.render_size)
        except ValueError as exc:  # no face, bad index, unreadable photo
            print(f"skip {path}: {exc}")
            continue
        prep_s = time.perf_counter() - prep0
        result, timing = _run_fit(target, config, context)
        mask = target.face_mask
        name = f"{path.parent.name}/{path.name}" + (f" #{index}" if index is not None else "")
        similarity = _identity_similarity(context, target.image, result.render, target.landmarks)
        rows.append({"name": name, "prepare_s": prep_s, **timing,
                     "psnr_db": psnr(result.render, target.image, mask),
                     "ssim": ssim(result.render, target.image, mask), "identity_cos": similarity})
        print(_row_text(rows[-1]), flush=True)
    report = {"config": config.to_dict(), "threads": args.threads, "load_s": load_s,
              "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                          "torch": torch.__version__, "loadavg": os.getloadavg()},
              "rows": rows}
    print()
    print(_table(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
        print(f"wrote {args.json}")


COLUMNS = ("name", "wall_s", "cpu_s", "rigid_s", "shape_s", "full_s", "detail_s", "max_event_gap_s",
           "vertex_error_mm", "mean_face_error_mm", "psnr_db", "ssim", "identity_cos")


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def _row_text(row: dict) -> str:
    return "  ".join(f"{k}={_fmt(row.get(k))}" for k in COLUMNS if k in row)


def _table(rows: list[dict]) -> str:
    cells = [list(COLUMNS)] + [[_fmt(r.get(c)) for c in COLUMNS] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells)


if __name__ == "__main__":
    main()
