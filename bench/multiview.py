"""Benchmark one face from two photos (neutral + smiling) against each photo's own fit.

Usage::

    python bench/multiview.py [--source ../shared/london-faces] [--people 4] [--full-steps N]
        [--detail-steps N] [--threads 2] [--json PATH]

For each of the first ``--people`` London people with both a neutral and a smiling photo (82 in
all; the default subset is small because the machine is shared), three fits at the default
FitConfig (iterations overridable): the neutral photo alone, the smiling photo alone, and both
photos together (one identity and albedo, pose/expression/light per photo). Per fit:

- **shape**: the fitted identity's expressionless face (mean + identity modes, the face region),
  RMS distance in mm to the other fits' (no alignment: all live in the model's own frame);
  ``single_gap_mm`` is the distance between the two single-photo fits (how much the shape depends on
  the photo), ``joint_to_single_mm`` the joint fit's distance to each single fit.
- **free-view identity**: the fitted face rendered frontally, neutral expression, under ambient
  light, without photo pixels, embedded by face-api's recogniser (the network the identity loss
  uses, so it flatters fits: compare rows, not absolute values), cosine similarity to the embedding
  of each photo. For a single fit, the *other* photo is unseen; the joint fit has seen both.

Prints a table and (``--json``) writes the per-person rows and the means.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
RENDER_SIZE = 256
FRONTAL_DISTANCE_MM = 900.0


def people(source: Path, limit: int) -> list[tuple[str, Path, Path]]:
    """``(face_id, neutral photo, smiling photo)`` of the first ``limit`` people with both."""
    ids = [row["face_id"] for row in csv.DictReader((source / "london_info.csv").open())]
    found = []
    for face_id in ids:
        neutral = sorted((source / "neutral_front").glob(f"{face_id}_*.jpg"))
        smiling = sorted((source / "smiling_front").glob(f"{face_id}_*.jpg"))
        if neutral and smiling:
            found.append((face_id, neutral[0], smiling[0]))
    return found[:limit]


@torch.no_grad()
def frontal_embedding(result, model, renderer, net) -> torch.Tensor:  # noqa: ANN001
    """Recogniser embedding (128,) of ``result``'s identity, neutral, frontal, ambient light 1."""
    from ganfit_core.render.camera import FRONTAL_ROTATION, PinholeCamera, project
    from ganfit_core.render.lighting import ambient_sh

    identity = torch.as_tensor(result.face.identity, dtype=torch.float32)[None]
    vertices = model(identity, torch.zeros(1, model.num_expression))
    translation = torch.tensor([0.0, -15.0, FRONTAL_DISTANCE_MM])
    cam = vertices @ FRONTAL_ROTATION.T + translation
    focal = 0.5 * RENDER_SIZE * FRONTAL_DISTANCE_MM / 150.0  # a 300 mm tall field of view
    camera = PinholeCamera(torch.tensor([focal]), torch.tensor([[RENDER_SIZE / 2, RENDER_SIZE / 2]]),
                           RENDER_SIZE, RENDER_SIZE)
    texture = torch.as_tensor(result.texture).float().div(255.0)[None]
    out = renderer.render(cam, model.faces, model.uvs, model.uv_faces, texture, camera, ambient_sh(1, 1.0))
    image = out.image + (1.0 - out.mask) * 0.5
    landmarks = project(cam[:, model.default_landmark_vertices()], camera)
    return net.embed(image.permute(0, 3, 1, 2), landmarks)[0]


@torch.no_grad()
def photo_embedding(target, net) -> torch.Tensor:  # noqa: ANN001
    image = torch.as_tensor(target.image).float().div(255.0).permute(2, 0, 1)[None]
    return net.embed(image, torch.as_tensor(target.landmarks, dtype=torch.float32)[None])[0]


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a, b, dim=0))


def rms_mm(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(((a - b) ** 2).sum(-1).mean()))


