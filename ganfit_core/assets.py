"""Asset registry: every model file ganfit needs, where it comes from, and how to check it.

Each asset is one :class:`AssetSpec` in :data:`ASSETS`. :func:`resolve` finds its file, in order:

1. **Local folder** — ``$GANFIT_WEIGHTS_DIR`` or ``<repo>/weights/``. The sha256 must match
   (a mismatch raises :class:`AssetHashError`: the file is yours, we don't overwrite it).
2. **Hugging Face** — first the local HF cache (no network), then, unless offline
   (``GANFIT_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``), one quick probe of the Hub (a few seconds at
   most) followed by ``hf_hub_download``. The download is checked against the sha256.
3. **Builder** — ``builder(source_dir, out_path)`` converts the public upstream source found under
   ``source_dir`` / ``$GANFIT_SOURCE_DIR`` / ``<repo>/../shared``, plus ``source_subdir``. It writes a
   temporary file, which is checked and then atomically renamed into the local folder (under a
   per-asset lock, so concurrent processes neither corrupt nor duplicate the work).

If every step fails, :class:`AssetError` lists each step with its outcome and the fix commands
(``python -m ganfit_core assets build --source DIR`` or ``... assets fetch``).

Adding an asset: append one ``AssetSpec(...)`` to ``_SPECS`` below. ``sha256=None`` means "not
pinned yet" (accepted with a warning; pin it before release: ``python -m ganfit_core assets list``
prints the hash of a built file).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import logging
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

#: Hugging Face repository where published ganfit assets go (placeholder organisation; it need
#: not exist: resolution falls back to building from source).
HUB_REPO = "ganfit/ganfit-assets"
HUB_REVISION = "main"
#: Seconds allowed for the single reachability probe of the Hub and for the download's ETag call.
HUB_PROBE_TIMEOUT_S = 3.0
REPO_ROOT = Path(__file__).resolve().parents[1]
FIX_BUILD = "python -m ganfit_core assets build {name} --source DIR"
FIX_FETCH = "python -m ganfit_core assets fetch {name}"


@dataclass(frozen=True)
class AssetSpec:
    """One model file.

    ``builder`` is a dotted path ``"package.module:function"``, called as
    ``fn(source_dir: Path, out_path: Path) -> None``; it must write the same bytes every time.
    ``source_subdir`` is the builder's input folder under the shared source root.
    """

    name: str
    filename: str
    sha256: str | None
    hub_repo: str = HUB_REPO
    hub_revision: str = HUB_REVISION
    builder: str | None = None
    source_subdir: str | None = None
    licence: str = ""
    description: str = ""


_SPECS: tuple[AssetSpec, ...] = (
    AssetSpec(
        name="ict_face_model",
        filename="ict_face_model.safetensors",
        sha256="7e224f5855287c080383a3b6b3fa7e5cf3b5b79d66f225bcc676864edda51532",
        builder="ganfit_core.model.ict_build:build_ict_face_model",
        source_subdir="ict-facekit",
        licence="MIT (ICT-FaceKit)",
        description="ICT-FaceKit Light morphable model: mean, 100 identity + 53 expression bases (mm), "
        "triangles, UVs, landmarks",
    ),
    AssetSpec(
        name="faceapi_recognition",
        filename="faceapi_recognition.safetensors",
        sha256="8267d3a5b87c1de9210b0901fdae6f0b0e7f70417cfa10679af0d285a547b4b5",
        builder="ganfit_core.face.faceapi_recognition:build_faceapi_recognition",
        source_subdir="face-api",
        licence="MIT (@vladmandic/face-api 1.7.15)",
        description="face-api's port of dlib's ResNet face descriptor: aligned 150x150 RGB chip -> 128-D",
    ),
    AssetSpec(
        name="arcface_r100",
        filename="arcface.onnx",
        sha256=None,  # not stated publicly; pin it from a download (`assets list` prints the hash)
        hub_repo="FoivosPar/Arc2Face",
        licence="InsightFace antelopev2 glintr100: non-commercial research only (check before use)",
        description="ArcFace R100 ONNX (261 MB), optional identity backend for online users (onnx2torch)",
    ),
    AssetSpec(
        name="faceapi_tiny_detector",
        filename="faceapi_tiny_detector.safetensors",
        sha256="ade7b2f1b19269471fb4f04b328e4418a04f41a51881ebe6c78eef7acb0dc1ee",
        builder="ganfit_core.face.faceapi_detector:build_tiny_detector",
        source_subdir="face-api",
        licence="MIT (@vladmandic/face-api 1.7.15)",
        description="face-api Tiny Face Detector (tiny-YOLOv2, separable convs, 416 px input)",
    ),
    AssetSpec(
        name="faceapi_landmark68",
        filename="faceapi_landmark68.safetensors",
        sha256="4a41a348daf4c32e06771609e584077ea88e8bb730f4a79e69ac58c7145c72b6",
        builder="ganfit_core.face.faceapi_landmarks:build_landmark68",
        source_subdir="face-api",
        licence="MIT (@vladmandic/face-api 1.7.15)",
        description="face-api 68-point landmark net (112 px face crop, iBUG 68 layout)",
    ),
    AssetSpec(
        name="texture_pca",
        filename="texture_pca.safetensors",
        sha256="22194b42fbe7b113b94ff2d44c10b60819717054b9f5f8e1d8c2c6be62b77839",
        builder="ganfit_core.pipelines.uv_extract:build_texture_pca",
        source_subdir="london-faces",
        licence="CC BY 4.0 (derived from the Face Research Lab London Set and Young Adult White Faces; "
        "attribution in the file's metadata)",
        description="PCA texture prior: mean + 64 components of 256x256 ICT UV albedo maps unwrapped from "
        "the london-faces photos, skin only (hair, background, eyes, mouth interior masked out and "
        "completed; training identities only)",
    ),
    AssetSpec(
        name="texture_gan",
        filename="texture_gan.safetensors",
        sha256=None,  # a seeded CPU run; bytes may differ across machines: pin the published file
        builder="ganfit_core.pipelines.texture_gan:build_texture_gan",
        source_subdir="london-faces",
        licence="CC BY 4.0 (trained on UV maps derived from the Face Research Lab London Set and Young "
        "Adult White Faces; attribution in the file's metadata)",
        description="GAN texture prior: the 64-component PCA of the skin-only UV maps plus a StyleGAN2-like "
        "residual generator orthogonal to it; the builder extracts the UV data set and runs "
        "`python -m ganfit_core.texture train --config full` (about 45 min on a CPU)",
    ),
)

#: The registry: asset name → spec.
ASSETS: dict[str, AssetSpec] = {spec.name: spec for spec in _SPECS}


class AssetError(RuntimeError):
    """An asset could not be found, downloaded or built; the message says what was tried."""


class AssetHashError(AssetError):
    """A file's sha256 differs from the registry's."""


@dataclass(frozen=True)
class Attempt:
    """One resolution step and what happened (for error messages and ``assets list``)."""

    step: str
    outcome: str


# ---------------------------------------------------------------------------------------------
# Locations


def get_spec(name: str) -> AssetSpec:
    """The spec of asset ``name``; ``AssetError`` listing the known names otherwise."""
    try:
        return ASSETS[name]
    except KeyError:
        raise AssetError(f"unknown asset {name!r}; known assets: {', '.join(sorted(ASSETS))}") from None


def weights_dir() -> Path:
    """``$GANFIT_WEIGHTS_DIR`` if set, else ``<repo>/weights``."""
    env = os.environ.get("GANFIT_WEIGHTS_DIR")
    return Path(env).expanduser() if env else REPO_ROOT / "weights"


def source_root(source_dir: Path | str | None = None) -> Path:
    """Root of the builders' upstream sources.

    ``source_dir`` if given, else ``$GANFIT_SOURCE_DIR``, else ``<repo>/../shared``.
    """
    if source_dir is not None:
        return Path(source_dir).expanduser()
    env = os.environ.get("GANFIT_SOURCE_DIR")
    return Path(env).expanduser() if env else REPO_ROOT.parent / "shared"


def builder_source(spec: AssetSpec, source_dir: Path | str | None = None) -> Path:
    """The builder's input folder: ``<root>/<source_subdir>``, or ``<root>`` itself if it is that folder."""
    root = source_root(source_dir)
    if not spec.source_subdir:
        return root
    if root.name == spec.source_subdir and not (root / spec.source_subdir).is_dir():
        return root
    return root / spec.source_subdir


