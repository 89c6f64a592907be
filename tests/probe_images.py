"""Generated probe inputs for the robustness tests and ``bench/robustness.py`` (no downloads, no big files
in the repository).

:func:`write_quadrant_png` streams a PNG of any size row by row (constant memory, a few seconds for
16384²): four flat quadrants of known colour, so a loader's output can be checked for orientation and
values. :func:`peak_rss_mib` runs a snippet in a fresh interpreter and reports its peak resident memory.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np

__all__ = ["QUADRANTS", "peak_rss_mib", "write_quadrant_png"]

REPO_ROOT = Path(__file__).resolve().parents[1]

#: Quadrant colours (top-left, top-right, bottom-left, bottom-right) as 8-bit RGBA.
QUADRANTS = ((200, 40, 40, 255), (40, 200, 40, 255), (40, 40, 200, 255), (220, 220, 220, 255))
_COLOUR_TYPES = {"L": (0, 1), "RGB": (2, 3), "RGBA": (6, 4)}


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _sample(colour: tuple[int, int, int, int], mode: str, bit_depth: int) -> np.ndarray:
    """One pixel's channel values, (C,) in the PNG's sample type."""
    grey = round(0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2])
    channels = {"L": [grey], "RGB": list(colour[:3]), "RGBA": list(colour)}[mode]
    if bit_depth == 16:
        return np.array(channels, dtype=">u2") * 257
    return np.array(channels, dtype=np.uint8)


def write_quadrant_png(path: Path, width: int, height: int, *, mode: str = "RGB", bit_depth: int = 8) -> Path:
    """Write a ``width`` × ``height`` PNG (``mode`` L, RGB or RGBA; ``bit_depth`` 8 or 16) of the four
    :data:`QUADRANTS` colours, streaming: memory stays at a few rows whatever the size."""
    colour_type, _ = _COLOUR_TYPES[mode]
    half_w, half_h = width // 2, height // 2
    rows = []
    for left_index, right_index in ((0, 1), (2, 3)):
        left_pixel, right_pixel = (_sample(QUADRANTS[i], mode, bit_depth) for i in (left_index, right_index))
        left = np.broadcast_to(left_pixel, (half_w, left_pixel.size))
        right = np.broadcast_to(right_pixel, (width - half_w, right_pixel.size))
        rows.append(b"\x00" + np.concatenate([left, right]).tobytes())
    compressor = zlib.compressobj(6)
    with open(path, "wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n")
        out.write(_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)))
        pending = b""
        for y in range(height):
            pending += compressor.compress(rows[0] if y < half_h else rows[1])
            if len(pending) > 1 << 20:
                out.write(_chunk(b"IDAT", pending))
                pending = b""
        pending += compressor.flush()
        out.write(_chunk(b"IDAT", pending))
        out.write(_chunk(b"IEND", b""))
    return path


def peak_rss_mib(code: str, *, timeout_s: float = 300) -> dict[str, object]:
    """Run ``code`` in a fresh ``python`` (repository on the path, one thread) and return
    ``{"baseline_mib", "peak_mib", "result"}``: peak RSS after the imports the snippet does before
    ``# -- measure --`` and at the end, and what the snippet assigned to ``result`` (JSON-able)."""
    before, _, after = code.partition("# -- measure --")
    script = (
        "import json, resource\n"
        f"{before}\n"
        "_base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "result = None\n"
        f"{after}\n"
        "print('@@' + json.dumps({'baseline_mib': _base, "
        "'peak_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 'result': result}))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout_s,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("@@")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"probe failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][2:])
