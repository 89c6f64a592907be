"""The pure-PyTorch rasteriser: coverage, visibility, culling, texturing, lighting, gradients."""

from __future__ import annotations

import pytest
import torch

from ganfit_core.render import PinholeCamera, ambient_sh, make_renderer
from ganfit_core.render.primitives import Mesh, quad, uv_sphere
from ganfit_core.render.torch_raster import edge_neighbours


def _camera(size: int = 16, focal: float = 100.0, batch: int = 1, dtype=torch.float32) -> PinholeCamera:
    return PinholeCamera(
        torch.full((batch,), focal, dtype=dtype),
        torch.tensor([[size / 2, size / 2]], dtype=dtype).expand(batch, 2),
        size,
        size,
    )


def _render(mesh: Mesh, camera: PinholeCamera, texture=None, sh=None, antialias=True, **kw):
    from ganfit_core.render import RenderSettings

    renderer = make_renderer("torch", settings=RenderSettings(antialias=antialias))
    dtype = mesh.vertices.dtype
    if texture is None:
        texture = torch.ones(1, 4, 4, 3, dtype=dtype)
    if sh is None:
        sh = ambient_sh(1, 1.0, dtype=dtype)
    vertices = mesh.vertices if mesh.vertices.dim() == 3 else mesh.vertices[None]
    return renderer.render(vertices, mesh.faces, mesh.uvs, mesh.uv_faces, texture, camera, sh, **kw)


def test_quad_covers_expected_pixels():
    # Quad x in [-0.23, 0.61] mm, y in [-0.4, 0.35] mm at z = 50: pixels x in [7.54, 9.22], y in [7.2, 8.7].
    mesh = quad(-0.23, -0.4, 0.61, 0.35, 50.0)
    out = _render(mesh, _camera(), buffers=frozenset({"triangle_id"}))
    expected = torch.zeros(16, 16, dtype=torch.bool)
    expected[7:8, 8:9] = True  # rows with centre in [7.2, 8.7]: 7 (7.5), 8 (8.5); columns: 8 (8.5)
    expected[8, 8] = True
    assert torch.equal(out.triangle_id[0] >= 0, expected)
    hard = _render(mesh, _camera(), antialias=False)
    assert torch.equal(hard.mask[0, ..., 0], expected.float())


def test_antialiased_mask_area_matches_quad_area():
    mesh = quad(-1.13, -0.87, 1.41, 0.66, 50.0)  # 5.08 x 3.06 px
    out = _render(mesh, _camera())
    area = 100.0 / 50.0 * (1.41 + 1.13) * 100.0 / 50.0 * (0.66 + 0.87)
    assert abs(out.mask.sum().item() - area) < 0.35
    assert out.mask.min() >= 0 and out.mask.max() <= 1


def test_nearer_triangle_wins_in_either_order():
    # Both quads project to pixels [5.75, 10.25]^2 (4 x 4 pixel centres); the near one must win.
    near = quad(-0.9, -0.9, 0.9, 0.9, 40.0)
    far = quad(-1.8, -1.8, 1.8, 1.8, 80.0)
    for first, second in ((near, far), (far, near)):
        vertices = torch.cat([first.vertices, second.vertices])
        faces = torch.cat([first.faces, second.faces + 4])
        mesh = Mesh(vertices, faces, torch.cat([first.uvs, second.uvs]), faces.clone())
        out = _render(mesh, _camera(), buffers=frozenset({"depth", "triangle_id"}))
        covered = out.triangle_id[0] >= 0
        assert covered.sum() == 16
        near_ids = {0, 1} if first is near else {2, 3}
        assert set(out.triangle_id[0][covered].unique().tolist()) <= near_ids
        torch.testing.assert_close(out.depth[0][covered], torch.full((16, 1), 40.0))


def test_back_faces_are_culled():
    mesh = quad(-1.0, -1.0, 1.0, 1.0, 50.0)
    flipped = Mesh(mesh.vertices, mesh.faces.flip(1), mesh.uvs, mesh.uv_faces.flip(1))
    assert _render(mesh, _camera()).mask.sum() > 10
    assert _render(flipped, _camera()).mask.sum() == 0


