"""Finding an asset's file: local folder → Hugging Face → build (from local sources or upstream)."""

from __future__ import annotations

import importlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ganfit_core.assets.download import ensure_files
from ganfit_core.assets.hub import hub_cached, hub_step
from ganfit_core.assets.locations import builder_source, file_lock, hub_repo, source_cache, weights_dir
from ganfit_core.assets.sources import check_local, sources_digest, sources_for
from ganfit_core.assets.spec import FIX_BUILD, FIX_FETCH, AssetError, AssetHashError, AssetSpec, Attempt
from ganfit_core.assets.table import ASSETS
from ganfit_core.assets.verify import (
    PROVENANCE_KEY,
    make_provenance,
    sha256_file,
    verify,
    write_with_metadata,
)

logger = logging.getLogger(__name__)
UPSTREAM_NOTE = "; without DIR the sources are downloaded from upstream (online, or GANFIT_MIRROR)"


def get_spec(name: str) -> AssetSpec:
    """The spec of asset ``name``; ``AssetError`` listing the known names otherwise."""
    try:
        return ASSETS[name]
    except KeyError:
        raise AssetError(f"unknown asset {name!r}; known assets: {', '.join(sorted(ASSETS))}") from None


def _local_step(spec: AssetSpec) -> Path | None:
    path = weights_dir() / spec.filename
    if not path.is_file():
        return None
    verify(spec, path, fix=f"delete it and run `{FIX_BUILD.format(name=spec.name)} --force`")
    return path


def _load_builder(spec: AssetSpec) -> Callable[[Path, Path], None]:
    if not spec.builder:
        raise AssetError(f"asset {spec.name!r} has no builder")
    module_name, _, func_name = spec.builder.partition(":")
    return getattr(importlib.import_module(module_name), func_name)


def builder_input(spec: AssetSpec, source_dir: Path | str | None = None, *,
                  progress: bool = True) -> tuple[Path, str]:
    """(input folder, "local" or "upstream") for the asset's builder.

    A local source folder is used when it holds every pinned input (each checked by sha256);
    otherwise the inputs are downloaded from upstream into the per-user cache (or found there).
    """
    folder = builder_source(spec, source_dir)
    if not spec.sources and not spec.source_subdir and spec.requires:
        return folder, "derived"  # built only from other assets, which resolve themselves
    if folder.is_dir():
        missing = check_local(spec, folder) if spec.sources else []
        if not missing:
            return folder, "local"
        reason = f"{len(missing)} input file(s) missing in {folder} (e.g. {missing[0]})"
    else:
        reason = f"source folder {folder} not found"
    if not spec.sources:
        raise AssetError(f"asset {spec.name!r}: {reason}; fix: `{FIX_BUILD.format(name=spec.name)}` "
                         f"with DIR holding {spec.source_subdir or 'the source'}")
    logger.info("asset %s: %s; using upstream sources (cache %s)", spec.name, reason, source_cache())
    ensure_files(sources_for(spec), source_cache(), progress=progress, desc=f"{spec.name} sources")
    return builder_source(spec, source_cache()), "upstream"


def build(name: str, *, source_dir: Path | str | None = None, force: bool = False,
          progress: bool = True) -> Path:
    """Build asset ``name`` into the local folder from local or upstream sources; return its path.

    Without ``force`` an existing verified file is kept. Raises :class:`AssetError`.
    """
    spec = get_spec(name)
    if not spec.builder:
        raise AssetError(f"asset {name!r} has no builder; get it with `{FIX_FETCH.format(name=name)}`")
    out_dir = weights_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / spec.filename
    with file_lock(target):
        if target.is_file() and not force:
            verify(spec, target, fix=f"`{FIX_BUILD.format(name=name)} --force`")
            return target
        source, inputs = builder_input(spec, source_dir, progress=progress)
        required = {req: sha256_file(resolve(req, source_dir=source_dir)) for req in spec.requires}
        builder = _load_builder(spec)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.filename}.", suffix=".tmp", dir=out_dir)
        os.close(fd)
        tmp = Path(tmp_name)
        final = tmp.with_name(tmp.name + ".final")
        try:
            logger.info("building %s from %s", name, source)
            builder(source, tmp)
            if spec.sha256 is None:
                digest = sources_digest(spec)
                provenance = make_provenance(spec, digest, inputs, required)
                write_with_metadata(tmp, final, {PROVENANCE_KEY: json.dumps(provenance, sort_keys=True)})
            else:
                os.replace(tmp, final)
            verify(spec, final, remember=False,
                   fix=("the builder's output differs from the registry: check the source files "
                        f"in {source}, or re-pin {name!r} (`python -m ganfit_core assets pin "
                        f"{name}` for a built file, sha256 in ganfit_core/assets/table.py)"))
            os.chmod(final, 0o644)
            os.replace(final, target)
        finally:
            tmp.unlink(missing_ok=True)
            final.unlink(missing_ok=True)
    return target


