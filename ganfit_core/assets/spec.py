"""The registry's types: one :class:`AssetSpec` per model file, the errors, and the shared constants."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: Hugging Face repository for published ganfit assets. No public repository exists yet: this name
#: is a placeholder (``$GANFIT_HUB_REPO`` overrides it); resolution then builds from upstream.
HUB_REPO = "ganfit/ganfit-assets"
HUB_REVISION = "main"
#: File in the Hub repository listing every published file's sha256, size and provenance.
HUB_MANIFEST = "manifest.json"
REPO_ROOT = Path(__file__).resolve().parents[2]
FIX_BUILD = "python -m ganfit_core assets build {name} --source DIR"
FIX_FETCH = "python -m ganfit_core assets fetch {name}"


@dataclass(frozen=True)
class AssetSpec:
    """One model file.

    Attributes:
        name: registry key.
        filename: file name in the weights folder and on the Hub.
        sha256: byte pin, for files used as downloaded (no builder). ``None`` for built files
            (they are checked by provenance + content fingerprint, see :mod:`.verify`) or for a
            download not pinned yet (accepted with a warning).
        hub_repo: Hub repository; ``None`` means ``$GANFIT_HUB_REPO`` or :data:`HUB_REPO`.
        builder: ``"package.module:function"``, called as ``fn(source_dir: Path, out_path: Path)``,
            writing a safetensors file.
        builder_version: bump it whenever the builder's output changes on purpose; recorded in the
            file's provenance and required to match.
        source_subdir: the builder's input folder under the source root (``source_dir`` passed in).
        sources: the upstream files the builder reads, as path prefixes under the source root
            (entries of ``source_pins.tsv``, e.g. ``"face-api/model/tiny_face_detector"``).
        requires: other assets the builder resolves itself (built first when building from upstream).
        tolerance: relative tolerance of the content fingerprint check (float tensors).
        on_demand: built only when asked for by name (``assets build NAME``), never by
            :func:`resolve` or a plain ``assets build``: its builder is slow (texture_gan trains for
            about 45 minutes).
        exact_integers: integer tensors must be byte-equal (False: compared by their statistics
            within ``tolerance``, for indices a float pipeline chooses).
        accept_sha256: byte hashes of known-good files written before provenance existed (still
            accepted, so existing weights folders keep working).
    """

    name: str
    filename: str
    sha256: str | None
    hub_repo: str | None = None
    hub_revision: str = HUB_REVISION
    builder: str | None = None
    builder_version: int = 1
    source_subdir: str | None = None
    sources: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    tolerance: float = 1e-3
    exact_integers: bool = True
    on_demand: bool = False
    accept_sha256: tuple[str, ...] = ()
    licence: str = ""
    description: str = ""


class AssetError(RuntimeError):
    """An asset could not be found, downloaded or built; the message says what was tried."""


class AssetHashError(AssetError):
    """A file's sha256, provenance or content differs from the registry's."""


class SourceUnavailable(AssetError):
    """An upstream source file could not be downloaded (offline, unreachable, wrong bytes)."""


@dataclass(frozen=True)
class Attempt:
    """One resolution step and what happened (for error messages and ``assets list``)."""

    step: str
    outcome: str
