"""Per-topology caches of the torch renderer stay correct when inputs change; batched helpers agree."""

from __future__ import annotations

import torch

from ganfit_core.render import PinholeCamera, ambient_sh, make_renderer
from ganfit_core.render.normals import vertex_normals
from ganfit_core.render.primitives import uv_sphere
from ganfit_core.render.torch_raster import antialias_silhouettes, edge_neighbours, rasterize_triangle_ids


def _scene(batch: int = 1):
    sphere = uv_sphere(8, 16, 30.0)
    offsets = torch.tensor([[0.0, 0.0, 200.0], [6.0, -4.0, 240.0]])[:batch]
    vertices = sphere.vertices[None] + offsets[:, None]
    camera = PinholeCamera(torch.full((batch,), 120.0), torch.tensor([[16.0, 16.0]]).expand(batch, 2), 32, 32)
    texture = torch.rand(batch, 8, 8, 3, generator=torch.Generator().manual_seed(0))
    return sphere, vertices, camera, texture, ambient_sh(batch, 0.9)


def test_uv_cache_follows_in_place_changes_and_new_tensors():
    sphere, vertices, camera, texture, sh = _scene()
    renderer = make_renderer("torch")
    uvs = sphere.uvs.clone()
    args = (vertices, sphere.faces)
    first = renderer.render(*args, uvs, sphere.uv_faces, texture, camera, sh, buffers=frozenset({"uv"}))
    uvs.mul_(0.5)  # same tensor, modified in place: the cached corner uvs must be rebuilt
    second = renderer.render(*args, uvs, sphere.uv_faces, texture, camera, sh, buffers=frozenset({"uv"}))
    fresh = make_renderer("torch").render(
        *args, uvs, sphere.uv_faces, texture, camera, sh, buffers=frozenset({"uv"})
    )
    torch.testing.assert_close(second.uv, fresh.uv)
    torch.testing.assert_close(second.uv, 0.5 * first.uv)
    other = renderer.render(
        *args,
        sphere.uvs.flip(1).contiguous(),
        sphere.uv_faces,
        texture,
        camera,
        sh,
        buffers=frozenset({"uv"}),
    )
    torch.testing.assert_close(other.uv, first.uv.flip(-1))


def test_topology_cache_follows_in_place_face_changes():
    sphere, vertices, camera, texture, sh = _scene()
    renderer = make_renderer("torch")
    faces = sphere.faces.clone()
    renderer.render(vertices, faces, sphere.uvs, sphere.uv_faces, texture, camera, sh)
    faces[:] = faces.roll(1, 0)  # same triangles in another order: neighbours must be recomputed
    again = renderer.render(vertices, faces, sphere.uvs, faces, texture, camera, sh)
    fresh = make_renderer("torch").render(vertices, faces, sphere.uvs, faces, texture, camera, sh)
    torch.testing.assert_close(again.image, fresh.image)
    torch.testing.assert_close(again.mask, fresh.mask)


def test_vertex_normals_match_per_face_loop_in_a_batch():
    sphere, vertices, *_ = _scene(batch=2)
    vertices = vertices + 0.5 * torch.randn(vertices.shape, generator=torch.Generator().manual_seed(3))
    expected = torch.zeros_like(vertices)
    for a, b, c in sphere.faces.tolist():
        normal = torch.linalg.cross(vertices[:, b] - vertices[:, a], vertices[:, c] - vertices[:, a])
        for k in (a, b, c):
            expected[:, k] += normal
    expected = expected / expected.norm(dim=-1, keepdim=True).clamp(min=1e-10)  # pole rows: 0
    torch.testing.assert_close(vertex_normals(vertices, sphere.faces), expected, atol=1e-5, rtol=1e-5)


def test_batched_visibility_and_antialiasing_match_single_frames():
    from ganfit_core.render import project

    sphere, vertices, camera, *_ = _scene(batch=2)
    xy = project(vertices, camera)
    vis = rasterize_triangle_ids(xy, vertices[..., 2], sphere.faces, 32, 32, near=10.0)
    neighbours = edge_neighbours(sphere.faces)
    for b in range(2):
        single = rasterize_triangle_ids(
            xy[b : b + 1], vertices[b : b + 1, :, 2], sphere.faces, 32, 32, near=10.0
        )
        assert torch.equal(vis.triangle_id[b], single.triangle_id[0])
        assert torch.equal(vis.front[b], single.front[0])
    pixel = (vis.triangle_id.view(-1) >= 0).nonzero().squeeze(1)
    values = torch.rand(pixel.numel(), 2, generator=torch.Generator().manual_seed(5))
    target, change = antialias_silhouettes(values, pixel, xy, sphere.faces, neighbours, vis)
    assert target.numel() > 0
    image = torch.zeros(2 * 32 * 32, 2).index_add(0, target, change).view(2, 32, 32, 2)
    for b in range(2):
        single_vis = rasterize_triangle_ids(
            xy[b : b + 1], vertices[b : b + 1, :, 2], sphere.faces, 32, 32, near=10.0
        )
        inside = (pixel >= b * 1024) & (pixel < (b + 1) * 1024)
        t, c = antialias_silhouettes(
            values[inside], pixel[inside] - b * 1024, xy[b : b + 1], sphere.faces, neighbours, single_vis
        )
        single = torch.zeros(32 * 32, 2).index_add(0, t, c).view(32, 32, 2)
        torch.testing.assert_close(image[b], single)