def fetch(name: str, *, force: bool = False) -> Path:
    """Download asset ``name`` from the Hugging Face Hub (or its cache); raises :class:`AssetError`."""
    spec = get_spec(name)
    attempts: list[Attempt] = []
    path = hub_step(spec, attempts, force=force)
    if path is None:
        raise AssetError(_failure_message(spec, attempts))
    return path


def _failure_message(spec: AssetSpec, attempts: list[Attempt]) -> str:
    lines = [f"asset {spec.name!r} ({spec.filename}) is not available. Tried:"]
    lines += [f"  {i}. {a.step}: {a.outcome}" for i, a in enumerate(attempts, 1)]
    lines.append("Fix, either:")
    if spec.builder:
        lines.append(f"  - build it from {spec.source_subdir or 'its source'} ({spec.licence}): "
                     f"`{FIX_BUILD.format(name=spec.name)}` (DIR holds {spec.source_subdir}/; "
                     "or set GANFIT_SOURCE_DIR)" + (UPSTREAM_NOTE if spec.sources else ""))
    lines.append(f"  - download it (online): `{FIX_FETCH.format(name=spec.name)}` "
                 f"(from {hub_repo(spec)}@{spec.hub_revision})")
    lines.append(f"  - or copy {spec.filename} into {weights_dir()} (or $GANFIT_WEIGHTS_DIR)")
    return "\n".join(lines)


def resolve(name: str, *, source_dir: Path | str | None = None) -> Path:
    """Path of asset ``name``'s verified file: local folder → Hugging Face → build.

    The build uses the local source folder when it holds the inputs, else downloads them from
    upstream. Raises :class:`AssetHashError` if the local file is corrupt, :class:`AssetError`
    (listing every step tried and the fix) if nothing works.
    """
    spec = get_spec(name)
    local = _local_step(spec)
    if local is not None:
        return local
    attempts = [Attempt("local folder", f"{weights_dir() / spec.filename} does not exist")]
    path = hub_step(spec, attempts)
    if path is not None:
        return path
    if not spec.builder:
        attempts.append(Attempt("build", "this asset has no builder"))
    elif spec.on_demand:
        attempts.append(Attempt("build", "not started automatically (a slow build): run "
                                f"`{FIX_BUILD.format(name=spec.name)}` once"))
    else:
        try:
            return build(name, source_dir=source_dir)
        except Exception as exc:  # noqa: BLE001 - reported with the other steps
            attempts.append(Attempt("build", f"failed: {type(exc).__name__}: {exc}"))
    raise AssetError(_failure_message(spec, attempts))


@dataclass(frozen=True)
class AssetStatus:
    """What ``assets list`` shows: ``status`` is verified / missing / sha mismatch / content mismatch /
    unpinned."""

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
        if spec.sha256 is None and spec.builder is None:
            return AssetStatus(spec, "unpinned", path, actual)
        try:
            verify(spec, path, fix="")
        except AssetHashError:
            return AssetStatus(spec, "sha mismatch" if spec.sha256 else "content mismatch", path, actual)
        return AssetStatus(spec, "verified", path, actual)
    return AssetStatus(spec, "missing", None, None)
