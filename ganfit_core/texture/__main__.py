"""Texture-prior tools: ``python -m ganfit_core.texture {extract,pca,train,synthetic} ...``.

- photos -> UV data set: ``python -m ganfit_core.pipelines.uv_extract --source DIR --out DIR`` (the
  extraction needs the fitting engine, which this package never imports).
- ``pca --data DIR --out FILE [--components 64]``: PCA prior from a data set's training split.
- ``train --data DIR --out DIR --config tiny|full [--steps N] [--seed S] [--resume]``: train the GAN
  prior (PCA + orthogonal GAN residual; ``full`` is the published one, seeded, about 40 minutes on
  one free CPU core; copy ``DIR/texture_gan.safetensors`` into ``weights/`` to use it).
- ``synthetic --out DIR [--count N] [--resolution R]``: a synthetic data set for smoke tests.

Built files derive from CC BY 4.0 photos: keep them out of git (use ``weights/`` or a data folder).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path


def _pca(args: argparse.Namespace) -> int:
    import numpy as np

    from ganfit_core.texture.dataset import load_uv_dataset
    from ganfit_core.texture.pca import pca_from_dataset, save_pca

    data = load_uv_dataset(Path(args.data))
    train, held = data.split()
    model = pca_from_dataset(data, args.components)
    cum = np.cumsum(model.explained)
    marks = [k for k in (1, 5, 10, 20, 40, 64, 80) if k <= len(cum)]
    print(f"PCA of {len(train)} training textures ({len(held)} held out): variance explained "
          + ", ".join(f"{k}: {100 * cum[k - 1]:.1f}%" for k in marks))
    save_pca(model, Path(args.out))
    print(f"wrote {args.out}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from ganfit_core.texture.train import CONFIGS, TrainProgress, train_gan

    config = CONFIGS[args.config]
    if args.steps is not None:
        config = replace(config, steps=args.steps)
    if args.threads is not None:
        config = replace(config, threads=args.threads)
    if args.seed is not None:
        config = replace(config, seed=args.seed)

    def report(p: TrainProgress) -> None:
        if p.step % args.log_every == 0:
            terms = " ".join(f"{k}={v:.3f}" for k, v in p.losses.items())
            print(f"step {p.step}  {terms}  {p.elapsed_s:.0f}s", flush=True)

    path = train_gan(Path(args.data), Path(args.out), config, resume=args.resume, progress=report)
    print(f"wrote {path}")
    return 0


def _synthetic(args: argparse.Namespace) -> int:
    from ganfit_core.texture.dataset import DATASET_FILENAME, save_uv_dataset, synthetic_uv_dataset

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_uv_dataset(synthetic_uv_dataset(args.count, args.resolution, seed=args.seed), out / DATASET_FILENAME)
    print(f"wrote {out / DATASET_FILENAME}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ganfit_core.texture",
                                     description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pca", help="fit the PCA prior on a data set's training split")
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True, help="output .safetensors file")
    p.add_argument("--components", type=int, default=64)
    p.set_defaults(func=_pca)
    p = sub.add_parser("train", help="train the GAN prior")
    p.add_argument("--data", required=True, help="folder with uv_textures.safetensors")
    p.add_argument("--out", required=True, help="run folder (checkpoints, samples, texture_gan.safetensors)")
    p.add_argument("--config", choices=["tiny", "full"], default="tiny")
    p.add_argument("--steps", type=int, default=None, help="total steps (overrides the config)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (overrides the config)")
    p.add_argument("--seed", type=int, default=None, help="random seed (overrides the config's 0)")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    p.add_argument("--log-every", type=int, default=10)
    p.set_defaults(func=_train)
    p = sub.add_parser("synthetic", help="write a synthetic UV data set (smoke tests)")
    p.add_argument("--out", required=True)
    p.add_argument("--count", type=int, default=32)
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_synthetic)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
