"""Benchmark the identity network (face-api's dlib-ResNet port): align, forward, forward+backward.

Usage: ``python bench/identity.py [--threads N] [--repeats N] [--image-size S] [--json PATH]``.
Prints a table; ``--json`` also writes the figures. Times are medians in milliseconds on this
machine's CPU, batch 1: the network on a 150 x 150 chip, and the whole ``embed`` (alignment from an
S x S image + network), each without gradients and with a backward pass to the input image.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import torch
from _timing import median_ms

from ganfit_core.face.identity import load_identity_network


def run(*, repeats: int, image_size: int) -> dict[str, object]:
    net = load_identity_network()
    gen = torch.Generator().manual_seed(0)
    chip = torch.rand(1, 3, 150, 150, generator=gen)
    image = torch.rand(1, 3, image_size, image_size, generator=gen)
    # a face about 40% of the image wide, roughly frontal
    landmarks = image_size * (0.3 + 0.4 * torch.rand(1, 68, 2, generator=gen))

    def backward_chip() -> None:
        leaf = chip.clone().requires_grad_(True)
        net.embed_aligned(leaf).square().sum().backward()

    def backward_embed() -> None:
        leaf = image.clone().requires_grad_(True)
        out = net.analyse(leaf, landmarks)
        (out.embedding.square().sum() + sum(f.square().mean() for f in out.features)).backward()

    results: dict[str, object] = {}
    with torch.no_grad():
        results["net_forward_ms"] = round(median_ms(lambda: net.embed_aligned(chip), repeats), 2)
        results["align_ms"] = round(median_ms(lambda: net.align(image, landmarks), repeats), 2)
        results["embed_forward_ms"] = round(median_ms(lambda: net.embed(image, landmarks), repeats), 2)
    results["net_forward_backward_ms"] = round(median_ms(backward_chip, repeats), 2)
    results["embed_features_forward_backward_ms"] = round(median_ms(backward_embed, repeats), 2)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--image-size", type=int, default=512, help="side of the aligned image")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = run(repeats=args.repeats, image_size=args.image_size)
    meta = {"threads": args.threads, "repeats": args.repeats, "image_size": args.image_size,
            "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
            "load_average_1min": round(os.getloadavg()[0], 2)}
    print(f"identity network (face-api dlib ResNet), batch 1, {args.threads} threads, {meta['machine']}, "
          f"load average {meta['load_average_1min']}")
    print(f"{'measure':<40} {'ms':>10}")
    for key, value in results.items():
        print(f"{key:<40} {value:>10}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