def test_sphere_shows_only_faces_towards_camera():
    sphere = uv_sphere(12, 24, 30.0)
    vertices = sphere.vertices + torch.tensor([0.0, 0.0, 200.0])
    out = _render(
        Mesh(vertices, sphere.faces, sphere.uvs, sphere.uv_faces),
        _camera(64, 200.0),
        buffers=frozenset({"triangle_id", "normals"}),
    )
    ids = out.triangle_id[0]
    visible = ids[ids >= 0].unique()
    v = vertices[sphere.faces[visible]]
    normal = torch.linalg.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    assert ((normal * v[:, 0]).sum(-1) < 0).all()  # all visible triangles face the camera
    # Interpolated normals of visible pixels point towards the camera (negative z in OpenCV space).
    assert (out.normals[0][ids >= 0][:, 2] < 0).all()


def test_checkerboard_texture_lands_on_texels():
    # A quad exactly covering 8 x 8 pixels shows an 8 x 8 texture texel for pixel; row 0 = v = 1 = top.
    texture = ((torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2).float()
    texture = torch.stack([texture, 1 - texture, torch.linspace(0, 1, 8)[:, None].expand(8, 8)], -1)[None]
    mesh = quad(-2.0, -2.0, 2.0, 2.0, 50.0)  # pixels [4, 12]
    out = _render(mesh, _camera(), texture=texture)
    torch.testing.assert_close(out.image[0, 4:12, 4:12], texture[0])
    assert out.image[0, :4].abs().sum() == 0 and out.image[0, 12:].abs().sum() == 0


def test_constant_sh_gives_albedo_times_level():
    sphere = uv_sphere(10, 20, 30.0)
    mesh = Mesh(sphere.vertices + torch.tensor([0.0, 0.0, 200.0]), sphere.faces, sphere.uvs, sphere.uv_faces)
    texture = torch.rand(1, 8, 8, 3)
    out = _render(
        mesh,
        _camera(48, 150.0),
        texture=texture,
        sh=ambient_sh(1, 0.6),
        buffers=frozenset({"albedo", "shading"}),
    )
    inside = out.mask[0, ..., 0] == 1
    torch.testing.assert_close(out.shading[0][inside], torch.full_like(out.shading[0][inside], 0.6))
    torch.testing.assert_close(out.image[0][inside], 0.6 * out.albedo[0][inside])


def test_batch_matches_single_renders():
    sphere = uv_sphere(8, 16, 30.0)
    offsets = torch.tensor([[0.0, 0.0, 200.0], [10.0, -5.0, 260.0]])
    vertices = sphere.vertices[None] + offsets[:, None]
    texture = torch.rand(2, 8, 8, 3)
    sh = torch.randn(2, 9, 3) * 0.2 + ambient_sh(2, 0.8)
    camera = _camera(32, 120.0, batch=2)
    renderer = make_renderer("torch")
    both = renderer.render(vertices, sphere.faces, sphere.uvs, sphere.uv_faces, texture, camera, sh)
    for b in range(2):
        single = renderer.render(
            vertices[b : b + 1],
            sphere.faces,
            sphere.uvs,
            sphere.uv_faces,
            texture[b : b + 1],
            _camera(32, 120.0),
            sh[b : b + 1],
        )
        torch.testing.assert_close(both.image[b], single.image[0])
        torch.testing.assert_close(both.mask[b], single.mask[0])


def test_mask_gradient_moves_silhouette():
    # d(mask area)/d(right-edge x) equals the edge height in pixels times the pixels per mm.
    mesh = quad(-1.13, -0.87, 1.41, 0.66, 50.0)
    shift = torch.zeros(1, requires_grad=True)
    vertices = mesh.vertices.clone()
    right = torch.tensor([0.0, 1.0, 1.0, 0.0])[:, None] * torch.tensor([1.0, 0.0, 0.0])
    out = _render(Mesh(vertices + right * shift, mesh.faces, mesh.uvs, mesh.uv_faces), _camera())
    out.mask.sum().backward()
    height_px = 2.0 * (0.66 + 0.87)
    assert abs(shift.grad.item() - height_px * 2.0) < 0.3 * height_px * 2.0


def _small_scene(dtype=torch.float64):
    sphere = uv_sphere(5, 8, 30.0, dtype=dtype)
    rot = torch.tensor([[0.9, 0.1, 0.4], [-0.2, 0.95, 0.2], [-0.35, -0.25, 0.9]], dtype=dtype)
    rot = torch.linalg.qr(rot)[0]
    vertices = (sphere.vertices @ rot.T + torch.tensor([3.0, -2.0, 200.0], dtype=dtype))[None]
    texture = torch.rand(1, 6, 6, 3, dtype=dtype, generator=torch.Generator().manual_seed(0))
    sh = ambient_sh(1, 0.8, dtype=dtype) + 0.1 * torch.randn(
        1, 9, 3, dtype=dtype, generator=torch.Generator().manual_seed(1)
    )
    return sphere, vertices, texture, sh, _camera(20, 100.0, dtype=dtype)


@pytest.mark.parametrize("antialias", [False, True])
def test_gradcheck_vertices_texture_sh(antialias):
    from ganfit_core.render import RenderSettings

    sphere, vertices, texture, sh, camera = _small_scene()
    renderer = make_renderer("torch", settings=RenderSettings(antialias=antialias))
    weights = torch.rand(1, 20, 20, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    base = renderer.render(vertices, sphere.faces, sphere.uvs, sphere.uv_faces, texture, camera, sh)
    if not antialias:  # without antialiasing only interior pixels are differentiable in the vertices
        inside = base.mask.clone()
        for dim in (1, 2):
            inside = inside * base.mask.roll(1, dim) * base.mask.roll(-1, dim)
        weights = weights * inside

    def loss(v, tex, coeffs):
        out = renderer.render(v, sphere.faces, sphere.uvs, sphere.uv_faces, tex, camera, coeffs)
        return ((out.image * weights).sum() + (out.mask * weights[..., :1]).sum()).view(1)

    inputs = (
        vertices.clone().requires_grad_(True),
        texture.clone().requires_grad_(True),
        sh.clone().requires_grad_(True),
    )
    assert torch.autograd.gradcheck(loss, inputs, eps=1e-6, atol=1e-5, rtol=1e-4, fast_mode=True)


def test_gradcheck_camera():
    sphere, vertices, texture, sh, camera = _small_scene()
    renderer = make_renderer("torch")
    weights = torch.rand(1, 20, 20, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(4))

    def loss(focal, principal):
        cam = PinholeCamera(focal, principal, camera.width, camera.height)
        out = renderer.render(vertices, sphere.faces, sphere.uvs, sphere.uv_faces, texture, cam, sh)
        return ((out.image * weights).sum() + out.mask.sum()).view(1)

    inputs = (camera.focal.clone().requires_grad_(True), camera.principal.clone().requires_grad_(True))
    assert torch.autograd.gradcheck(loss, inputs, eps=1e-6, atol=1e-5, rtol=1e-4)


def test_edge_neighbours_of_closed_sphere_are_complete():
    sphere = uv_sphere(6, 10)
    neighbours = edge_neighbours(sphere.faces)
    # The UV sphere duplicates its seam column, so only seam edges are open.
    assert (neighbours >= 0).float().mean() > 0.8
    f = torch.arange(sphere.faces.shape[0])[:, None].expand(-1, 3)
    has = neighbours >= 0
    back = neighbours[neighbours[has]]  # neighbour's neighbours contain the face itself
    assert (back == f[has][:, None]).any(1).all()


def test_make_renderer_errors():
    with pytest.raises(ValueError, match="unknown backend"):
        make_renderer("opengl")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            make_renderer("nvdiffrast")
    with pytest.raises(ValueError, match="unknown buffers"):
        _render(quad(-1, -1, 1, 1, 50.0), _camera(), buffers=frozenset({"colour"}))


def test_occlusion_outline_is_antialiased_with_gradients():
    # A small red quad in front of a large green one: the outline blends red and green (no black),
    # and moving the small quad's right edge grows the red area at the rate of the edge's length.
    near = quad(-1.13, -0.87, 1.41, 0.66, 40.0)
    far = quad(-4.0, -4.0, 4.0, 4.0, 80.0)
    shift = torch.zeros(1, requires_grad=True)
    right_edge = torch.tensor([0.0, 1.0, 1.0, 0.0])[:, None] * torch.tensor([1.0, 0.0, 0.0])
    moved = near.vertices + right_edge * shift
    vertices = torch.cat([moved, far.vertices])
    faces = torch.cat([near.faces, far.faces + 4])
    uvs = torch.tensor([[0.25, 0.5]] * 4 + [[0.75, 0.5]] * 4)
    texture = torch.tensor([[[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]]])  # 1 x 2 texels: left red, right green
    out = _render(Mesh(vertices, faces, uvs, faces.clone()), _camera(), texture=texture)
    image = out.image[0]
    inside_far = out.mask[0, ..., 0] == 1
    assert torch.allclose(image.sum(-1)[inside_far], torch.ones(()))  # red + green = 1 everywhere
    mixed = (image[..., 0] > 0.05) & (image[..., 1] > 0.05)
    assert mixed.sum() >= 8  # blended outline pixels
    (image[..., 0].sum()).backward()
    area = (1.41 + 1.13) * (0.66 + 0.87) * (100.0 / 40.0) ** 2
    assert abs(image[..., 0].sum().item() - area) < 0.35
    height_px = (0.66 + 0.87) * 100.0 / 40.0
    assert abs(shift.grad.item() - height_px * 100.0 / 40.0) < 0.3 * height_px * 100.0 / 40.0


def _brute_force_ids(xy: torch.Tensor, z: torch.Tensor, faces: torch.Tensor, size: int) -> torch.Tensor:
    """Slow reference: test every pixel centre against every front-facing triangle in float64."""
    xy, z = xy.double(), z.double()
    centres = torch.stack(torch.meshgrid(torch.arange(size), torch.arange(size), indexing="xy"), -1) + 0.5
    p = centres.reshape(-1, 1, 2)
    t = xy[faces]  # (F, 3, 2)
    d = t[None] - p[:, :, None, :]  # (P, F, 3, 2)
    d1, d2 = d.roll(-1, 2), d.roll(-2, 2)
    num = d1[..., 0] * d2[..., 1] - d1[..., 1] * d2[..., 0]
    area = num.sum(-1)
    inside = (area < 0) & (num <= 0).all(-1)
    depth = area / (num / z[faces]).sum(-1)
    depth = torch.where(inside, depth, torch.inf)
    best = depth.argmin(1)
    return torch.where(torch.isfinite(depth.min(1).values), best, -1).view(size, size)


def test_visibility_matches_brute_force_reference():
    from ganfit_core.render import project
    from ganfit_core.render.torch_raster import rasterize_triangle_ids

    sphere = uv_sphere(9, 14, 30.0)
    rot = torch.linalg.qr(torch.tensor([[0.9, 0.3, 0.2], [-0.2, 0.8, 0.5], [0.1, -0.4, 0.9]]))[0]
    vertices = (sphere.vertices @ rot.T + torch.tensor([4.0, -3.0, 160.0]))[None]
    camera = _camera(40, 160.0)
    xy = project(vertices, camera)
    ids = rasterize_triangle_ids(xy, vertices[..., 2], sphere.faces, 40, 40, near=10.0).triangle_id[0]
    reference = _brute_force_ids(xy[0], vertices[0, :, 2], sphere.faces, 40)
    assert (ids >= 0).sum() > 300
    assert torch.equal(ids >= 0, reference >= 0)
    # Where both pick a triangle, ties on shared edges may differ, never the depth.
    differ = ids != reference
    assert differ.float().mean() < 0.02
