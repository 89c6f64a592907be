"""Upstream source files of the builders: where each lives publicly and its pinned sha256.

Every file a builder reads has one line in ``source_pins.tsv`` (path under the source root, size,
sha256), e.g. ``face-api/model/face_landmark_68_model.bin``. The path's folder maps to a public
upstream (:data:`GITHUB_FOLDERS`: a GitHub folder at a fixed commit, fetched file by file from
``raw.githubusercontent.com``; :data:`MEDIAPIPE_WHEEL`: members of a PyPI wheel, fetched with HTTP
Range requests). A local source root (``../shared``, ``$GANFIT_SOURCE_DIR``, ``--source``) has the
same layout; :data:`LOCAL_ARCHIVES` lists the archives a local root may hold instead of a folder.

Adding a source: append its files to ``source_pins.tsv`` (``sha256sum``) and, for a new upstream,
one entry to :data:`GITHUB_FOLDERS` or :data:`WHEEL_MEMBERS`.
"""

from __future__ import annotations

import functools
import hashlib
import tarfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath

from ganfit_core.assets.spec import AssetError, AssetHashError, AssetSpec
from ganfit_core.assets.verify import sha256_file


@dataclass(frozen=True)
class GitHubFolder:
    """A folder of a GitHub repository at a commit, laid out under ``local`` in a source root."""

    repo: str
    commit: str
    remote: str
    local: str
    licence: str

    def url(self, relative: str) -> str:
        """Raw download URL of file ``relative`` (path inside the folder)."""
        return f"https://raw.githubusercontent.com/{self.repo}/{self.commit}/{self.remote}/{relative}"


@dataclass(frozen=True)
class Wheel:
    """A PyPI wheel (a zip) whose members are fetched one by one with HTTP Range requests."""

    url: str
    sha256: str
    licence: str


@dataclass(frozen=True)
class SourceFile:
    """One upstream file: ``path`` under the source root, its URL (and zip ``member``), size and sha256."""

    path: str
    url: str
    sha256: str
    size: int
    member: str | None = None


ICT_COMMIT = "da5f95a607f5e6b37755b38d3385d7f2853732e5"
FACEAPI_COMMIT = "f587b44f66eae5a8fbd74f593171882378c14ddc"
WEBMORPH_COMMIT = "fa8b78fda2d659bb74ce62fcd99c4407551d2a77"

_WEBMORPH = "debruine/webmorphR.stim"
_LONDON = "CC BY 4.0 (Face Research Lab London Set, doi:10.6084/m9.figshare.5047666.v5)"
GITHUB_FOLDERS: tuple[GitHubFolder, ...] = (
    GitHubFolder("ICT-VGL/ICT-FaceKit", ICT_COMMIT, "FaceXModel", "ict-facekit/FaceXModel", "MIT"),
    GitHubFolder("vladmandic/face-api", FACEAPI_COMMIT, "model", "face-api/model", "MIT"),
    GitHubFolder(_WEBMORPH, WEBMORPH_COMMIT, "inst/neutral_front", "london-faces/neutral_front", _LONDON),
    GitHubFolder(_WEBMORPH, WEBMORPH_COMMIT, "inst/smiling_front", "london-faces/smiling_front", _LONDON),
    GitHubFolder(_WEBMORPH, WEBMORPH_COMMIT, "inst/canada", "london-faces/canada",
                 "CC BY 4.0 (Young Adult White Faces, doi:10.6084/m9.figshare.4220517)"),
)

MEDIAPIPE_WHEEL = Wheel(
    url="https://files.pythonhosted.org/packages/ad/83/56f760fecdc60de84c529d6c05c9dfc7d972617c6632bd254d5e021e5b16/"
    "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl",
    sha256="05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3",
    licence="Apache-2.0",
)
#: Local path → (wheel, member path inside it).
WHEEL_MEMBERS: dict[str, tuple[Wheel, str]] = {
    f"mediapipe/{name}.tflite": (MEDIAPIPE_WHEEL, f"mediapipe/modules/{module}/{name}.tflite")
    for module, name in (
        ("face_detection", "face_detection_short_range"),
        ("face_landmark", "face_landmark"),
        ("face_landmark", "face_landmark_with_attention"),
        ("iris_landmark", "iris_landmark"),
        ("selfie_segmentation", "selfie_segmentation"),
    )
}