def _offline() -> bool:
    flags = (os.environ.get("GANFIT_OFFLINE", ""), os.environ.get("HF_HUB_OFFLINE", ""))
    return any(flag.strip().lower() in {"1", "true", "yes", "on"} for flag in flags)


def _hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def _hub_cache_dir() -> Path | None:
    """The HF cache, read from the environment at call time (huggingface_hub reads it at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    return None


# ---------------------------------------------------------------------------------------------
# Hashing

_VERIFIED: dict[tuple[str, int, int], str] = {}


def sha256_file(path: Path | str) -> str:
    """Hex sha256 of a file (memoised per path, size and mtime within the process)."""
    stat = os.stat(path)
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _VERIFIED:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                digest.update(block)
        _VERIFIED[key] = digest.hexdigest()
    return _VERIFIED[key]


def verify(spec: AssetSpec, path: Path, *, fix: str) -> None:
    """Raise :class:`AssetHashError` (naming file, both hashes and ``fix``) unless ``path`` matches."""
    actual = sha256_file(path)
    if spec.sha256 is None:
        logger.warning("asset %s is not pinned (sha256=None); %s has sha256 %s", spec.name, path, actual)
        return
    if actual != spec.sha256:
        raise AssetHashError(
            f"asset {spec.name!r}: {path} has the wrong sha256\n"
            f"  expected {spec.sha256}\n  actual   {actual}\n  fix: {fix}"
        )


# ---------------------------------------------------------------------------------------------
# Steps


def _local_step(spec: AssetSpec) -> Path | None:
    path = weights_dir() / spec.filename
    if not path.is_file():
        return None
    verify(spec, path, fix=f"delete it and run `{FIX_BUILD.format(name=spec.name)} --force`")
    return path


def hub_cached(spec: AssetSpec) -> Path | None:
    """The file in the local Hugging Face cache, or None (no network)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(spec.hub_repo, spec.filename, cache_dir=_hub_cache_dir(),
                                   revision=spec.hub_revision)
    return Path(found) if isinstance(found, str) else None


