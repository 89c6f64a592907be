"""Benchmark the texture priors on the held-out identities of the london-faces UV data set.

Usage::

    python bench/texture.py --data weights/texture_data [--priors simple,pca,gan] [--steps 300]
        [--fit-photos 4] [--source ../shared/london-faces] [--threads 2] [--json PATH]

Part 1, **projection** (no rendering): how well each prior reproduces held-out UV maps directly.
PSNR (dB) over the texels the photo saw well (weight > 0.5, on the UV charts). PCA: weighted least
squares (closed form); every prior (PCA included, for comparison): Adam on the latent for
``--steps`` steps minimising the masked MSE plus ``1e-4 x`` the prior's regulariser.

Part 2, **photo fits** (needs the fitting engine and the photos; ``--fit-photos 0`` skips it): for
held-out photos, ``ganfit_core.fitting.engine.fit`` with each prior at the default FitConfig (and, for
the last prior, with the detail stage if ``--detail-steps`` > 0). PSNR and SSIM of the final render
against the crop inside the landmark face mask, identity cosine similarity (face-api's recogniser:
the same network as the identity loss, so it flatters every fit equally), and fit seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganfit_core.texture import load_texture_prior
from ganfit_core.texture.dataset import load_uv_dataset


def masked_psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """PSNR (dB, peak 1) of images (..., 3) in [0, 1] over the True texels of ``mask`` (...)."""
    mse = float(((a - b) ** 2)[mask].mean())
    return float(10 * np.log10(1.0 / max(mse, 1e-12)))


def masked_ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Mean SSIM (Gaussian window sigma 1.5, grey levels in [0, 1]) over the True pixels of ``mask``."""
    x = torch.from_numpy(a.mean(-1)).float()[None, None]
    y = torch.from_numpy(b.mean(-1)).float()[None, None]
    r = torch.arange(11, dtype=torch.float32) - 5
    g = torch.exp(-(r**2) / (2 * 1.5**2))
    g = (g / g.sum())
    win = (g[:, None] * g[None, :])[None, None]

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, win, padding=5)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    ssim = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(ssim[0, 0].numpy()[mask].mean())


def project_by_optimisation(prior, target: torch.Tensor, mask: torch.Tensor, steps: int) -> torch.Tensor:
    """Adam (lr 0.05) on the latent: masked MSE + 1e-4 x regulariser; target (B, R, R, 3), mask (B, R, R)."""
    latent = prior.initial_latent(target.shape[0]).clone().requires_grad_(True)
    opt = torch.optim.Adam([latent], lr=0.05)
    m = mask.unsqueeze(-1).float()
    for _ in range(steps):
        opt.zero_grad()
        out = prior.decode(latent)
        if out.shape[1] != target.shape[1]:
            out = F.interpolate(out.permute(0, 3, 1, 2), size=target.shape[1:3], mode="bilinear",
                                align_corners=False).permute(0, 2, 3, 1)
        loss = ((out - target) ** 2 * m).sum() / (m.sum() * 3) + 1e-4 * prior.regulariser(latent)
        loss.backward()
        opt.step()
    with torch.no_grad():
        out = prior.decode(latent)
        if out.shape[1] != target.shape[1]:
            out = F.interpolate(out.permute(0, 3, 1, 2), size=target.shape[1:3], mode="bilinear",
                                align_corners=False).permute(0, 2, 3, 1)
    return out


def projection_table(data_dir: Path, priors: list[str], steps: int, limit: int | None = None) -> list[dict]:
    data = load_uv_dataset(data_dir)
    _, held = data.split()
    if len(held) == 0:
        raise SystemExit(f"{data_dir}: the data set has no held-out photos")
    held = held[:limit]
    sub = data.subset(held)
    target = sub.float_textures()
    mask = torch.from_numpy((sub.weights > 128) & sub.uv_mask[None])
    rows = []
    for name in priors:
        try:
            prior = load_texture_prior(name)
        except Exception as exc:  # noqa: BLE001 -- report and go on with the other priors
            rows.append({"prior": name, "error": str(exc).splitlines()[0]})
            continue
        res = {"prior": name, "latent": prior.latent_size, "resolution": prior.resolution}
        if hasattr(prior, "project") and prior.resolution == target.shape[1]:
            start = time.perf_counter()
            out = prior.decode(prior.project(target, mask.float()))
            res["psnr_lstsq_db"] = _mean_psnr(out.numpy(), target.numpy(), mask.numpy())
            res["lstsq_s"] = round(time.perf_counter() - start, 2)
        start = time.perf_counter()
        out = project_by_optimisation(prior, target, mask, steps)
        res["psnr_opt_db"] = _mean_psnr(out.numpy(), target.numpy(), mask.numpy())
        res["opt_s"] = round(time.perf_counter() - start, 1)
        base = prior.decode(prior.initial_latent(1)).detach()
        if base.shape[1] == target.shape[1]:
            res["psnr_initial_db"] = _mean_psnr(base.expand_as(target).numpy(), target.numpy(), mask.numpy())
        rows.append(res)
    return rows


