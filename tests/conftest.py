"""Shared fixtures: where the read-only upstream material lives, the ICT model built once, and assets
resolved once per session (a missing asset fails in CI, skips elsewhere, and is never rebuilt per test)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# tests/probe_images.py (generated probe inputs) is imported by name from the tests and bench/.
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session", autouse=True)
def _build_each_asset_once() -> Iterator[dict[tuple, str]]:
    """A build that failed is not tried again with the same settings in this session (it would fail
    the same way, minutes later): every later resolve of that asset fails at once with the first reason."""
    from ganfit_core.assets import builder_source, cache_dir, get_spec, resolver, weights_dir
    from ganfit_core.assets.locations import offline

    failures: dict[tuple, str] = {}
    original = resolver.build

    def build_once(name: str, *, source_dir: Path | str | None = None, force: bool = False,
                   progress: bool = True) -> Path:
        spec = get_spec(name)
        key = (name, str(weights_dir()), str(builder_source(spec, source_dir)), str(cache_dir()),
               os.environ.get("GANFIT_MIRROR"), offline(), force, spec)
        if key in failures:
            raise resolver.AssetError(f"{failures[key]}\n(not retried: this build already failed in this "
                                      "test session)")
        try:
            return original(name, source_dir=source_dir, force=force, progress=progress)
        except Exception as exc:
            failures[key] = f"{type(exc).__name__}: {exc}"
            raise

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(resolver, "build", build_once)
        yield failures


@pytest.fixture(scope="session")
def need_asset() -> Callable[..., Path]:
    """``need_asset(name, **resolve_kwargs)``: the asset's path; if it is unavailable the test fails
    under ``CI=true`` and is skipped elsewhere, with the registry's reason."""
    from ganfit_core.assets import AssetError, resolve

    def need(name: str, **kwargs: Any) -> Path:
        try:
            return resolve(name, **kwargs)
        except AssetError as exc:
            message = f"asset {name!r} unavailable: {exc}"
            if _in_ci():
                pytest.fail(message, pytrace=False)
            pytest.skip(message)

    return need


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """Root of the upstream sources (``$GANFIT_SOURCE_DIR`` or ``<repo>/../shared``)."""
    return Path(os.environ.get("GANFIT_SOURCE_DIR", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def faceapi_models(shared_dir: Path) -> Path:
    """The face-api detector and 68-point assets built/verified offline from ``shared_dir``; the
    face-api source folder. Skips when the face-api weights are absent; torch at most 2 threads."""
    source = shared_dir / "face-api"
    if not (source / "model" / "tiny_face_detector_model.bin").is_file():
        pytest.skip(f"face-api weights not found under {source} (set GANFIT_SOURCE_DIR)")
    import torch

    from ganfit_core.assets import resolve

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANFIT_OFFLINE", "1")
        for name in ("faceapi_tiny_detector", "faceapi_landmark68"):
            resolve(name, source_dir=shared_dir)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    return source


@pytest.fixture(scope="session")
def ict_archive(shared_dir: Path) -> Path:
    """``ict-facekit/FaceXModel.tar.xz``; skips when the ICT-FaceKit source is absent."""
    path = shared_dir / "ict-facekit" / "FaceXModel.tar.xz"
    if not path.is_file():
        pytest.skip(f"ICT-FaceKit source not found at {path} (set GANFIT_SOURCE_DIR)")
    return path


@pytest.fixture(scope="session")
def ict_model_path(need_asset: Callable[..., Path]) -> Path:
    """The verified ``ict_face_model`` file via the registry (built into weights/ on first use, from
    ../shared or upstream); fails in CI, skips elsewhere when it cannot be had."""
    return need_asset("ict_face_model")


@pytest.fixture(scope="session")
def app_module() -> Any:
    """``app.py`` from the repository root, imported once (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("app", REPO_ROOT / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["app"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def serve_app(app_module: Any) -> Callable[..., contextlib.AbstractContextManager[str]]:
    """``serve_app(output_dir, **build_demo_kwargs)``: a context manager that serves the app on a free
    127.0.0.1 port and yields its URL; the server and its output store are closed on exit."""
    from ganfit_app.ui_support import OutputStore

    @contextlib.contextmanager
    def serving(output_dir: Path, **build_demo_kwargs: Any) -> Iterator[str]:
        store = OutputStore(output_dir)
        demo = app_module.build_demo(store, **build_demo_kwargs)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
        try:
            yield f"http://127.0.0.1:{port}/"
        finally:
            demo.close()
            store.close()

    return serving


#: npm packages the browser and glTF checks use, pinned; installed into <repo>/.node (git-ignored).
NODE_PACKAGES = {"three": "0.187.0", "gltf-validator": "2.0.0-dev.3.10"}
NODE_DIR = REPO_ROOT / ".node"


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """``<repo>/.node/node_modules`` holding :data:`NODE_PACKAGES`, installed with npm on first use.

    Skips (with the reason) when node/npm are missing or the install fails, e.g. offline.
    """
    import shutil
    import subprocess

    folder = NODE_DIR / "node_modules"
    missing = [name for name in NODE_PACKAGES if not (folder / name / "package.json").is_file()]
    if shutil.which("node") is None:
        pytest.skip("node not found (apt-get install -y nodejs npm)")
    if not missing:
        return folder
    if shutil.which("npm") is None:
        pytest.skip(f"node/npm not found, cannot install {', '.join(missing)}: apt-get install -y nodejs npm")
    NODE_DIR.mkdir(exist_ok=True)
    specs = [f"{name}@{NODE_PACKAGES[name]}" for name in missing]
    command = ["npm", "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(NODE_DIR), *specs]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if done.returncode != 0 or any(not (folder / n / "package.json").is_file() for n in missing):
        pytest.skip(f"npm install {' '.join(specs)} failed: {done.stderr.strip()[-300:]}")
    return folder


@pytest.fixture(scope="session")
def ict_face_glb_inputs(ict_model_path: Path) -> Callable[..., dict]:
    """``make(identity (K,), expression (53,), texture (Ht, Wt, 3) uint8) -> dict``: the keyword
    arguments of :func:`ganfit_core.export.animated_glb.write_face_glb` for that ICT face and its eyes."""
    import numpy as np

    from ganfit_core.model.eyes import IRIS_RGB, PUPIL_RGB, SCLERA_RGB, load_eye_basis
    from ganfit_core.model.morphable import load_morphable_model

    model = load_morphable_model("face", path=ict_model_path)
    eyes = load_eye_basis(ict_model_path)
    basis = model.expression_basis.numpy()
    sides = {"Left": np.flatnonzero(eyes.mean[:, 0] > 0), "Right": np.flatnonzero(eyes.mean[:, 0] <= 0)}

    def make(identity: Any, expression: Any, texture: Any) -> dict:
        k = len(identity)
        vertices = (model.mean.numpy() + np.tensordot(identity, model.identity_basis[:k].numpy(), 1)
                    + np.tensordot(expression, basis, 1))
        eye_vertices = (eyes.mean + np.tensordot(identity, eyes.identity_basis[:k], 1)
                        + np.tensordot(expression, eyes.expression_basis, 1))
        return dict(vertices=vertices, faces=model.faces.numpy(), uvs=model.uvs.numpy(),
                    uv_faces=model.uv_faces.numpy(), texture=texture, deltas=basis,
                    names=list(model.expression_names), weights=np.asarray(expression, np.float32),
                    eye_vertices=eye_vertices, eye_sides=sides,
                    eye_parts=(("sclera", eyes.sclera, SCLERA_RGB), ("iris", eyes.iris, IRIS_RGB),
                               ("pupil", eyes.pupil, PUPIL_RGB)))

    return make
