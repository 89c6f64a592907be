"""Where assets and their sources live on disk, read from the environment at call time."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from ganfit_core.assets.spec import HUB_REPO, REPO_ROOT, AssetSpec


def weights_dir() -> Path:
    """``$GANFIT_WEIGHTS_DIR`` if set, else ``<repo>/weights``."""
    env = os.environ.get("GANFIT_WEIGHTS_DIR")
    return Path(env).expanduser() if env else REPO_ROOT / "weights"


def source_root(source_dir: Path | str | None = None) -> Path:
    """Root of the builders' local upstream sources.

    ``source_dir`` if given, else ``$GANFIT_SOURCE_DIR``, else ``<repo>/../shared``.
    """
    if source_dir is not None:
        return Path(source_dir).expanduser()
    env = os.environ.get("GANFIT_SOURCE_DIR")
    return Path(env).expanduser() if env else REPO_ROOT.parent / "shared"


def cache_dir() -> Path:
    """Per-user cache: ``$GANFIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/ganfit``, else ``~/.cache/ganfit``."""
    if os.environ.get("GANFIT_CACHE_DIR"):
        return Path(os.environ["GANFIT_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "ganfit"


def source_cache() -> Path:
    """Where upstream source files are downloaded, laid out like a local source root."""
    return cache_dir() / "sources"


def builder_source(spec: AssetSpec, source_dir: Path | str | None = None) -> Path:
    """The builder's input folder: ``<root>/<source_subdir>``, or ``<root>`` itself if it is that folder."""
    root = source_root(source_dir)
    if not spec.source_subdir:
        return root
    if root.name == spec.source_subdir and not (root / spec.source_subdir).is_dir():
        return root
    return root / spec.source_subdir


def hub_repo(spec: AssetSpec) -> str:
    """The spec's own Hub repository, else ``$GANFIT_HUB_REPO``, else :data:`HUB_REPO`."""
    return spec.hub_repo or os.environ.get("GANFIT_HUB_REPO") or HUB_REPO


def offline() -> bool:
    """``GANFIT_OFFLINE`` or ``HF_HUB_OFFLINE`` set to a true value: no network at all."""
    flags = (os.environ.get("GANFIT_OFFLINE", ""), os.environ.get("HF_HUB_OFFLINE", ""))
    return any(flag.strip().lower() in {"1", "true", "yes", "on"} for flag in flags)


@contextlib.contextmanager
def file_lock(target: Path) -> Iterator[None]:
    """Exclusive lock on ``.<target name>.lock`` beside ``target`` (POSIX ``flock``; no-op elsewhere)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: the atomic rename still protects the file
        yield
        return
    lock_path = target.with_name(f".{target.name}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
