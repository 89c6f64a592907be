"""Checking asset files: byte pins for downloads, provenance + content fingerprint for built files.

A file used as downloaded (Hub, upstream) has one right byte string: its sha256 is pinned. A built
file comes out of a float pipeline whose last bits depend on library versions and the CPU, so its
bytes are not portable. Instead each built safetensors file carries a **provenance** record in its
metadata (key :data:`PROVENANCE_KEY`: asset, builder and its version, the digest of the pinned
upstream inputs, package versions, machine) and its tensors must match a **fingerprint** kept in
the package (``fingerprints/<asset>.json``): per tensor the same shape and dtype, and

- integer/bool tensors: the same bytes (sha256 of the tensor's data), unless the asset's spec sets
  ``exact_integers=False`` (indices chosen by a float pipeline, e.g. the nearest triangle): then their
  mean, mean |x| and L2 norm within the tolerance, like float tensors;
- float tensors: mean, mean of absolute values and L2 norm (all in float64) within
  ``|a - b| <= tol * (|b| + rms)``, ``rms`` being the reference tensor's root-mean-square value
  and ``tol`` the spec's ``tolerance``.

``python -m ganfit_core assets pin NAME`` writes the fingerprint of a built file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import struct
import sys
from importlib import metadata as importlib_metadata
from importlib import resources
from pathlib import Path

import numpy as np

from ganfit_core.assets.spec import AssetHashError, AssetSpec

logger = logging.getLogger(__name__)

#: safetensors metadata key holding the provenance JSON of a built file.
PROVENANCE_KEY = "ganfit_provenance"
#: Packages whose versions can move a builder's output (recorded in the provenance).
PROVENANCE_PACKAGES = ("numpy", "torch", "pillow", "scipy", "safetensors")
FINGERPRINT_FORMAT = 1
_FINGERPRINT_CHUNK = 1 << 22  # elements per float64 block while fingerprinting

_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
    "I16": np.int16, "I8": np.int8, "U8": np.uint8, "U16": np.uint16, "U32": np.uint32, "U64": np.uint64,
    "BOOL": np.bool_, "BF16": np.uint16,
}
_SHA_CACHE: dict[tuple[str, int, int], str] = {}
_OK_CACHE: set[tuple[str, int, int, str]] = set()


def _stat_key(path: Path | str) -> tuple[str, int, int]:
    stat = os.stat(path)
    return str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns


def sha256_file(path: Path | str) -> str:
    """Hex sha256 of a file (memoised per path, size and mtime within the process)."""
    key = _stat_key(path)
    if key not in _SHA_CACHE:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                digest.update(block)
        _SHA_CACHE[key] = digest.hexdigest()
    return _SHA_CACHE[key]


# ---------------------------------------------------------------------------------------------
# safetensors header


def read_header(path: Path | str) -> tuple[dict, int]:
    """(header JSON, byte offset of the data section) of a safetensors file; ``ValueError`` if not one."""
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise ValueError(f"{path}: not a safetensors file (too short)")
        (length,) = struct.unpack("<Q", raw)
        if length > 100_000_000:
            raise ValueError(f"{path}: not a safetensors file (header length {length})")
        try:
            header = json.loads(f.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: not a safetensors file ({exc})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: not a safetensors file (header is not an object)")
    return header, 8 + length


def read_metadata(path: Path | str) -> dict[str, str]:
    """The ``__metadata__`` map of a safetensors file (empty if none)."""
    header, _ = read_header(path)
    return dict(header.get("__metadata__") or {})


def write_with_metadata(src: Path, dst: Path, extra: dict[str, str]) -> None:
    """Copy safetensors ``src`` to ``dst`` with ``extra`` added to its metadata (tensor bytes unchanged).

    The header is written with sorted keys and padded with spaces to a multiple of 8 bytes, so the
    output bytes depend only on the input and ``extra``.
    """
    header, data_start = read_header(src)
    meta = dict(header.pop("__metadata__", None) or {})
    meta.update(extra)
    ordered = {"__metadata__": dict(sorted(meta.items())), **dict(sorted(header.items()))}
    text = json.dumps(ordered, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        fout.write(struct.pack("<Q", len(text)))
        fout.write(text)
        fin.seek(data_start)
        while block := fin.read(1 << 22):
            fout.write(block)


# ---------------------------------------------------------------------------------------------
# Provenance


def package_versions() -> dict[str, str]:
    """Versions of :data:`PROVENANCE_PACKAGES`, Python, and Pillow's JPEG library (decoding moves pixels)."""
    versions = {"python": platform.python_version()}
    for name in PROVENANCE_PACKAGES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = "absent"
    try:
        from PIL import features

        versions["libjpeg_turbo"] = str(features.version("libjpeg_turbo"))
    except Exception:  # noqa: BLE001 - informational only
        versions["libjpeg_turbo"] = "unknown"
    return versions


