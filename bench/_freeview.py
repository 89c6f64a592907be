"""Helpers of bench/texture.py (imported as ``_freeview``: scripts run from bench/): free-view renders,
dlib identity, skin colour in CIE Lab.

Kept out of the library: they serve the benchmark only (dlib-bin and face-recognition-models are
test-only packages, see requirements-test.txt).
"""

from __future__ import annotations

import csv
import importlib.util
import math
from pathlib import Path

import numpy as np
import torch


def load_dlib():
    """(dlib, 68-point predictor, descriptor net), or None when the test-only packages are absent."""
    if any(importlib.util.find_spec(n) is None for n in ("dlib", "face_recognition_models")):
        return None
    import dlib

    # `import face_recognition_models` fails without pkg_resources: locate its files instead.
    package = importlib.util.find_spec("face_recognition_models")
    models = Path(package.submodule_search_locations[0]) / "models"
    return (dlib, dlib.shape_predictor(str(models / "shape_predictor_68_face_landmarks.dat")),
            dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat")))


def dlib_descriptor(models, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """dlib's 128-D descriptor of the face whose 68 landmarks (px) we know (the box comes from them)."""
    dlib, predictor, net = models
    x0, y0 = landmarks.min(0)
    x1, y1 = landmarks.max(0)
    rect = dlib.rectangle(int(x0), int(y0), int(x1), int(y1))
    img = np.ascontiguousarray(image)
    shape = predictor(img, rect)
    return np.asarray(net.compute_face_descriptor(img, shape, 0), dtype=np.float64)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _with_eyes(vertices: np.ndarray, faces: np.ndarray, uvs: np.ndarray, uv_faces: np.ndarray,
               texture: np.ndarray, eyes) -> tuple[np.ndarray, ...]:
    """One mesh of the face and the flat-coloured eyeballs (as the exported GLB shows them), built as
    the fit's free views build it (``ganfit_core.fitting.freeview``); the texture comes back 0-255."""
    from ganfit_core.fitting.freeview import eye_triangles, texture_with_eye_colours

    parts = eyes.parts()
    all_faces, all_uv_faces = eye_triangles(torch.as_tensor(np.asarray(faces)).long(),
                                            torch.as_tensor(np.asarray(uv_faces)).long(), len(vertices),
                                            len(uvs), [part for _, part, _ in parts])
    rgb = torch.tensor(np.round(np.array([c for _, _, c in parts]) * 255) / 255, dtype=torch.float32)
    tex, all_uvs = texture_with_eye_colours(torch.from_numpy(np.asarray(texture, np.float32) / 255)[None],
                                            torch.from_numpy(np.asarray(uvs, np.float32)), rgb)
    return (np.concatenate([vertices, eyes.vertices]), all_faces.numpy(), all_uvs.numpy(),
            all_uv_faces.numpy(), tex[0].numpy() * 255)


def render_view(vertices: np.ndarray, faces: np.ndarray, uvs: np.ndarray, uv_faces: np.ndarray,
                texture: np.ndarray, landmark_indices: np.ndarray, yaw_deg: float, *, size: int = 256,
                background: float = 0.5, eyes=None, light: str = "studio") -> tuple[np.ndarray, np.ndarray]:
    """The textured mesh (model space, mm) under neutral light turned ``yaw_deg``.

    ``light``: ``"studio"``, a white light at the viewer, 20° above, with half the level ambient (a
    surface facing it gets ~1; shading shows the shape), or ``"ambient"`` (1 everywhere: flat).

    ``eyes``: :class:`ganfit_core.model.eyes.EyeMeshes` rendered with it (the exported GLB has
    them; without them the eye sockets show the background).
    Returns the image (size, size, 3) uint8 and the projected landmarks (68, 2) px.
    """
    from ganfit_core.export.rerender import directional_sh
    from ganfit_core.render import (
        FRONTAL_ROTATION,
        PinholeCamera,
        ambient_sh,
        axis_angle_to_matrix,
        make_renderer,
    )
    from ganfit_core.render.camera import project

    face_centre = np.asarray(vertices, dtype=np.float32).mean(0)
    landmarks_model = np.asarray(vertices, dtype=np.float32)[np.asarray(landmark_indices)]
    if eyes is not None:
        vertices, faces, uvs, uv_faces, texture = _with_eyes(vertices, faces, uvs, uv_faces, texture, eyes)
    v = torch.from_numpy(np.asarray(vertices, dtype=np.float32))[None]
    rot = axis_angle_to_matrix(torch.tensor([[0.0, math.radians(yaw_deg), 0.0]])) @ FRONTAL_ROTATION
    centre = torch.from_numpy(face_centre)
    offset = torch.tensor([0.0, 0.0, 1500.0])
    cam_v = (v - centre) @ rot.transpose(1, 2) + offset
    focal = 0.8 * size * 1500.0 / 260.0
    camera = PinholeCamera(torch.tensor([focal]), torch.tensor([[size / 2, size / 2]]), size, size)
    tex = torch.from_numpy(np.asarray(texture, dtype=np.float32) / 255.0)[None]
    if light == "ambient":
        sh = ambient_sh(1, 1.0)
    elif light == "studio":
        sh = torch.from_numpy(directional_sh([1.0, 1.0, 1.0], 0.0, 20.0, ambient=0.5)).float()[None]
    else:
        raise ValueError(f"light: expected 'studio' or 'ambient', got {light!r}")
    out = make_renderer("torch").render(cam_v, torch.from_numpy(np.asarray(faces)).long(),
                                        torch.from_numpy(np.asarray(uvs, dtype=np.float32)),
                                        torch.from_numpy(np.asarray(uv_faces)).long(), tex, camera, sh)
    image = out.image + (1 - out.mask) * background
    lm_cam = (torch.from_numpy(landmarks_model)[None] - centre) @ rot.transpose(1, 2) + offset
    lms = project(lm_cam, camera)[0].numpy()
    return (image[0].clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8), lms.astype(np.float64)


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (..., 3) in [0, 1] -> CIE L*a*b* (D65)."""
    c = np.asarray(rgb, dtype=np.float64)
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def ethnicity_groups(source: Path) -> dict[str, str]:
    """Identity key (``london-001``, ``canada-003f``) -> group (``face_eth``; the Canada set: white)."""
    groups: dict[str, str] = {}
    with open(source / "london_info.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            groups[f"london-{row['face_id']}"] = row["face_eth"]
    if (source / "canada_info.csv").is_file():  # "Young Adult White Faces"
        with open(source / "canada_info.csv", newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                groups[f"canada-{row['face_id']}"] = "white"
    return groups
