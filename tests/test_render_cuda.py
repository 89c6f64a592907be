"""Backends against the PyTorch CPU reference on the ICT face: torch-CUDA and nvdiffrast."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from ganfit_core.render import (
    FRONTAL_ROTATION,
    PinholeCamera,
    ambient_sh,
    axis_angle_to_matrix,
    make_renderer,
)

pytestmark = pytest.mark.cuda
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
needs_nvdiffrast = pytest.mark.skipif(
    importlib.util.find_spec("nvdiffrast") is None, reason="nvdiffrast not installed"
)
SIZE = 128


def _scene(device: str):
    from ganfit_core.model.morphable import load_morphable_model

    model = load_morphable_model("face", device=device)
    generator = torch.Generator().manual_seed(0)
    identity = torch.randn(1, model.num_identity, generator=generator).to(device)
    with torch.no_grad():
        vertices = model(identity, torch.zeros(1, model.num_expression, device=device))
    rotation = (FRONTAL_ROTATION @ axis_angle_to_matrix(torch.tensor([[0.1, 0.35, 0.05]]))[0]).to(device)
    vertices_cam = vertices @ rotation.T + torch.tensor([0.0, -20.0, 700.0], device=device)
    camera = PinholeCamera(
        torch.tensor([2.0 * SIZE], device=device),
        torch.tensor([[SIZE / 2, SIZE / 2]], device=device),
        SIZE,
        SIZE,
    )
    texture = torch.rand(1, 64, 64, 3, generator=generator).to(device)
    sh = (ambient_sh(1, 0.8) + 0.1 * torch.randn(1, 9, 3, generator=generator)).to(device)
    return model, vertices_cam, camera, texture, sh


def _render(backend: str, device: str):
    model, vertices_cam, camera, texture, sh = _scene(device)
    vertices_cam.requires_grad_(True)
    texture.requires_grad_(True)
    sh.requires_grad_(True)
    out = make_renderer(backend, device=device).render(
        vertices_cam,
        model.faces,
        model.uvs,
        model.uv_faces,
        texture,
        camera,
        sh,
        buffers=frozenset({"triangle_id", "depth"}),
    )
    weights = torch.rand(1, SIZE, SIZE, 3, generator=torch.Generator().manual_seed(3)).to(device)
    (out.image * weights).sum().backward()
    return out, texture.grad, sh.grad


def _interior(out) -> torch.Tensor:
    mask = out.mask[0, ..., 0].cpu() == 1
    return mask & mask.roll(1, 0) & mask.roll(-1, 0) & mask.roll(1, 1) & mask.roll(-1, 1)


@needs_cuda
def test_torch_cuda_matches_torch_cpu():
    cpu, tex_cpu, sh_cpu = _render("torch", "cpu")
    gpu, tex_gpu, sh_gpu = _render("torch", "cuda")
    same = (cpu.triangle_id.cpu() == gpu.triangle_id.cpu()).float().mean()
    assert same > 0.995
    inside = _interior(cpu) & _interior(gpu)
    torch.testing.assert_close(gpu.image[0].cpu()[inside], cpu.image[0][inside], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(sh_gpu.cpu(), sh_cpu, atol=1e-2, rtol=1e-3)
    torch.testing.assert_close(tex_gpu.cpu(), tex_cpu, atol=1e-2, rtol=1e-3)


@needs_cuda
@needs_nvdiffrast
def test_nvdiffrast_matches_torch():
    ref, tex_ref, sh_ref = _render("torch", "cuda")
    out, tex_out, sh_out = _render("nvdiffrast", "cuda")
    ref_ids, out_ids = ref.triangle_id.cpu(), out.triangle_id.cpu()
    covered = (ref_ids >= 0) | (out_ids >= 0)
    assert (ref_ids == out_ids)[covered].float().mean() > 0.97
    assert abs(out.mask.sum().item() - ref.mask.sum().item()) < 0.01 * ref.mask.sum().item()
    inside = _interior(ref) & _interior(out)
    assert (out.image[0].cpu()[inside] - ref.image[0].cpu()[inside]).abs().mean() < 5e-3
    torch.testing.assert_close(out.depth[0].cpu()[inside], ref.depth[0].cpu()[inside], atol=0.05, rtol=0)
    # Gradients of the same loss agree closely (texture and lighting; silhouettes differ slightly).
    assert torch.nn.functional.cosine_similarity(tex_out.flatten(), tex_ref.flatten(), dim=0) > 0.98
    assert torch.nn.functional.cosine_similarity(sh_out.flatten(), sh_ref.flatten(), dim=0) > 0.98