def make_provenance(spec: AssetSpec, sources_sha256: str, inputs: str,
                    requires: dict[str, str] | None = None) -> dict:
    """The provenance record of a build of ``spec`` (no timestamp: same inputs, same record)."""
    return {
        "asset": spec.name,
        "builder": spec.builder,
        "builder_version": spec.builder_version,
        "sources_sha256": sources_sha256,
        "inputs": inputs,
        "requires": dict(sorted((requires or {}).items())),
        "packages": package_versions(),
        "machine": f"{platform.system()}-{platform.machine()}",
        "byteorder": sys.byteorder,
    }


def read_provenance(path: Path | str) -> dict | None:
    """The provenance record of a built file, or None if it has none."""
    text = read_metadata(path).get(PROVENANCE_KEY)
    return json.loads(text) if text else None


# ---------------------------------------------------------------------------------------------
# Fingerprints


def _tensors(path: Path) -> dict[str, np.ndarray]:
    header, start = read_header(path)
    data = np.memmap(path, dtype=np.uint8, mode="r")
    out: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {info['dtype']}")
        array = data[start + begin:start + end].view(dtype).reshape(info["shape"])
        if info["dtype"] == "BF16":
            array = (array.astype(np.uint32) << 16).view(np.float32)
        out[name] = array
    return out


def fingerprint(path: Path | str) -> dict[str, dict]:
    """Per-tensor fingerprint of a safetensors file (see the module docstring)."""
    header, _ = read_header(path)
    result: dict[str, dict] = {}
    for name, array in sorted(_tensors(Path(path)).items()):
        entry: dict = {"dtype": header[name]["dtype"], "shape": list(array.shape)}
        if not np.issubdtype(array.dtype, np.floating):
            entry["sha256"] = hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()
        if array.dtype != np.bool_:
            flat = array.reshape(-1)
            total = absolute = squares = 0.0
            for start in range(0, flat.size, _FINGERPRINT_CHUNK):  # float64 sums, bounded memory
                x = flat[start:start + _FINGERPRINT_CHUNK].astype(np.float64)
                total += float(x.sum())
                absolute += float(np.abs(x).sum())
                squares += float(np.dot(x, x))
            n = max(flat.size, 1)
            entry.update(mean=total / n, absmean=absolute / n, l2=float(np.sqrt(squares)),
                         rms=float(np.sqrt(squares / n)))
        result[name] = entry
    return result


def compare_fingerprints(actual: dict[str, dict], expected: dict[str, dict], tol: float, *,
                         exact_integers: bool = True) -> list[str]:
    """Differences between two fingerprints (empty list: they match within ``tol``).

    Integer tensors must be byte-equal unless ``exact_integers`` is False; then (and for float
    tensors) their statistics must agree within ``tol``.
    """
    problems = []
    if sorted(actual) != sorted(expected):
        missing = sorted(set(expected) - set(actual))
        extra = sorted(set(actual) - set(expected))
        problems.append(f"tensor names differ (missing {missing[:5]}, unexpected {extra[:5]})")
    for name in sorted(set(actual) & set(expected)):
        a, e = actual[name], expected[name]
        if a["dtype"] != e["dtype"] or a["shape"] != e["shape"]:
            problems.append(f"{name}: {a['dtype']}{a['shape']} instead of {e['dtype']}{e['shape']}")
            continue
        if "sha256" in e and (exact_integers or "mean" not in e):
            if a.get("sha256") != e["sha256"]:
                problems.append(f"{name}: integer data differs")
            continue
        for stat in ("mean", "absmean", "l2"):
            if abs(a[stat] - e[stat]) > tol * (abs(e[stat]) + e["rms"]):
                problems.append(f"{name}: {stat} {a[stat]:.6g} instead of {e[stat]:.6g} (tolerance {tol:g})")
    return problems


def fingerprint_path(name: str) -> Path:
    """The package file holding asset ``name``'s reference fingerprint."""
    return Path(str(resources.files("ganfit_core.assets").joinpath("fingerprints", f"{name}.json")))


def reference_fingerprint(name: str) -> dict | None:
    """The reference fingerprint record of asset ``name``, or None if not pinned yet."""
    path = fingerprint_path(name)
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def write_reference_fingerprint(spec: AssetSpec, path: Path, sources_sha256: str) -> Path:
    """Pin asset ``spec``'s content: write ``fingerprints/<name>.json`` from the built file ``path``."""
    out = fingerprint_path(spec.name)
    record = {"format": FINGERPRINT_FORMAT, "asset": spec.name, "builder_version": spec.builder_version,
              "sources_sha256": sources_sha256, "tensors": fingerprint(path)}
    out.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return out


