"""Shared fixtures: where the read-only upstream material lives, and the ICT model built once."""

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


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """Root of the upstream sources (``$GANFIT_SOURCE_DIR`` or ``<repo>/../shared``)."""
    return Path(os.environ.get("GANFIT_SOURCE_DIR", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def ict_archive(shared_dir: Path) -> Path:
    """``ict-facekit/FaceXModel.tar.xz``; skips when the ICT-FaceKit source is absent."""
    path = shared_dir / "ict-facekit" / "FaceXModel.tar.xz"
    if not path.is_file():
        pytest.skip(f"ICT-FaceKit source not found at {path} (set GANFIT_SOURCE_DIR)")
    return path


@pytest.fixture(scope="session")
def ict_model_path(ict_archive: Path) -> Iterator[Path]:
    """The verified ``ict_face_model`` file via the registry (built into weights/ on first use)."""
    from ganfit_core.assets import resolve

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANFIT_OFFLINE", "1")
        yield resolve("ict_face_model", source_dir=ict_archive.parent.parent)


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