def run(source: Path, count: int, overrides: dict[str, int]) -> dict:
    from ganfit_core.face.identity import load_identity_network
    from ganfit_core.fitting.config import FitConfig
    from ganfit_core.fitting.context import build_context
    from ganfit_core.fitting.engine import fit, run_to_end
    from ganfit_core.fitting.target import prepare_target

    config = FitConfig().replace(**overrides) if overrides else FitConfig()
    ctx = build_context(config)
    net = load_identity_network()
    model = ctx.model
    rows = []
    for face_id, neutral_path, smiling_path in people(source, count):
        targets = {"neutral": prepare_target(neutral_path, resolution=config.render_size),
                   "smiling": prepare_target(smiling_path, resolution=config.render_size)}
        photos = {k: photo_embedding(t, net) for k, t in targets.items()}
        fits, seconds = {}, {}
        for name, views in (("neutral", [targets["neutral"]]), ("smiling", [targets["smiling"]]),
                            ("joint", [targets["neutral"], targets["smiling"]])):
            start = time.perf_counter()
            fits[name] = run_to_end(fit(views if len(views) > 1 else views[0], config, context=ctx))
            seconds[name] = time.perf_counter() - start
        shapes = {k: model(torch.as_tensor(r.face.identity, dtype=torch.float32)[None])[0].detach().numpy()
                  for k, r in fits.items()}
        row = {"face_id": face_id,
               "single_gap_mm": rms_mm(shapes["neutral"], shapes["smiling"]),
               "joint_to_neutral_mm": rms_mm(shapes["joint"], shapes["neutral"]),
               "joint_to_smiling_mm": rms_mm(shapes["joint"], shapes["smiling"])}
        for name, result in fits.items():
            embedding = frontal_embedding(result, model, ctx.renderer, net)
            row[f"{name}_vs_neutral_photo"] = cosine(embedding, photos["neutral"])
            row[f"{name}_vs_smiling_photo"] = cosine(embedding, photos["smiling"])
            row[f"{name}_seconds"] = seconds[name]
        rows.append(row)
        figures = ", ".join(f"{k} {v:.3f}" for k, v in row.items() if k != "face_id")
        print(f"{face_id}: {figures}", flush=True)
    keys = [k for k in rows[0] if k != "face_id"] if rows else []
    means = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    return {"rows": rows, "mean": means, "people": len(rows), "overrides": overrides}


def table(report: dict) -> str:
    m = report["mean"]
    lines = [f"{report['people']} people, means (cosine: face-api recogniser; frontal, neutral, ambient)",
             "| fit | photos seen | shape RMS to the other fits (mm) | id vs neutral photo "
             "| id vs smiling photo | s |",
             "|---|---|---|---|---|---|",
             f"| neutral alone | neutral | {m['single_gap_mm']:.2f} (to smiling fit) | "
             f"{m['neutral_vs_neutral_photo']:.3f} (seen) | {m['neutral_vs_smiling_photo']:.3f} (unseen) | "
             f"{m['neutral_seconds']:.1f} |",
             f"| smiling alone | smiling | {m['single_gap_mm']:.2f} (to neutral fit) | "
             f"{m['smiling_vs_neutral_photo']:.3f} (unseen) | {m['smiling_vs_smiling_photo']:.3f} (seen) | "
             f"{m['smiling_seconds']:.1f} |",
             f"| both (joint) | both | {m['joint_to_neutral_mm']:.2f} / {m['joint_to_smiling_mm']:.2f} "
             f"(to neutral / smiling fit) | {m['joint_vs_neutral_photo']:.3f} | "
             f"{m['joint_vs_smiling_photo']:.3f} | {m['joint_seconds']:.1f} |"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=ROOT.parent / "shared" / "london-faces")
    parser.add_argument("--people", type=int, default=4, help="how many people (of 82); small by default")
    parser.add_argument("--full-steps", type=int, default=None)
    parser.add_argument("--detail-steps", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    overrides = {k: v for k, v in (("full_steps", args.full_steps), ("detail_steps", args.detail_steps))
                 if v is not None}
    report = run(args.source, args.people, overrides)
    if not report["rows"]:
        raise SystemExit(f"no neutral + smiling pairs found under {args.source}")
    print(table(report))
    if args.json:
        report["meta"] = {"threads": args.threads, "torch": torch.__version__,
                          "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count()}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
