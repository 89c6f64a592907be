"""Asset registry: local folder, a fake Hugging Face Hub on 127.0.0.1, builders, CLI.

Upstream sources, the mirror, provenance and content checks are in test_asset_sources.py."""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib
import json
import socket
import sys
import threading
import time
import types
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ganfit_core import assets
from ganfit_core.assets import ASSETS, AssetError, AssetHashError, AssetSpec, resolve
from ganfit_core.cli import assets as assets_cli

PAYLOAD = b"ganfit test asset\n" * 100
REPO = "ganfit/test-assets"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    """Serves ``/{repo}/resolve/{revision}/{filename}`` (HEAD and GET); 404 for anything else."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.repos: set[str] = set()
        self.requests: list[tuple[str, str]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep pytest output quiet
                pass

            def _answer(self, with_body: bool) -> None:
                hub.requests.append((self.command, self.path))
                body = hub.files.get(self.path.split("?")[0])
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{hashlib.sha256(body).hexdigest()}"')
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if with_body:
                    self.wfile.write(body)

            def do_HEAD(self) -> None:  # noqa: N802 - http.server naming
                self._answer(with_body=False)

            def _json(self, status: int, payload: object) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802 - repo creation, preupload and commit (regular files)
                length = int(self.headers.get("Content-Length", "0"))
                data = self.rfile.read(length)
                hub.requests.append((self.command, self.path))
                path = self.path.split("?")[0]
                if path == "/api/repos/create":
                    info = json.loads(data)
                    repo = f"{info.get('organization') or 'user'}/{info['name']}"
                    hub.repos.add(repo)
                    self._json(200, {"url": f"{hub.url}/{repo}"})
                elif "/preupload/" in path:
                    files = json.loads(data)["files"]
                    modes = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                             for f in files]
                    self._json(200, {"files": modes})
                elif "/commit/" in path:
                    repo = path.split("/api/models/")[1].split("/commit/")[0]
                    for line in data.splitlines():
                        item = json.loads(line)
                        if item["key"] == "file":
                            value = item["value"]
                            body = base64.b64decode(value["content"])
                            hub.files[f"/{repo}/resolve/main/{value['path']}"] = body
                    self._json(200, {"commitUrl": f"{hub.url}/{repo}/commit/{COMMIT}", "commitOid": COMMIT})
                else:
                    self._json(404, {"error": "not found"})

            def do_GET(self) -> None:  # noqa: N802
                self._answer(with_body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def put(self, filename: str, body: bytes, revision: str = "main") -> None:
        self.files[f"/{REPO}/resolve/{revision}/{filename}"] = body

    def file_requests(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if "/resolve/" in r[1]]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _fake_builder(source_dir: Path, out_path: Path) -> None:
    out_path.write_bytes((source_dir / "input.txt").read_bytes() * 100)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Private weights dir, HF cache and source root; online; registers the asset ``dummy``."""
    monkeypatch.setenv("GANFIT_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("GANFIT_SOURCE_DIR", str(tmp_path / "sources"))
    monkeypatch.setenv("GANFIT_CACHE_DIR", str(tmp_path / "cache"))
    for name in ("HF_HUB_CACHE", "GANFIT_OFFLINE", "HF_HUB_OFFLINE", "HF_ENDPOINT", "GANFIT_MIRROR",
                 "GANFIT_HUB_REPO"):
        monkeypatch.delenv(name, raising=False)
    module = types.ModuleType("ganfit_fake_builder")
    module.build = _fake_builder  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ganfit_fake_builder", module)
    spec = AssetSpec(
        name="dummy", filename="dummy.bin", sha256=hashlib.sha256(PAYLOAD).hexdigest(), hub_repo=REPO,
        hub_revision="main", builder="ganfit_fake_builder:build", source_subdir="dummy-src", licence="CC0",
    )
    monkeypatch.setitem(ASSETS, "dummy", spec)
    return tmp_path


@pytest.fixture
def hub(env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    server = FakeHub()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    yield server
    server.close()


def _write_source(env: Path, body: bytes) -> None:
    folder = env / "sources" / "dummy-src"
    folder.mkdir(parents=True)
    (folder / "input.txt").write_bytes(body)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_registry_entries_are_complete() -> None:
    for name, spec in ASSETS.items():
        assert spec.name == name and spec.filename and spec.licence
        assert spec.sha256 is None or len(spec.sha256) == 64
        assert spec.builder is None or ":" in spec.builder
    assert ASSETS["ict_face_model"].source_subdir == "ict-facekit"


def test_unknown_asset_raises() -> None:
    with pytest.raises(AssetError, match="unknown asset 'nope'.*ict_face_model"):
        resolve("nope")


def test_local_folder_hit(env: Path, hub: FakeHub) -> None:
    (env / "weights").mkdir()
    (env / "weights" / "dummy.bin").write_bytes(PAYLOAD)
    assert resolve("dummy") == env / "weights" / "dummy.bin"
    assert hub.requests == []


def test_local_folder_wrong_hash_names_file_hashes_and_fix(env: Path, hub: FakeHub) -> None:
    (env / "weights").mkdir()
    bad = env / "weights" / "dummy.bin"
    bad.write_bytes(b"corrupt")
    with pytest.raises(AssetHashError) as info:
        resolve("dummy")
    message = str(info.value)
    assert str(bad) in message
    assert ASSETS["dummy"].sha256 in message and hashlib.sha256(b"corrupt").hexdigest() in message
    assert "assets build dummy" in message and "--force" in message


def test_hub_download_is_verified_and_cached(env: Path, hub: FakeHub) -> None:
    hub.put("dummy.bin", PAYLOAD)
    path = resolve("dummy")
    assert path.read_bytes() == PAYLOAD
    assert (env / "hf" / "hub") in path.parents
    assert not (env / "weights" / "dummy.bin").exists()
    served = len(hub.file_requests())
    assert served >= 1
    assert resolve("dummy") == path
    assert len(hub.file_requests()) == served  # the second resolve used the cache only


def test_hub_corrupt_download_is_rejected_and_dropped(env: Path, hub: FakeHub) -> None:
    hub.put("dummy.bin", b"tampered bytes")
    with pytest.raises(AssetError) as info:
        resolve("dummy")
    message = str(info.value)
    assert "wrong sha256" in message and hashlib.sha256(b"tampered bytes").hexdigest() in message
    assert "assets build dummy --source DIR" in message
    assert assets.hub_cached(ASSETS["dummy"]) is None


def test_hub_missing_file_falls_back_to_builder(env: Path, hub: FakeHub) -> None:
    _write_source(env, PAYLOAD[:18])
    path = resolve("dummy")
    assert path == env / "weights" / "dummy.bin" and path.read_bytes() == PAYLOAD
    assert any(method == "HEAD" for method, _ in hub.file_requests())
    assert [p.name for p in (env / "weights").iterdir() if p.name.endswith(".tmp")] == []


def test_unreachable_hub_fails_fast_with_steps(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    start = time.perf_counter()
    with pytest.raises(AssetError) as info:
        resolve("dummy")
    assert time.perf_counter() - start < 5.0
    message = str(info.value)
    for expected in ("local folder", "hub cache", "Hub unreachable", "source folder", "not found",
                     "python -m ganfit_core assets build dummy --source DIR",
                     "python -m ganfit_core assets fetch dummy"):
        assert expected in message


def test_offline_never_touches_the_network(env: Path, hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    hub.put("dummy.bin", PAYLOAD)
    monkeypatch.setenv("GANFIT_OFFLINE", "1")
    with pytest.raises(AssetError, match="offline"):
        resolve("dummy")
    assert hub.requests == []


def test_builder_output_with_wrong_hash_is_not_installed(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANFIT_OFFLINE", "1")
    _write_source(env, b"other input\n")
    with pytest.raises(AssetError, match="wrong sha256"):
        resolve("dummy")
    assert sorted(p.name for p in (env / "weights").iterdir() if not p.name.endswith(".lock")) == []


def test_source_dir_argument_wins(env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANFIT_OFFLINE", "1")
    other = tmp_path / "elsewhere" / "dummy-src"
    other.mkdir(parents=True)
    (other / "input.txt").write_bytes(PAYLOAD[:18])
    assert resolve("dummy", source_dir=other.parent).read_bytes() == PAYLOAD
    # The subfolder itself is accepted too.
    assert assets.build("dummy", source_dir=other, force=True).read_bytes() == PAYLOAD


def test_concurrent_resolves_build_once(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANFIT_OFFLINE", "1")
    _write_source(env, PAYLOAD[:18])
    calls: list[int] = []

    def slow_builder(source_dir: Path, out_path: Path) -> None:
        calls.append(1)
        time.sleep(0.3)
        _fake_builder(source_dir, out_path)

    monkeypatch.setattr(sys.modules["ganfit_fake_builder"], "build", slow_builder)
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(resolve("dummy"))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert results == [env / "weights" / "dummy.bin"] * 3 and results[0].read_bytes() == PAYLOAD


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    assets_cli.add_arguments(parser)
    return assets_cli.run(parser.parse_args(list(argv)))


def test_cli_list_build_fetch(env: Path, hub: FakeHub, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli("list") == 1
    assert "dummy" in capsys.readouterr().out
    assert _cli("build", "no_such_asset") == 2
    assert _cli("fetch", "dummy") == 1
    assert "not available on the Hub" in capsys.readouterr().err
    _write_source(env, PAYLOAD[:18])
    assert _cli("build", "dummy") == 0
    assert _cli("list") in (0, 1)  # other registered assets may be missing here
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("dummy "))
    assert "verified" in row and "CC0" in row
    (env / "weights" / "dummy.bin").write_bytes(b"x")
    _cli("list")
    assert "sha mismatch" in capsys.readouterr().out


def test_builds_ict_model_from_shared(env: Path, ict_archive: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANFIT_OFFLINE", "1")
    path = resolve("ict_face_model", source_dir=ict_archive.parent.parent)
    assert path == env / "weights" / "ict_face_model.safetensors"
    provenance = assets.read_provenance(path)
    assert provenance["asset"] == "ict_face_model" and provenance["inputs"] == "local"
    assert provenance["sources_sha256"] == assets.sources_digest(ASSETS["ict_face_model"])
    assert assets.status("ict_face_model").status == "verified"


def _built_builder(source_dir: Path, out_path: Path) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    raw = np.frombuffer((source_dir / "input.txt").read_bytes(), dtype=np.uint8)
    save_file({"w": raw.astype(np.float32) / 255.0, "n": np.arange(len(raw), dtype=np.int64)}, str(out_path))


@pytest.fixture
def built(env: Path, hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> AssetSpec:
    """Registers ``built``: a safetensors asset checked by provenance + fingerprint (no byte pin)."""
    verify_module = importlib.import_module("ganfit_core.assets.verify")
    monkeypatch.setattr(verify_module, "fingerprint_path", lambda name: env / f"{name}.fingerprint.json")
    monkeypatch.setattr(sys.modules["ganfit_fake_builder"], "build_built", _built_builder, raising=False)
    monkeypatch.setenv("GANFIT_HUB_REPO", REPO)
    spec = AssetSpec(name="built", filename="built.safetensors", sha256=None,
                     builder="ganfit_fake_builder:build_built", source_subdir="dummy-src", licence="CC0")
    monkeypatch.setitem(ASSETS, "built", spec)
    _write_source(env, PAYLOAD[:18])
    return spec


def test_publish_uploads_files_and_manifest_then_resolve_downloads_them(
        env: Path, hub: FakeHub, built: AssetSpec, capsys: pytest.CaptureFixture[str]) -> None:
    path = assets.build("built")
    assert _cli("pin", "built") == 0
    assert _cli("publish", "built") == 0  # repo from GANFIT_HUB_REPO
    assert f"published 1 file(s) + manifest.json to {REPO}" in capsys.readouterr().out
    uploaded = hub.files[f"/{REPO}/resolve/main/built.safetensors"]
    assert uploaded == path.read_bytes()
    manifest = json.loads(hub.files[f"/{REPO}/resolve/main/manifest.json"])
    entry = manifest["files"]["built.safetensors"]
    assert entry["sha256"] == hashlib.sha256(uploaded).hexdigest() and entry["provenance"]["asset"] == "built"
    path.unlink()
    downloaded = resolve("built")
    assert (env / "hf" / "hub") in downloaded.parents and downloaded.read_bytes() == uploaded


def test_hub_file_not_matching_its_manifest_is_rejected(env: Path, hub: FakeHub, built: AssetSpec) -> None:
    path = assets.build("built")
    assert _cli("pin", "built") == 0
    assert _cli("publish", "--repo", REPO, "built") == 0
    manifest = json.loads(hub.files[f"/{REPO}/resolve/main/manifest.json"])
    manifest["files"]["built.safetensors"]["sha256"] = "0" * 64
    hub.files[f"/{REPO}/resolve/main/manifest.json"] = json.dumps(manifest).encode()
    path.unlink()
    (env / "sources").rename(env / "sources-away")  # no local build either
    with pytest.raises(AssetError, match="wrong sha256 for the Hub manifest"):
        resolve("built")


def test_publish_needs_a_repo(env: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.delenv("GANFIT_HUB_REPO", raising=False)
    assert _cli("publish") == 2
    assert "--repo" in capsys.readouterr().err


def test_a_failed_build_is_not_retried_in_the_session(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """conftest's session guard: the second resolve fails at once with the first reason."""
    monkeypatch.setenv("GANFIT_OFFLINE", "1")
    _write_source(env, b"other input\n")
    calls: list[int] = []

    def counting_builder(source_dir: Path, out_path: Path) -> None:
        calls.append(1)
        _fake_builder(source_dir, out_path)

    monkeypatch.setattr(sys.modules["ganfit_fake_builder"], "build", counting_builder)
    with pytest.raises(AssetError, match="wrong sha256"):
        resolve("dummy")
    with pytest.raises(AssetError, match="not retried"):
        resolve("dummy")
    assert calls == [1]