#: Local folder → (archive in a local source root holding that folder's files, its sha256, the folder's
#: name inside the archive). ``../shared`` ships ICT-FaceKit's ``FaceXModel/`` this way.
LOCAL_ARCHIVES: dict[str, tuple[str, str, str]] = {
    "ict-facekit/FaceXModel": (
        "ict-facekit/FaceXModel.tar.xz",
        "2fdcf5009c8bcc58af07db3b8d5d9dcf25a4a7d1ffc9e1153648d1d42c66ead4",
        "FaceXModel",
    ),
}

PINS_FILE = "source_pins.tsv"


def _url_of(path: str) -> tuple[str, str | None]:
    if path in WHEEL_MEMBERS:
        wheel, member = WHEEL_MEMBERS[path]
        return wheel.url, member
    for folder in GITHUB_FOLDERS:
        if path.startswith(folder.local + "/"):
            return folder.url(path[len(folder.local) + 1:]), None
    raise ValueError(f"{PINS_FILE}: no upstream registered for {path!r} (see GITHUB_FOLDERS)")


@functools.lru_cache(maxsize=1)
def all_sources() -> tuple[SourceFile, ...]:
    """Every pinned upstream file, in ``source_pins.tsv`` order."""
    text = resources.files("ganfit_core.assets").joinpath(PINS_FILE).read_text(encoding="utf-8")
    files = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        path, size, sha = line.split("\t")
        url, member = _url_of(path)
        files.append(SourceFile(path, url, sha, int(size), member))
    return tuple(files)


def sources_for(spec: AssetSpec) -> list[SourceFile]:
    """The upstream files asset ``spec``'s builder reads (each prefix of ``spec.sources`` must match)."""
    files = []
    for prefix in spec.sources:
        matched = [f for f in all_sources() if f.path.startswith(prefix)]
        if not matched:
            raise AssetError(f"asset {spec.name!r}: no pinned source file matches {prefix!r} ({PINS_FILE})")
        files += matched
    return files


def sources_digest(spec: AssetSpec) -> str:
    """sha256 over the sorted ``path sha256`` lines of the asset's inputs (recorded in the provenance)."""
    lines = sorted(f"{f.path} {f.sha256}\n" for f in sources_for(spec))
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def assets_using(source: SourceFile, specs: dict[str, AssetSpec]) -> list[str]:
    """Names of the assets whose builders read ``source``."""
    return [name for name, spec in specs.items() if any(source.path.startswith(p) for p in spec.sources)]


def local_base(spec: AssetSpec, folder: Path) -> Path:
    """The source root that ``folder`` (a builder input folder from ``builder_source``) belongs to."""
    return folder.parent if spec.source_subdir and folder.name == spec.source_subdir else folder


def check_local(spec: AssetSpec, folder: Path) -> list[str]:
    """Verify the asset's inputs in a local source folder; returns the paths missing there.

    A present file (or the archive of :data:`LOCAL_ARCHIVES` standing for its folder) with the wrong
    sha256 raises :class:`AssetHashError`: a local source that differs from upstream is not used.
    """
    base = local_base(spec, folder)
    missing: list[str] = []
    archives_ok: set[str] = set()
    for source in sources_for(spec):
        path = base / source.path
        if path.is_file():
            actual = sha256_file(path)
            if actual != source.sha256:
                raise AssetHashError(f"source file {path} differs from upstream ({source.url})\n"
                                     f"  expected sha256 {source.sha256}\n  actual          {actual}\n"
                                     "  fix: restore the upstream file, or remove it to download it")
            continue
        folder_key = str(PurePosixPath(source.path).parent)
        if folder_key in LOCAL_ARCHIVES:
            archive, archive_sha, _ = LOCAL_ARCHIVES[folder_key]
            if folder_key in archives_ok:
                continue
            if (base / archive).is_file():
                actual = sha256_file(base / archive)
                if actual != archive_sha:
                    raise AssetHashError(f"source archive {base / archive} has the wrong sha256\n"
                                         f"  expected {archive_sha}\n  actual   {actual}")
                archives_ok.add(folder_key)
                continue
        missing.append(source.path)
    return missing


def read_local(base: Path, source: SourceFile) -> bytes:
    """Bytes of ``source`` from local root ``base`` (its file, or a member of its local archive)."""
    path = base / source.path
    if path.is_file():
        return path.read_bytes()
    folder_key = str(PurePosixPath(source.path).parent)
    if folder_key not in LOCAL_ARCHIVES:
        raise FileNotFoundError(path)
    archive, _, inner = LOCAL_ARCHIVES[folder_key]
    member = f"{inner}/{PurePosixPath(source.path).name}"
    with tarfile.open(base / archive) as tar:
        handle = tar.extractfile(member)
        if handle is None:
            raise FileNotFoundError(f"{base / archive}: no member {member}")
        return handle.read()
