"""A local mirror of the upstream sources, for tests, CI and machines without internet.

:func:`make_mirror` lays a local source root (e.g. ``../shared``) out as ``DIR/HOST/PATH`` for every
pinned source URL ``https://HOST/PATH`` (each file checked against its pin); a wheel becomes a zip
holding the same members at the same paths (its members are verified by their own sha256, the zip's
bytes differ from PyPI's). :func:`serve` serves such a folder over HTTP with ``Range`` support;
point ``GANFIT_MIRROR=http://HOST:PORT`` at it.
"""

from __future__ import annotations

import hashlib
import os
import re
import tarfile
import threading
import urllib.parse
import zipfile
from collections.abc import Sequence
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath

from ganfit_core.assets.sources import LOCAL_ARCHIVES, SourceFile, all_sources
from ganfit_core.assets.spec import AssetError, AssetHashError


def mirror_path(url: str) -> str:
    """``HOST/PATH`` of an upstream URL: where it lies in a mirror folder."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.netloc}{urllib.parse.unquote(parts.path)}"


def _local_bytes(base: Path, files: Sequence[SourceFile]) -> dict[str, bytes | Path]:
    """Each file's local path, or its bytes read from a local archive (one pass per archive)."""
    found: dict[str, bytes | Path] = {}
    wanted_from_archive: dict[str, dict[str, SourceFile]] = {}
    for f in files:
        if (base / f.path).is_file():
            found[f.path] = base / f.path
            continue
        folder = str(PurePosixPath(f.path).parent)
        if folder not in LOCAL_ARCHIVES or not (base / LOCAL_ARCHIVES[folder][0]).is_file():
            raise AssetError(f"mirror: {base / f.path} not found (nor an archive holding it)")
        archive, _, inner = LOCAL_ARCHIVES[folder]
        wanted_from_archive.setdefault(archive, {})[f"{inner}/{PurePosixPath(f.path).name}"] = f
    for archive, members in wanted_from_archive.items():
        with tarfile.open(base / archive, "r|*") as tar:
            for member in tar:
                if member.name in members:
                    handle = tar.extractfile(member)
                    if handle is not None:
                        found[members[member.name].path] = handle.read()
        for name, f in members.items():
            if f.path not in found:
                raise AssetError(f"mirror: {base / archive} has no member {name}")
    return found


def _data(item: bytes | Path) -> bytes:
    return item if isinstance(item, bytes) else item.read_bytes()


def make_mirror(source_dir: Path, out: Path, prefixes: Sequence[str] = ()) -> tuple[int, int]:
    """Lay the pinned sources found in ``source_dir`` out as a mirror in ``out``; (files, bytes) written.

    ``prefixes`` limits it to source paths starting with one of them (default: every source).
    """
    files = [f for f in all_sources() if not prefixes or any(f.path.startswith(p) for p in prefixes)]
    if not files:
        raise AssetError(f"mirror: no pinned source matches {list(prefixes)}")
    local = _local_bytes(Path(source_dir), files)
    wheels: dict[str, list[tuple[SourceFile, bytes]]] = {}
    total = 0
    for f in files:
        data = _data(local[f.path])
        actual = hashlib.sha256(data).hexdigest()
        if actual != f.sha256:
            raise AssetHashError(f"mirror: {f.path} in {source_dir} has sha256 {actual}, expected {f.sha256}")
        if f.member is not None:
            wheels.setdefault(f.url, []).append((f, data))
            continue
        dest = out / mirror_path(f.url)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(local[f.path], Path) and not dest.exists():
            try:
                os.link(local[f.path], dest)  # same bytes, no copy (falls back to writing)
            except OSError:
                dest.write_bytes(data)
        elif not (dest.is_file() and dest.stat().st_size == f.size):
            dest.write_bytes(data)
        total += f.size
    for url, members in wheels.items():
        dest = out / mirror_path(url)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".tmp")
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for f, data in members:
                zf.writestr(zipfile.ZipInfo(f.member or f.path, date_time=(2020, 1, 1, 0, 0, 0)), data,
                            compress_type=zipfile.ZIP_DEFLATED)
        os.replace(tmp, dest)
        total += dest.stat().st_size
    return len(files), total


class RangeRequestHandler(SimpleHTTPRequestHandler):
    """Static files with single-range ``Range: bytes=A-B`` support (206 / 416), quiet logs."""

    def log_message(self, *args: object) -> None:
        pass

    def send_head(self):  # type: ignore[override]
        header = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if header is None or not path.is_file():
            response = super().send_head()
            return response
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
        size = path.stat().st_size
        if not match or (not match.group(1) and not match.group(2)):
            self.send_error(400, "bad Range")
            return None
        if match.group(1):
            start = int(match.group(1))
            end = int(match.group(2)) if match.group(2) else size - 1
        else:
            start, end = max(0, size - int(match.group(2))), size - 1
        if start >= size:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        end = min(end, size - 1)
        handle = open(path, "rb")  # noqa: SIM115 - closed by copyfile's caller
        handle.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self._remaining = end - start + 1
        return handle

    def end_headers(self) -> None:
        if not any(h.lower().startswith(b"accept-ranges") for h in getattr(self, "_headers_buffer", [])):
            self.send_header("Accept-Ranges", "bytes")
        super().end_headers()

    def copyfile(self, source, outputfile) -> None:  # type: ignore[override]
        remaining = getattr(self, "_remaining", None)
        if remaining is None:
            super().copyfile(source, outputfile)
            return
        while remaining > 0:
            block = source.read(min(1 << 20, remaining))
            if not block:
                break
            outputfile.write(block)
            remaining -= len(block)
        self._remaining = None


def make_server(folder: Path, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """An HTTP server for ``folder`` (not started); its URL is ``http://host:server.server_port``."""
    handler = partial(RangeRequestHandler, directory=str(folder))
    return ThreadingHTTPServer((host, port), handler)


def serve_in_thread(folder: Path) -> tuple[ThreadingHTTPServer, str]:
    """Start :func:`make_server` on a free 127.0.0.1 port in a daemon thread; (server, URL)."""
    server = make_server(folder)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"