def _mean_psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    return round(statistics.mean(masked_psnr(a[i], b[i], mask[i]) for i in range(len(a))), 2)


def fit_table(source: Path, priors: list[str], photos: int, detail_steps: int) -> list[dict]:
    from ganfit_core.face.identity import load_identity_network
    from ganfit_core.fitting.config import FitConfig
    from ganfit_core.fitting.engine import fit, run_to_end
    from ganfit_core.fitting.target import prepare_target
    from ganfit_core.texture.dataset import heldout_stems, list_photos

    held = set(heldout_stems())
    paths = [p for p in list_photos(source) if p.stem in held][:photos]
    net = load_identity_network()
    variants = [(name, 0) for name in priors]
    if detail_steps > 0:
        variants.append((priors[-1], detail_steps))
    per: dict[str, list[dict]] = {}
    for path in paths:
        base = FitConfig()
        target = prepare_target(path, resolution=base.render_size)
        crop = target.image.astype(np.float64) / 255.0
        lms = torch.from_numpy(target.landmarks).float()[None]
        with torch.no_grad():
            emb_t = net.embed(torch.from_numpy(crop).float().permute(2, 0, 1)[None], lms)
        for name, detail in variants:
            label = name + (f"+detail{detail}" if detail else "")
            config = base.replace(texture_prior=name, detail_steps=detail)
            start = time.perf_counter()
            result = run_to_end(fit(target, config))
            seconds = time.perf_counter() - start
            render = result.render.astype(np.float64) / 255.0
            with torch.no_grad():
                emb_r = net.embed(torch.from_numpy(render).float().permute(2, 0, 1)[None], lms)
            per.setdefault(label, []).append({
                "psnr_db": masked_psnr(render, crop, target.face_mask),
                "ssim": masked_ssim(render, crop, target.face_mask),
                "identity_cos": float(F.cosine_similarity(emb_t, emb_r).item()),
                "seconds": seconds,
            })
    rows = []
    for label, items in per.items():
        rows.append({"prior": label, "photos": len(items),
                     **{k: round(statistics.mean(i[k] for i in items), 3) for k in items[0]}})
    return rows


def _print(rows: list[dict], title: str) -> None:
    print(title)
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    widths = [max(len(k), *(len(str(r.get(k, ""))) for r in rows)) for k in keys]
    print("  ".join(k.ljust(w) for k, w in zip(keys, widths, strict=True)))
    for r in rows:
        print("  ".join(str(r.get(k, "")).ljust(w) for k, w in zip(keys, widths, strict=True)))
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("weights/texture_data"))
    parser.add_argument("--priors", default="simple,pca,gan")
    parser.add_argument("--steps", type=int, default=300, help="latent-optimisation steps (part 1)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N held-out maps (part 1)")
    parser.add_argument("--fit-photos", type=int, default=4, help="held-out photos to fit (part 2); 0 skips")
    parser.add_argument("--detail-steps", type=int, default=0,
                        help="also fit the last prior with a detail stage of this many steps")
    parser.add_argument("--source", type=Path, default=Path(os.environ.get("GANFIT_SOURCE_DIR", "../shared"))
                        / "london-faces")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    priors = [p.strip() for p in args.priors.split(",") if p.strip()]

    projection = projection_table(args.data, priors, args.steps, args.limit)
    _print(projection, f"Projection of held-out UV maps (PSNR dB, well-seen texels; {args.steps} Adam steps)")
    fits: list[dict] = []
    if args.fit_photos > 0:
        fits = fit_table(args.source, priors, args.fit_photos, args.detail_steps)
        _print(fits, f"Photo fits, {args.fit_photos} held-out photos (default FitConfig; face mask)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "machine": {"cpu": platform.processor() or platform.machine(), "threads": args.threads,
                        "torch": torch.__version__},
            "projection": projection, "fits": fits,
        }, indent=2) + "\n")


if __name__ == "__main__":
    main()
