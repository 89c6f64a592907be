"""Reader for TensorFlow.js ``*-weights_manifest.json`` + ``.bin`` weight files.

A manifest is a JSON list of groups; each group names its shard files
(``paths``, concatenated in order) and its tensors (``name``, ``shape``,
``dtype``, optional ``quantization`` with ``dtype`` uint8/uint16/float16 and
``scale``/``min``).  Quantised values are dequantised as ``q * scale + min``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["TfjsFormatError", "load_tfjs_weights"]

_PLAIN_DTYPES: dict[str, np.dtype] = {
    "float32": np.dtype("<f4"),
    "int32": np.dtype("<i4"),
    "uint8": np.dtype("u1"),
    "bool": np.dtype("u1"),
}
_QUANT_DTYPES: dict[str, np.dtype] = {
    "uint8": np.dtype("u1"),
    "uint16": np.dtype("<u2"),
    "float16": np.dtype("<f2"),
}


class TfjsFormatError(ValueError):
    """The manifest or its weight shards are malformed."""


def _decode(entry: dict, buffer: bytes, offset: int) -> tuple[np.ndarray, int]:
    """Decode one manifest entry starting at ``offset``; return (array, new offset)."""
    name = entry.get("name", "?")
    shape = tuple(int(s) for s in entry.get("shape", []))
    count = int(np.prod(shape)) if shape else 1
    quant = entry.get("quantization")
    if quant is not None:
        qdtype = _QUANT_DTYPES.get(quant.get("dtype", ""))
        if qdtype is None:
            raise TfjsFormatError(f"{name}: unsupported quantisation dtype {quant.get('dtype')!r}")
        stored = qdtype
    else:
        stored = _PLAIN_DTYPES.get(entry.get("dtype", ""))
        if stored is None:
            raise TfjsFormatError(f"{name}: unsupported dtype {entry.get('dtype')!r}")
    nbytes = count * stored.itemsize
    if offset + nbytes > len(buffer):
        raise TfjsFormatError(
            f"{name}: needs bytes {offset}..{offset + nbytes}, but the shards hold {len(buffer)}"
        )
    raw = np.frombuffer(buffer, dtype=stored, count=count, offset=offset)
    if quant is None:
        values = raw.astype(np.float32 if entry["dtype"] == "float32" else raw.dtype, copy=True)
    elif quant["dtype"] == "float16":
        values = raw.astype(np.float32)
    else:
        values = (raw.astype(np.float64) * float(quant["scale"]) + float(quant["min"])).astype(np.float32)
    return values.reshape(shape), offset + nbytes


def load_tfjs_weights(manifest_path: str | Path) -> dict[str, np.ndarray]:
    """Load every tensor listed in a TF.js weights manifest.

    Args:
        manifest_path: the ``*-weights_manifest.json`` file; shard paths in it are
            relative to its folder.

    Returns:
        ``{name: array}`` in manifest order, float32 for float tensors, shapes as
        stored (TF layout, e.g. conv filters ``(kh, kw, in, out)``).

    Raises:
        TfjsFormatError: unreadable JSON, missing shard, unknown dtype, shard too
            short or with trailing bytes.
    """
    manifest_path = Path(manifest_path)
    try:
        groups = json.loads(manifest_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise TfjsFormatError(f"cannot read TF.js manifest {manifest_path}: {exc}") from exc
    if not isinstance(groups, list):
        raise TfjsFormatError(f"{manifest_path}: expected a JSON list of weight groups")
    weights: dict[str, np.ndarray] = {}
    for group in groups:
        shards = [manifest_path.parent / p for p in group.get("paths", [])]
        missing = [str(p) for p in shards if not p.is_file()]
        if missing:
            raise TfjsFormatError(f"{manifest_path}: missing weight shard(s) {missing}")
        buffer = b"".join(p.read_bytes() for p in shards)
        offset = 0
        for entry in group.get("weights", []):
            weights[entry["name"]], offset = _decode(entry, buffer, offset)
        if offset != len(buffer):
            raise TfjsFormatError(
                f"{manifest_path}: decoded {offset} bytes but the shards hold {len(buffer)}"
            )
    return weights