def _drop_from_hub_cache(path: Path) -> None:
    """Remove a bad cached file (snapshot link and its blob) so the next resolve does not reuse it."""
    blob = path.resolve()
    for victim in (path, blob):
        with contextlib.suppress(OSError):
            victim.unlink()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def probe_hub(spec: AssetSpec, *, timeout: float = HUB_PROBE_TIMEOUT_S) -> str | None:
    """One quick HEAD request for the file; None if it is there, else why not (for messages)."""
    from huggingface_hub import get_token

    url = f"{_hub_endpoint()}/{spec.hub_repo}/resolve/{spec.hub_revision}/{spec.filename}"
    token = get_token()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, method="HEAD", headers=headers)
    opener = urllib.request.build_opener(_NoRedirect)  # a redirect (to the CDN) already means "there"
    try:
        with opener.open(request, timeout=timeout):
            return None
    except urllib.error.HTTPError as exc:
        if exc.code < 400:
            return None
        return f"not available on the Hub ({url}: HTTP {exc.code})"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"Hub unreachable ({_hub_endpoint()}: {reason})"


def _hub_step(spec: AssetSpec, attempts: list[Attempt], *, force: bool = False) -> Path | None:
    fix = f"`{FIX_FETCH.format(name=spec.name)} --force` or `{FIX_BUILD.format(name=spec.name)}`"
    cached = None if force else hub_cached(spec)
    if cached is not None:
        try:
            verify(spec, cached, fix=fix)
            return cached
        except AssetHashError as exc:
            _drop_from_hub_cache(cached)
            attempts.append(Attempt("hub cache", f"removed a corrupt cached file: {exc}"))
    else:
        where = f"{spec.hub_repo}@{spec.hub_revision}"
        attempts.append(Attempt("hub cache", f"not in the Hugging Face cache ({where})"))
    if _offline():
        attempts.append(Attempt("hub download", "skipped: offline (GANFIT_OFFLINE / HF_HUB_OFFLINE is set)"))
        return None
    problem = probe_hub(spec)
    if problem is not None:
        attempts.append(Attempt("hub download", problem))
        return None
    from huggingface_hub import hf_hub_download

    try:
        path = Path(hf_hub_download(
            spec.hub_repo, spec.filename, revision=spec.hub_revision, cache_dir=_hub_cache_dir(),
            endpoint=_hub_endpoint(), etag_timeout=HUB_PROBE_TIMEOUT_S, force_download=force,
        ))
    except Exception as exc:  # noqa: BLE001 - any client error is one failed step, reported below
        attempts.append(Attempt("hub download", f"failed: {type(exc).__name__}: {exc}".splitlines()[0]))
        return None
    try:
        verify(spec, path, fix=fix)
    except AssetHashError as exc:
        _drop_from_hub_cache(path)
        attempts.append(Attempt("hub download", f"downloaded file rejected: {exc}"))
        return None
    return path


