"""Benchmark: the FaceMesh → ICT dense correspondence on held-out ICT renders.

For each render (random identity, expression, PCA texture, light, focal length, yaw up to 45°;
drawn from a seed the asset's build did not use) the correspondence points are placed on the
true mesh and projected with the true camera; the figure is their distance to FaceMesh's own
output on that render, over the points that are visible (the surface under the projection is
the point itself, within 3 mm). Reported by yaw range, in px (256² renders, faces 110–170 px
wide) and in % of the projected outer-eye-corner distance, for the inner points and the face
oval (silhouette points, which slide with the pose). Also the asset's per-point spread (mm).

``--frontal-baseline N`` also builds, in memory, a correspondence from N renders with yaw up
to 10° only and scores it the same way (does pose variety in the build help?).

    python bench/correspondence.py [--renders 30] [--seed 7] [--frontal-baseline 0] [--json out.json]
"""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

import numpy as np
import torch

from ganfit_core.face.facemesh import dense_landmarks, load_facemesh_net
from ganfit_core.model import facemesh_correspondence as fc
from ganfit_core.model.morphable import load_morphable_model
from ganfit_core.render.renderer import make_renderer
from ganfit_core.texture.pca import load_pca_prior

YAW_BINS = ((0.0, 15.0), (15.0, 30.0), (30.0, 45.0))
OVAL = np.zeros(468, bool)
OVAL[list(fc.FACE_OVAL)] = True


def score(correspondences: dict[str, fc.FaceMeshCorrespondence], renders: int,
          seed: int) -> dict[str, object]:
    """Per correspondence and yaw bin: median reprojection error (px, % eye-corner distance)."""
    model = load_morphable_model(fc.REGION)
    renderer, prior, net = make_renderer("torch", device="cpu"), load_pca_prior(), load_facemesh_net()
    generator = torch.Generator().manual_seed(seed)
    faces = model.faces.numpy()
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in correspondences}
    for _ in range(renders):
        render = fc.render_face(model, renderer, prior, generator)
        detected = dense_landmarks(render.image, render.landmarks68, net=net).points[:, :2]
        size = render.image.shape[0]
        for name, corr in correspondences.items():
            points = corr.points(torch.from_numpy(render.vertices_cam), model.faces).numpy()
            projected = points[:, :2] / points[:, 2:] * render.focal + size / 2
            triangles, _, _, depth = fc.sample_surface_points(render, np.c_[projected, np.zeros(468)], faces)
            visible = (triangles >= 0) & (depth > points[:, 2] - 3.0)
            error = np.linalg.norm(projected - detected, axis=1)
            eyes = float(np.linalg.norm(projected[33] - projected[263]))
            oval = visible & OVAL
            rows[name].append({
                "yaw": abs(render.yaw_deg), "visible": float(visible.mean()),
                "inner_px": float(np.median(error[visible & ~OVAL])),
                "oval_px": float(np.median(error[oval])) if oval.any() else float("nan"),
                "inner_pct": float(np.median(error[visible & ~OVAL])) / eyes * 100,
            })
    out: dict[str, object] = {}
    for name, items in rows.items():
        table = {}
        for low, high in (*YAW_BINS, (0.0, 45.0)):
            sel = [r for r in items if low <= r["yaw"] < high or (high == 45.0 and r["yaw"] == 45.0)]
            if sel:
                table[f"{low:.0f}-{high:.0f}"] = {
                    "renders": len(sel),
                    **{k: float(np.nanmedian([r[k] for r in sel]))
                       for k in ("inner_px", "oval_px", "inner_pct", "visible")},
                }
        spread = corr_spread(correspondences[name])
        out[name] = {"by_yaw": table, "spread_mm": spread}
    return out


def corr_spread(corr: fc.FaceMeshCorrespondence) -> dict[str, float]:
    """Median / 90th percentile of the per-point build spread (mm), inner points vs face oval."""
    s = corr.spread_mm.astype(np.float64)
    return {"inner_median": float(np.median(s[~OVAL])), "inner_p90": float(np.percentile(s[~OVAL], 90)),
            "oval_median": float(np.median(s[OVAL])), "oval_p90": float(np.percentile(s[OVAL], 90))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--renders", type=int, default=30, help="held-out renders (default 30)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the held-out renders (not the build's)")
    parser.add_argument("--frontal-baseline", type=int, default=0,
                        help="also build a correspondence from N renders with yaw <= 10 deg and score it")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--json", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.seed == fc.BUILD_SEED:
        parser.error("--seed must differ from the build's seed")
    torch.set_num_threads(args.threads)
    correspondences = {"asset": fc.load_facemesh_correspondence()}
    if args.frontal_baseline:
        original = fc.render_face
        fc.render_face = functools.partial(original, max_yaw_deg=10.0)  # type: ignore[assignment]
        try:
            samples, mean, faces = fc.collect_samples(args.frontal_baseline, seed=args.seed + 1)
        finally:
            fc.render_face = original  # type: ignore[assignment]
        correspondences["frontal_only"] = fc.FaceMeshCorrespondence(**fc.aggregate(samples, mean, faces))
    results = score(correspondences, args.renders, args.seed)
    print(f"{'correspondence':<14} {'|yaw| deg':>9} {'renders':>7} {'inner px':>8} {'inner %eyes':>11} "
          f"{'oval px':>8} {'visible':>7}")
    for name, r in results.items():
        for bin_name, row in r["by_yaw"].items():  # type: ignore[index]
            print(f"{name:<14} {bin_name:>9} {row['renders']:>7} {row['inner_px']:>8.2f} "
                  f"{row['inner_pct']:>11.2f} {row['oval_px']:>8.2f} {row['visible']:>7.2f}")
        s = r["spread_mm"]  # type: ignore[index]
        print(f"{name:<14} spread mm: inner median {s['inner_median']:.2f} p90 {s['inner_p90']:.2f}; "
              f"oval median {s['oval_median']:.2f} p90 {s['oval_p90']:.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {"renders": args.renders, "seed": args.seed, "results": results}
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
