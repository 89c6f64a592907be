"""Benchmark the texture priors on the held-out identities of the london-faces UV data set.

Usage::

    python bench/texture.py --data weights/texture_data [--priors simple,pca,gan] [--steps 300]
        [--fit-photos 4] [--source ../shared/london-faces] [--threads 2] [--json PATH]

Part 1, **projection** (no rendering): how well each prior reproduces held-out UV maps directly.
PSNR (dB) over the texels the photo saw well (weight > 0.5, on the UV charts). PCA: weighted least
squares (closed form); every prior (PCA included, for comparison): Adam on the latent for
``--steps`` steps minimising the masked MSE plus ``1e-4 x`` the prior's regulariser.

**Completion** (same maps): the latent is fitted (Adam, as above) to the UV map's u < 0.5 half only
and PSNR and SSIM are taken on the hidden u >= 0.5 half (well-seen texels).

Part 2, **photo fits** (needs the fitting engine and the photos; ``--fit-photos 0`` skips it): for
held-out photos, ``ganfit_core.fitting.engine.fit`` with each prior at the default FitConfig (and, for
the last prior, with the detail stage if ``--detail-steps`` > 0). PSNR and SSIM of the final render
against the crop inside the landmark face mask, identity cosine similarity (face-api's recogniser:
the same network as the identity loss, so it flatters every fit equally), and fit seconds.

Part 3, **free view** (``--views N`` held-out identities of different skin tones): each neutral photo
is fitted, re-rendered under neutral light in its own view, frontally and at 35° yaw, and compared
with the person's other (smiling) photo by recognisers independent of the fit (``--recognisers``,
bench/_recognisers.py); also the albedo's skin tone per group and picture grids.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
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
        # Completion: fit the subject's right half of the UV map (u < 0.5), score the left half.
        half = torch.zeros_like(mask)
        half[:, :, : target.shape[2] // 2] = True
        out = project_by_optimisation(prior, target, mask & half, steps)
        hidden = (mask & ~half).numpy()
        res["completion_psnr_db"] = _mean_psnr(out.numpy(), target.numpy(), hidden)
        res["completion_ssim"] = round(statistics.mean(
            masked_ssim(out[i].numpy(), target[i].numpy(), hidden[i]) for i in range(len(out))), 4)
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


def pick_identities(source: Path, count: int) -> list[str]:
    """``count`` held-out London identities (numbers) of different skin tones: round-robin over the
    ethnicity groups of london_info.csv (black, east_asian, west_asian, white), numbers ascending."""
    from _freeview import ethnicity_groups

    from ganfit_core.texture.dataset import heldout_stems

    groups = ethnicity_groups(source)
    numbers = sorted({s.split("_")[0] for s in heldout_stems() if "_" in s})
    by_group: dict[str, list[str]] = {}
    for n in numbers:
        by_group.setdefault(groups.get(f"london-{n}", "unknown"), []).append(n)
    order = [by_group[g] for g in sorted(by_group)]
    picked: list[str] = []
    while len(picked) < count and any(order):
        for members in order:
            if members and len(picked) < count:
                picked.append(members.pop(0))
    return picked


def load_scorers(names: list[str]) -> dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    """Recogniser name -> descriptor(image uint8 (H, W, 3), landmarks (68, 2) px).

    ``faceres`` and ``mobileface`` (bench/_recognisers.py) are independent of the fit's identity loss;
    ``dlib`` is the same network as that loss (face-api's port of it), so it flatters every fit.
    """
    from _freeview import dlib_descriptor, load_dlib
    from _recognisers import Recogniser

    scorers = {}
    for name in names:
        if name == "dlib":
            models = load_dlib()
            if models is None:
                raise SystemExit("--recognisers dlib needs dlib-bin and face-recognition-models "
                                 "(requirements-test.txt)")
            scorers[name] = lambda image, lms, m=models: dlib_descriptor(m, image, lms)
        else:
            scorers[name] = Recogniser(name).embed
    return scorers


def freeview_table(source: Path, priors: list[str], count: int, grid: Path | None,
                   detail_steps: int | None, identities: list[str] | None = None,
                   recognisers: tuple[str, ...] = ("faceres", "mobileface"), dump: Path | None = None,
                   from_dumps: Path | None = None, with_eyes: bool = True,
                   overrides: dict[str, float | str] | None = None, light: str = "studio",
                   ) -> tuple[list[dict], list[dict]]:
    """Part 3: fit each identity's neutral photo; score re-renders under neutral light against the
    person's other (smiling) photo with each recogniser (cosine); skin tone of the albedo per group.

    ``dump`` saves each fit (mesh, UVs, texture, in-view render) as ``<prior>_<number>.npz``;
    ``from_dumps`` scores such files instead of fitting (e.g. fits made by another version).
    ``with_eyes``: the free views show the ICT eyeballs, as the exported GLB does.
    ``overrides``: FitConfig fields set for these fits (e.g. ``{"freeview_identity_weight": 0.3}``).
    ``light``: the free views' light (``studio`` or ``ambient``, see ``_freeview.render_view``).
    """
    from _freeview import cosine, ethnicity_groups, render_view, srgb_to_lab
    from PIL import Image

    from ganfit_core.fitting.config import FitConfig
    from ganfit_core.fitting.engine import fit, run_to_end
    from ganfit_core.fitting.target import prepare_target
    from ganfit_core.model.eyes import load_eye_basis, shape_eyes
    from ganfit_core.render.lighting import SH_BAND0
    from ganfit_core.texture.skin import landmark_regions

    eye_basis = load_eye_basis() if with_eyes else None
    scorers = load_scorers(list(recognisers))
    groups = ethnicity_groups(source)
    numbers = identities or pick_identities(source, count)
    from ganfit_core.model.morphable import load_morphable_model

    landmark_idx = load_morphable_model("face").landmark_indices.numpy()
    refs: dict[str, dict[str, np.ndarray]] = {r: {} for r in scorers}
    photos = {}
    fit_size = int((overrides or {}).get("render_size", FitConfig.render_size))  # as reconstruct() crops
    for n in numbers:
        photos[n] = prepare_target(source / "neutral_front" / f"{n}_03.jpg", resolution=fit_size)
        other = prepare_target(source / "smiling_front" / f"{n}_08.jpg", resolution=224)
        for r, embed in scorers.items():
            refs[r][n] = embed(other.image, other.landmarks)
    same_row: dict[str, object] = {"prior": "photo vs other photo"}
    diff_row: dict[str, object] = {"prior": "different people"}
    for r, embed in scorers.items():
        own = {n: embed(photos[n].image, photos[n].landmarks) for n in numbers}
        same_row[f"{r}_in_view"] = round(statistics.mean(cosine(own[n], refs[r][n]) for n in numbers), 3)
        if len(numbers) > 1:  # one identity: no pair of different people
            diff_row[f"{r}_in_view"] = round(statistics.mean(cosine(own[a], refs[r][b]) for a in numbers
                                                             for b in numbers if a != b), 3)
    rows: list[dict] = [same_row, diff_row]
    tone: list[dict] = []
    grid_rows = []
    for name in priors:
        extra = {} if detail_steps is None else {"detail_steps": detail_steps}
        config = FitConfig(texture_prior=name, **extra, **(overrides or {}))
        scores: dict[str, list[float]] = {f"{r}_{k}": [] for r in scorers
                                          for k in ("in_view", "frontal", "yaw35")}
        for n in numbers:
            target = photos[n]
            if from_dumps is not None:
                mesh = dict(np.load(from_dumps / f"{name}_{n}.npz"))
            else:
                result = run_to_end(fit(target, config))
                mesh = {"vertices": result.vertices, "faces": result.faces, "uvs": result.uvs,
                        "uv_faces": result.uv_faces, "texture": result.texture, "render": result.render,
                        "sh": np.asarray(result.face.sh), "identity": np.asarray(result.face.identity),
                        "expression": np.asarray(result.face.expression)}
                if result.face.iris_rgb is not None:
                    mesh["iris_rgb"] = np.asarray(result.face.iris_rgb)
                if dump is not None:
                    dump.mkdir(parents=True, exist_ok=True)
                    np.savez_compressed(dump / f"{name}_{n}.npz", **mesh)
            for r, embed in scorers.items():
                scores[f"{r}_in_view"].append(cosine(embed(mesh["render"], target.landmarks), refs[r][n]))
            views = {}
            iris = tuple(mesh["iris_rgb"]) if "iris_rgb" in mesh else None
            eyes = (shape_eyes(eye_basis, mesh["identity"].reshape(-1), mesh["expression"].reshape(-1), iris)
                    if with_eyes else None)
            for key, yaw in (("frontal", 0.0), ("yaw35", 35.0), ("yaw70", 70.0)):
                image, lms = render_view(mesh["vertices"], mesh["faces"], mesh["uvs"], mesh["uv_faces"],
                                         mesh["texture"], landmark_idx, yaw, eyes=eyes, light=light)
                views[key] = image
                if key != "yaw70":  # not at 70 degrees: the five-point alignment needs both eyes
                    for r, embed in scorers.items():
                        scores[f"{r}_{key}"].append(cosine(embed(image, lms), refs[r][n]))
                if key == "frontal":
                    frontal_lms = lms
            # Skin tone: cheeks/nose of the photo (normalised by the fitted exposure, the SH DC
            # level per channel) vs the same region of the albedo rendered frontally under neutral light.
            ys, xs = np.mgrid[0:target.size, 0:target.size]
            grid_px = np.stack([xs.ravel() + 0.5, ys.ravel() + 0.5], 1)
            ref_photo = landmark_regions(target.landmarks.astype(np.float64), grid_px).reference
            photo_rgb = (target.image.reshape(-1, 3)[ref_photo] / 255.0).mean(0)
            exposure = np.asarray(mesh["sh"], dtype=np.float64)[0] * SH_BAND0
            flat, _ = render_view(mesh["vertices"], mesh["faces"], mesh["uvs"], mesh["uv_faces"],
                                  mesh["texture"], landmark_idx, 0.0, eyes=eyes, light="ambient")
            ys, xs = np.mgrid[0:flat.shape[0], 0:flat.shape[1]]
            grid_px = np.stack([xs.ravel() + 0.5, ys.ravel() + 0.5], 1)
            ref_render = landmark_regions(frontal_lms, grid_px).reference
            albedo_rgb = (flat.reshape(-1, 3)[ref_render] / 255.0).mean(0)  # the albedo itself
            lab_albedo = srgb_to_lab(albedo_rgb)
            lab_photo = srgb_to_lab(np.clip(photo_rgb / np.maximum(exposure, 1e-3), 0, 1))
            lab_raw = srgb_to_lab(photo_rgb)
            tone.append({"prior": name, "identity": n, "group": groups.get(f"london-{n}", "?"),
                         "dE76": float(np.linalg.norm(lab_albedo - lab_photo)),
                         "dL": float(lab_albedo[0] - lab_photo[0]),
                         "dE76_raw": float(np.linalg.norm(lab_albedo - lab_raw)),
                         "dL_raw": float(lab_albedo[0] - lab_raw[0]),
                         "exposure": [round(float(e), 3) for e in exposure],
                         **{f"id_{k}": round(v[-1], 3) for k, v in scores.items()}})
            if grid is not None:
                tiles = [np.asarray(Image.fromarray(a).resize((256, 256), Image.Resampling.BILINEAR))
                         for a in (target.image, mesh["render"])]
                uv = np.asarray(Image.fromarray(mesh["texture"]).resize((256, 256), Image.Resampling.BOX))
                row = [*tiles, views["frontal"], views["yaw35"], views["yaw70"], uv]
                grid_rows.append(np.concatenate(row, 1))
        rows.append({"prior": name, **{k: round(statistics.mean(v), 3) for k, v in scores.items()}})
        if grid is not None and grid_rows:
            grid.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.concatenate(grid_rows, 0)).save(grid_path(grid, name, priors))
            grid_rows = []
    return rows, tone


def grid_path(grid: Path, prior: str, priors: list[str]) -> Path:
    """The picture grid of one prior: ``grid`` itself for a single prior, else ``<stem>_<prior>.png``."""
    return grid if len(priors) == 1 else grid.with_name(f"{grid.stem}_{prior}{grid.suffix}")


def parse_overrides(text: str) -> dict[str, float | str]:
    """``"a=1,b=0.5,c=face"`` -> ``{"a": 1, "b": 0.5, "c": "face"}`` (ints stay ints) for FitConfig fields."""
    out: dict[str, float | str] = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        key, _, value = item.partition("=")
        value = value.strip()
        try:
            out[key.strip()] = int(value) if value.lstrip("-").isdigit() else float(value)
        except ValueError:
            out[key.strip()] = value
    return out


def tone_by_group(tone: list[dict]) -> list[dict]:
    """Mean ΔE (CIE76) and signed ΔL* (albedo minus photo; > 0 = lightened) per prior and group."""
    out = []
    for key in sorted({(t["prior"], t["group"]) for t in tone}):
        items = [t for t in tone if (t["prior"], t["group"]) == key]
        out.append({"prior": key[0], "group": key[1], "n": len(items),
                    **{k: round(statistics.mean(t[k] for t in items), 2)
                       for k in ("dE76", "dL", "dE76_raw", "dL_raw")}})
    return out


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
    parser.add_argument("--steps", type=int, default=300,
                        help="latent-optimisation steps (part 1); 0 skips it")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N held-out maps (part 1)")
    parser.add_argument("--fit-photos", type=int, default=4, help="held-out photos to fit (part 2); 0 skips")
    parser.add_argument("--detail-steps", type=int, default=0,
                        help="also fit the last prior with a detail stage of this many steps")
    parser.add_argument("--source", type=Path, default=Path(os.environ.get("GANFIT_SOURCE_DIR", "../shared"))
                        / "london-faces")
    parser.add_argument("--views", type=int, default=8,
                        help="held-out identities of different skin tones for part 3 (free view, skin tone); "
                        "0 skips")
    parser.add_argument("--view-priors", default="pca", help="priors fitted in part 3")
    parser.add_argument("--identities", default=None,
                        help="part 3: comma-separated London numbers instead of the automatic pick")
    parser.add_argument("--view-detail-steps", type=int, default=None,
                        help="detail steps in part 3 (default: FitConfig's)")
    parser.add_argument("--grid", type=Path, default=Path("bench/results/texture_grid.png"),
                        help="picture grid of part 3: photo, in-view render, frontal, 35°, 70°, UV map "
                        "(one file per prior, <stem>_<prior>.png, when there are several)")
    parser.add_argument("--recognisers", default="faceres,mobileface",
                        help="part 3 scorers: faceres, mobileface (independent of the fit, fetched with npm "
                        "on first use) and dlib (the identity loss's own network)")
    parser.add_argument("--dump", type=Path, default=None,
                        help="part 3: save each fit as <prior>_<n>.npz here")
    parser.add_argument("--from-dumps", type=Path, default=None,
                        help="part 3: score the .npz fits in this folder instead of fitting")
    parser.add_argument("--set", default="", metavar="FIELD=VALUE,...",
                        help="part 3: FitConfig fields for the fits, e.g. freeview_identity_weight=0.3")
    parser.add_argument("--light", choices=("studio", "ambient"), default="studio",
                        help="part 3: light of the free views: a soft white light at the viewer with "
                        "ambient (studio) or flat ambient only")
    parser.add_argument("--no-eyes", action="store_true",
                        help="part 3: free views without the eyeballs (the sockets show the background)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    priors = [p.strip() for p in args.priors.split(",") if p.strip()]

    projection: list[dict] = []
    if args.steps > 0:
        projection = projection_table(args.data, priors, args.steps, args.limit)
        _print(projection, "Projection of held-out UV maps (PSNR dB, well-seen texels; "
               f"{args.steps} Adam steps)")
    fits: list[dict] = []
    if args.fit_photos > 0:
        fits = fit_table(args.source, priors, args.fit_photos, args.detail_steps)
        _print(fits, f"Photo fits, {args.fit_photos} held-out photos (default FitConfig; face mask)")
    views: list[dict] = []
    tone: list[dict] = []
    if args.views > 0:
        view_priors = [p.strip() for p in args.view_priors.split(",") if p.strip()]
        ids = [i.strip() for i in args.identities.split(",")] if args.identities else None
        recognisers = tuple(r.strip() for r in args.recognisers.split(",") if r.strip())
        views, tone = freeview_table(args.source, view_priors, args.views, args.grid, args.view_detail_steps,
                                     ids, recognisers, args.dump, args.from_dumps,
                                     not args.no_eyes, parse_overrides(args.set), args.light)
        _print(views, f"Identity (cosine vs the person's other photo), {args.views} held-out "
               "identities, re-rendered under neutral light")
        _print(tone_by_group(tone), "Skin tone of the albedo vs the photo normalised by the fitted exposure "
               "(ΔE76, ΔL*: + = lightened; _raw: vs the photo as is)")
        print("grids: " + ", ".join(str(grid_path(args.grid, p, view_priors)) for p in view_priors))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "machine": {"cpu": platform.processor() or platform.machine(), "threads": args.threads,
                        "torch": torch.__version__},
            "projection": projection, "fits": fits, "views": views, "tone": tone,
            "tone_by_group": tone_by_group(tone),
        }, indent=2) + "\n")


if __name__ == "__main__":
    main()