@contextlib.contextmanager
def _asset_lock(target: Path) -> Iterator[None]:
    """Exclusive lock on ``<target>.lock`` (POSIX ``flock``; a no-op where unavailable)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: the atomic rename still protects the file
        yield
        return
    lock_path = target.with_name(f".{target.name}.lock")
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _load_builder(spec: AssetSpec) -> Callable[[Path, Path], None]:
    if not spec.builder:
        raise AssetError(f"asset {spec.name!r} has no builder")
    module_name, _, func_name = spec.builder.partition(":")
    return getattr(importlib.import_module(module_name), func_name)


def build(name: str, *, source_dir: Path | str | None = None, force: bool = False) -> Path:
    """Build asset ``name`` from its upstream source into the local folder; return its path.

    Without ``force`` an existing verified file is kept. Raises :class:`AssetError`.
    """
    spec = get_spec(name)
    source = builder_source(spec, source_dir)
    if not spec.builder:
        raise AssetError(f"asset {name!r} has no builder; get it with `{FIX_FETCH.format(name=name)}`")
    if not source.is_dir():
        wanted = spec.source_subdir or "the source"
        raise AssetError(f"asset {name!r}: source folder {source} not found; fix: "
                         f"`{FIX_BUILD.format(name=name)}` with DIR holding {wanted}")
    out_dir = weights_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / spec.filename
    with _asset_lock(target):
        if target.is_file() and not force:
            verify(spec, target, fix=f"`{FIX_BUILD.format(name=name)} --force`")
            return target
        builder = _load_builder(spec)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.filename}.", suffix=".tmp", dir=out_dir)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            logger.info("building %s from %s", name, source)
            builder(source, tmp)
            verify(spec, tmp, fix=("the builder's output differs from the registry: check the source files "
                                   f"in {source}, or update the sha256 of {name!r} in ganfit_core/assets.py"))
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    return target


def fetch(name: str, *, force: bool = False) -> Path:
    """Download asset ``name`` from the Hugging Face Hub (or its cache); raises :class:`AssetError`."""
    spec = get_spec(name)
    attempts: list[Attempt] = []
    path = _hub_step(spec, attempts, force=force)
    if path is None:
        raise AssetError(_failure_message(spec, attempts, source_dir=None))
    return path


def _failure_message(spec: AssetSpec, attempts: list[Attempt], source_dir: Path | str | None) -> str:
    lines = [f"asset {spec.name!r} ({spec.filename}) is not available. Tried:"]
    lines += [f"  {i}. {a.step}: {a.outcome}" for i, a in enumerate(attempts, 1)]
    lines.append("Fix, either:")
    if spec.builder:
        lines.append(f"  - build it from {spec.source_subdir or 'its source'} ({spec.licence}): "
                     f"`{FIX_BUILD.format(name=spec.name)}` (DIR holds {spec.source_subdir}/; "
                     f"or set GANFIT_SOURCE_DIR)")
    lines.append(f"  - download it (online): `{FIX_FETCH.format(name=spec.name)}` "
                 f"(from {spec.hub_repo}@{spec.hub_revision})")
    lines.append(f"  - or copy {spec.filename} into {weights_dir()} (or $GANFIT_WEIGHTS_DIR)")
    return "\n".join(lines)


def resolve(name: str, *, source_dir: Path | str | None = None) -> Path:
    """Path of asset ``name``'s verified file: local folder → Hugging Face → build from source.

    Raises :class:`AssetHashError` if the local file is corrupt, :class:`AssetError` (listing every
    step tried and the fix) if nothing works.
    """
    spec = get_spec(name)
    local = _local_step(spec)
    if local is not None:
        return local
    attempts = [Attempt("local folder", f"{weights_dir() / spec.filename} does not exist")]
    path = _hub_step(spec, attempts)
    if path is not None:
        return path
    if not spec.builder:
        attempts.append(Attempt("build", "this asset has no builder"))
    else:
        source = builder_source(spec, source_dir)
        if not source.is_dir():
            attempts.append(Attempt("build", f"source folder {source} not found"))
        else:
            try:
                return build(name, source_dir=source_dir)
            except Exception as exc:  # noqa: BLE001 - reported with the other steps
                attempts.append(Attempt("build", f"failed from {source}: {type(exc).__name__}: {exc}"))
    raise AssetError(_failure_message(spec, attempts, source_dir))


@dataclass(frozen=True)
class AssetStatus:
    """What ``assets list`` shows: ``status`` is verified / missing / sha mismatch / unpinned."""

    spec: AssetSpec
    status: str
    location: Path | None
    sha256: str | None


def status(name: str) -> AssetStatus:
    """Where asset ``name`` is right now (local folder, then HF cache), without network or building."""
    spec = get_spec(name)
    for path in (weights_dir() / spec.filename, hub_cached(spec)):
        if path is None or not path.is_file():
            continue
        actual = sha256_file(path)
        if spec.sha256 is None:
            return AssetStatus(spec, "unpinned", path, actual)
        return AssetStatus(spec, "verified" if actual == spec.sha256 else "sha mismatch", path, actual)
    return AssetStatus(spec, "missing", None, None)
