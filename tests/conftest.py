"""Shared fixtures: where the read-only upstream material lives, and the ICT model built once."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

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
