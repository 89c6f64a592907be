"""Benchmark the renderer backends on the ICT face region (forward, forward + backward).

Usage:
    python bench/render.py [--sizes 256 512] [--repeats 20] [--threads 2] [--json PATH]

Prints one row per (backend, device, size): median wall-clock milliseconds of ``repeats`` runs after
warm-up and, for CPU rows, the median process CPU time (``time.process_time``, all threads of this
process), which is much less sensitive than wall clock to other programs loading a shared machine.
The face (neutral ICT "face" region, ~18.5k triangles) is seen frontally and fills most of the image;
the texture is 512 x 512, the SH lighting random; the loss for the backward pass weights the image
and the mask with fixed random weights, so gradients reach vertices, texture and SH.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from ganfit_core.render import (
    FRONTAL_ROTATION,
    PinholeCamera,
    ambient_sh,
    make_renderer,
    nvdiffrast_available,
)


def _scene(size: int, device: torch.device):
    from ganfit_core.model.morphable import load_morphable_model

    model = load_morphable_model("face", device=device)
    with torch.no_grad():
        vertices = model(
            torch.zeros(1, model.num_identity, device=device),
            torch.zeros(1, model.num_expression, device=device),
        )
    rotation = FRONTAL_ROTATION.to(device)
    vertices_cam = vertices @ rotation.T + torch.tensor([0.0, -20.0, 700.0], device=device)
    camera = PinholeCamera(
        torch.tensor([2.0 * size], device=device),
        torch.tensor([[size / 2, size / 2]], device=device),
        size,
        size,
    )
    generator = torch.Generator().manual_seed(0)
    texture = torch.rand(1, 512, 512, 3, generator=generator).to(device)
    sh = (ambient_sh(1, 0.8) + 0.05 * torch.randn(1, 9, 3, generator=generator)).to(device)
    weights = torch.rand(1, size, size, 4, generator=generator).to(device)
    return model, vertices_cam, camera, texture, sh, weights


def _time(fn, repeats: int, device: torch.device) -> tuple[float, float]:
    """Median wall-clock and process CPU milliseconds of ``fn`` over ``repeats`` runs after warm-up."""
    for _ in range(3):
        fn()
    wall, cpu = [], []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return 1000.0 * statistics.median(wall), 1000.0 * statistics.median(cpu)


def reference_ms() -> float:
    """Median time of one 1M-float multiply on the CPU: a yardstick for how loaded the machine is."""
    x = torch.rand(1_000_000)
    return _time(lambda: x * x, 50, torch.device("cpu"))[0]


def bench(backend: str, device: torch.device, size: int, repeats: int) -> dict:
    renderer = make_renderer(backend, device=device)
    model, vertices_cam, camera, texture, sh, weights = _scene(size, device)
    vertices_cam = vertices_cam.clone().requires_grad_(True)
    texture.requires_grad_(True)
    sh.requires_grad_(True)
    args = (model.faces, model.uvs, model.uv_faces, texture, camera, sh)

    def forward():
        with torch.no_grad():
            return renderer.render(vertices_cam, *args)

    def forward_backward():
        out = renderer.render(vertices_cam, *args)
        loss = (out.image * weights[..., :3]).sum() + (out.mask * weights[..., 3:]).sum()
        loss.backward()

    coverage = float(forward().mask.sum())
    forward_ms, forward_cpu_ms = _time(forward, repeats, device)
    both_ms, both_cpu_ms = _time(forward_backward, repeats, device)
    row = {
        "backend": backend,
        "device": str(device),
        "size": size,
        "triangles": int(model.faces.shape[0]),
        "covered_pixels": round(coverage),
        "forward_ms": round(forward_ms, 2),
        "forward_backward_ms": round(both_ms, 2),
    }
    if device.type == "cpu":
        row |= {"forward_cpu_ms": round(forward_cpu_ms, 2), "forward_backward_cpu_ms": round(both_cpu_ms, 2)}
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="write the rows as JSON here")
    options = parser.parse_args(argv)
    torch.set_num_threads(options.threads)

    setups = [("torch", torch.device("cpu"))]
    if torch.cuda.is_available():
        setups.append(("torch", torch.device("cuda")))
    if nvdiffrast_available():
        setups.append(("nvdiffrast", torch.device("cuda")))
    rows = [
        bench(backend, device, size, options.repeats) for backend, device in setups for size in options.sizes
    ]

    header = (
        f"{'backend':<11} {'device':<7} {'size':>5} {'covered':>8} {'fwd ms':>8} {'fwd+bwd ms':>11} "
        f"{'fwd cpu ms':>11} {'f+b cpu ms':>11}"
    )
    reference = reference_ms()
    print(
        f"ICT face region, {rows[0]['triangles']} triangles, torch threads = {options.threads}, "
        f"CPU yardstick (1M-float multiply) = {reference:.3f} ms"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        cpu = (
            f" {row['forward_cpu_ms']:>11.2f} {row['forward_backward_cpu_ms']:>11.2f}"
            if "forward_cpu_ms" in row
            else f" {'-':>11} {'-':>11}"
        )
        print(
            f"{row['backend']:<11} {row['device']:<7} {row['size']:>5} {row['covered_pixels']:>8} "
            f"{row['forward_ms']:>8.2f} {row['forward_backward_ms']:>11.2f}{cpu}"
        )
    if options.json is not None:
        payload = {
            "threads": options.threads,
            "torch": torch.__version__,
            "cpu_yardstick_ms": round(reference, 4),
            "rows": rows,
        }
        options.json.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
