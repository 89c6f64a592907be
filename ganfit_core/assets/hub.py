"""The Hugging Face Hub: cached lookup, one quick probe, verified download, and ``publish``.

A published repository holds the asset files and :data:`HUB_MANIFEST` (JSON: per file its sha256,
size and provenance). A download of a built asset is checked against the manifest's sha256 (a byte
pin for this exact upload) and then by the registry's content check.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from ganfit_core.assets.locations import hub_repo, offline
from ganfit_core.assets.spec import (
    FIX_BUILD,
    FIX_FETCH,
    HUB_MANIFEST,
    AssetError,
    AssetHashError,
    AssetSpec,
    Attempt,
)
from ganfit_core.assets.verify import read_provenance, sha256_file, verify

#: Seconds allowed for the single reachability probe of the Hub and for the download's ETag call.
HUB_PROBE_TIMEOUT_S = 3.0


def hub_endpoint() -> str:
    """``$HF_ENDPOINT`` or https://huggingface.co."""
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def hub_cache_dir() -> Path | None:
    """The HF cache, read from the environment at call time (huggingface_hub reads it at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    return None


def hub_cached(spec: AssetSpec, filename: str | None = None) -> Path | None:
    """The file (default: the asset's) in the local Hugging Face cache, or None (no network)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(hub_repo(spec), filename or spec.filename, cache_dir=hub_cache_dir(),
                                   revision=spec.hub_revision)
    return Path(found) if isinstance(found, str) else None


def drop_from_hub_cache(path: Path) -> None:
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

    url = f"{hub_endpoint()}/{hub_repo(spec)}/resolve/{spec.hub_revision}/{spec.filename}"
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
        return f"Hub unreachable ({hub_endpoint()}: {reason})"


def _download(spec: AssetSpec, filename: str, force: bool) -> Path:
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(
        hub_repo(spec), filename, revision=spec.hub_revision, cache_dir=hub_cache_dir(),
        endpoint=hub_endpoint(), etag_timeout=HUB_PROBE_TIMEOUT_S, force_download=force,
    ))


def _check_manifest(spec: AssetSpec, path: Path, force: bool) -> None:
    """Built assets: the file's sha256 must be the one the repository's manifest lists."""
    if spec.sha256 is not None or spec.builder is None:
        return
    manifest = json.loads(_download(spec, HUB_MANIFEST, force).read_text(encoding="utf-8"))
    entry = manifest.get("files", {}).get(spec.filename)
    if entry is None:
        raise AssetHashError(f"asset {spec.name!r}: {spec.filename} is not listed in {HUB_MANIFEST}")
    actual = sha256_file(path)
    if actual != entry["sha256"]:
        raise AssetHashError(f"asset {spec.name!r}: {path} has the wrong sha256 for the Hub manifest\n"
                             f"  expected {entry['sha256']}\n  actual   {actual}")


def hub_step(spec: AssetSpec, attempts: list[Attempt], *, force: bool = False) -> Path | None:
    """The asset from the HF cache or the Hub, verified; None (with ``attempts`` noted) otherwise."""
    fix = f"`{FIX_FETCH.format(name=spec.name)} --force` or `{FIX_BUILD.format(name=spec.name)}`"
    where = f"{hub_repo(spec)}@{spec.hub_revision}"
    cached = None if force else hub_cached(spec)
    if cached is not None:
        try:
            verify(spec, cached, fix=fix)
            return cached
        except AssetHashError as exc:
            drop_from_hub_cache(cached)
            attempts.append(Attempt("hub cache", f"removed a corrupt cached file: {exc}"))
    else:
        attempts.append(Attempt("hub cache", f"not in the Hugging Face cache ({where})"))
    if offline():
        attempts.append(Attempt("hub download", "skipped: offline (GANFIT_OFFLINE / HF_HUB_OFFLINE is set)"))
        return None
    problem = probe_hub(spec)
    if problem is not None:
        attempts.append(Attempt("hub download", problem))
        return None
    try:
        path = _download(spec, spec.filename, force)
    except Exception as exc:  # noqa: BLE001 - any client error is one failed step, reported below
        attempts.append(Attempt("hub download", f"failed: {type(exc).__name__}: {exc}".splitlines()[0]))
        return None
    try:
        _check_manifest(spec, path, force)
        verify(spec, path, fix=fix)
    except (AssetError, OSError, ValueError) as exc:
        drop_from_hub_cache(path)
        attempts.append(Attempt("hub download", f"downloaded file rejected: {exc}"))
        return None
    except Exception as exc:  # noqa: BLE001 - e.g. the manifest could not be downloaded
        drop_from_hub_cache(path)
        attempts.append(Attempt("hub download", f"manifest check failed: {type(exc).__name__}: {exc}"))
        return None
    return path


def build_manifest(files: Sequence[tuple[AssetSpec, Path]]) -> dict:
    """The Hub manifest for ``files``: per file name its asset, sha256, size and provenance."""
    entries = {}
    for spec, path in files:
        try:
            provenance = read_provenance(path)
        except ValueError:  # not a safetensors file (e.g. an ONNX download): no provenance
            provenance = None
        entries[spec.filename] = {"asset": spec.name, "sha256": sha256_file(path),
                                  "size": path.stat().st_size, "provenance": provenance}
    return {"format": 1, "files": dict(sorted(entries.items()))}


def publish(repo: str, files: Sequence[tuple[AssetSpec, Path]], *, token: str | None = None,
            private: bool = False) -> str:
    """Upload ``files`` and their manifest to Hub model repository ``repo`` in one commit; returns its URL.

    Needs write access (``huggingface-cli login`` or ``HF_TOKEN``); creates the repository if absent.
    """
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(endpoint=hub_endpoint(), token=token)
    api.create_repo(repo, repo_type="model", exist_ok=True, private=private)
    manifest = json.dumps(build_manifest(files), indent=1, sort_keys=True).encode()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / HUB_MANIFEST).write_bytes(manifest)
        operations = [CommitOperationAdd(path_in_repo=spec.filename, path_or_fileobj=str(path))
                      for spec, path in files]
        operations.append(CommitOperationAdd(path_in_repo=HUB_MANIFEST,
                                             path_or_fileobj=str(Path(tmp) / HUB_MANIFEST)))
        info = api.create_commit(repo, operations, commit_message=f"ganfit assets: {len(files)} file(s)",
                                 repo_type="model")
    return str(getattr(info, "commit_url", "") or f"{hub_endpoint()}/{repo}")