# ---------------------------------------------------------------------------------------------
# The check


def verify_built(spec: AssetSpec, path: Path, sources_sha256: str) -> list[str]:
    """Problems with built file ``path`` for ``spec`` (empty: accepted). See the module docstring."""
    try:
        prov = read_provenance(path)
    except (ValueError, OSError) as exc:
        return [str(exc)]
    if prov is None:
        return ["no provenance record in its metadata (built by an older ganfit, or not built by ganfit)"]
    problems = []
    if prov.get("asset") != spec.name:
        problems.append(f"provenance names asset {prov.get('asset')!r}")
    if prov.get("builder_version") != spec.builder_version:
        problems.append(f"builder version {prov.get('builder_version')} instead of {spec.builder_version}")
    if prov.get("sources_sha256") != sources_sha256:
        problems.append(f"built from other sources (digest {str(prov.get('sources_sha256'))[:12]}... "
                        f"instead of {sources_sha256[:12]}...)")
    reference = reference_fingerprint(spec.name)
    if reference is None:
        logger.warning("asset %s has no reference fingerprint yet (pin it: python -m ganfit_core assets "
                       "pin %s); accepting %s on its provenance", spec.name, spec.name, path)
        return problems
    try:
        problems += compare_fingerprints(fingerprint(path), reference["tensors"], spec.tolerance,
                                         exact_integers=spec.exact_integers)
    except (ValueError, OSError, KeyError) as exc:
        problems.append(f"unreadable tensors: {exc}")
    return problems


def check_marker(path: Path) -> Path:
    """Where a passed content check of ``path`` is remembered: ``<cache>/verified/<file>-<path digest>``."""
    from ganfit_core.assets.locations import cache_dir

    digest = hashlib.sha256(str(Path(path).absolute()).encode()).hexdigest()[:16]
    return cache_dir() / "verified" / f"{Path(path).name}-{digest}.json"


def _check_key(spec: AssetSpec, sources_sha256: str) -> str:
    """Digest of everything a content check depends on (a changed pin or tolerance re-checks)."""
    path = fingerprint_path(spec.name)
    reference = path.read_bytes() if path.is_file() else b""
    text = f"{spec.name} {spec.builder_version} {spec.tolerance} {sources_sha256} ".encode() + reference
    return hashlib.sha256(text).hexdigest()


def verify(spec: AssetSpec, path: Path, *, fix: str, sources_sha256: str | None = None,
           remember: bool = True) -> None:
    """Raise :class:`AssetHashError` (naming the file, what differs and ``fix``) unless ``path`` is good.

    Byte pin (``spec.sha256``) for downloaded files; a known-good legacy hash (``accept_sha256``),
    or provenance + fingerprint (``sources_sha256`` is the expected input digest) for built files.
    A passed content check is remembered in the per-user cache (:func:`check_marker`, keyed by the
    file's sha256 and the check's inputs), so later starts cost one sha256.
    """
    key = (*_stat_key(path), spec.name)
    if key in _OK_CACHE:
        return
    actual = sha256_file(path)
    if spec.sha256 is not None:
        if actual != spec.sha256:
            raise AssetHashError(f"asset {spec.name!r}: {path} has the wrong sha256\n"
                                 f"  expected {spec.sha256}\n  actual   {actual}\n  fix: {fix}")
    elif spec.builder is not None and actual not in spec.accept_sha256:
        if sources_sha256 is None:
            from ganfit_core.assets.sources import sources_digest

            sources_sha256 = sources_digest(spec)
        marker = check_marker(path)
        stamp = json.dumps({"sha256": actual, "check": _check_key(spec, sources_sha256)}, sort_keys=True)
        if not (marker.is_file() and marker.read_text(encoding="utf-8") == stamp):
            problems = verify_built(spec, path, sources_sha256)
            if problems:
                details = "\n".join(f"  - {p}" for p in problems[:8])
                raise AssetHashError(f"asset {spec.name!r}: {path} failed the content check (sha256 "
                                     f"{actual})\n{details}\n  fix: {fix}")
            if remember and reference_fingerprint(spec.name) is not None:
                with contextlib.suppress(OSError):  # an unwritable cache just means checking again
                    marker.parent.mkdir(parents=True, exist_ok=True)
                    marker.write_text(stamp, encoding="utf-8")
    elif spec.builder is None:
        logger.warning("asset %s is not pinned (sha256=None); %s has sha256 %s", spec.name, path, actual)
    _OK_CACHE.add(key)
