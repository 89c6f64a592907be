"""Upstream sources (pins, mirror on 127.0.0.1, Range resume, zip members) and built-file checks
(provenance + content fingerprint)."""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import sys
import threading
import types
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from ganfit_core import assets
from ganfit_core.assets import (
    ASSETS,
    AssetError,
    AssetHashError,
    AssetSpec,
    SourceFile,
    SourceUnavailable,
    download,
    mirror,
    sources,
)
from ganfit_core.cli import assets as assets_cli

verify = importlib.import_module("ganfit_core.assets.verify")  # the package's own `verify` is the function

UPSTREAM = "https://example.org/owner/repo/0123abcd"
WHEEL_URL = "https://files.example.org/packages/ab/cd/thing-1.0-py3-none-any.whl"


def _source_files() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    return {
        "toy-src/data/a.bin": rng.bytes(300_000),
        "toy-src/data/b.txt": b"hello upstream\n" * 1000,
        "toy-wheel/model.tflite": rng.bytes(50_000),
    }


def _pins(files: dict[str, bytes]) -> tuple[SourceFile, ...]:
    out = []
    for path, body in files.items():
        sha, size = hashlib.sha256(body).hexdigest(), len(body)
        if path.startswith("toy-wheel/"):
            out.append(SourceFile(path, WHEEL_URL, sha, size, member=f"pkg/models/{Path(path).name}"))
        else:
            out.append(SourceFile(path, f"{UPSTREAM}/{path.split('/', 1)[1]}", sha, size))
    return tuple(out)


def _toy_builder(source_dir: Path, out_path: Path) -> None:
    """Reads ``data/a.bin`` and ``data/b.txt``; writes a float and an integer tensor."""
    from safetensors.numpy import save_file

    raw = np.frombuffer((source_dir / "data" / "a.bin").read_bytes(), dtype=np.uint8)
    text = (source_dir / "data" / "b.txt").read_bytes()
    save_file({"weights": (raw[:4096].astype(np.float32) / 255.0).reshape(64, 64),
               "ids": np.arange(len(text) % 97, dtype=np.int64)}, str(out_path), metadata={"toy": "1"})


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    """A registered built asset ``toy`` with pinned upstream sources, a local copy of them, and a
    mirror of them served on 127.0.0.1 (every request recorded)."""
    monkeypatch.setenv("GANFIT_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("GANFIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("GANFIT_SOURCE_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("GANFIT_OFFLINE", "0")
    for name in ("GANFIT_MIRROR", "HF_HUB_OFFLINE", "HF_HUB_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # closed: the Hub step fails fast
    files = _source_files()
    pins = _pins(files)
    for module in (sources, mirror, assets):
        monkeypatch.setattr(module, "all_sources", lambda: pins)
    monkeypatch.setattr(verify, "fingerprint_path", lambda name: tmp_path / "fingerprints" / f"{name}.json")
    (tmp_path / "fingerprints").mkdir()
    module = types.ModuleType("ganfit_toy_builder")
    module.build = _toy_builder  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ganfit_toy_builder", module)
    spec = AssetSpec(name="toy", filename="toy.safetensors", sha256=None, builder="ganfit_toy_builder:build",
                     source_subdir="toy-src", sources=("toy-src/",), licence="CC0", tolerance=1e-3)
    monkeypatch.setitem(ASSETS, "toy", spec)
    local = tmp_path / "local"
    for path, body in files.items():
        (local / path).parent.mkdir(parents=True, exist_ok=True)
        (local / path).write_bytes(body)
    mirror.make_mirror(local, tmp_path / "mirror")
    requests: list[tuple[str, str | None]] = []

    class Recording(mirror.RangeRequestHandler):
        def send_head(self):  # type: ignore[override]
            requests.append((self.path, self.headers.get("Range")))
            return super().send_head()

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Recording, directory=str(tmp_path / "mirror")))
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield {"spec": spec, "files": files, "pins": pins, "local": local, "tmp": tmp_path, "requests": requests,
           "url": f"http://127.0.0.1:{server.server_port}"}
    server.shutdown()
    server.server_close()


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    assets_cli.add_arguments(parser)
    return assets_cli.run(parser.parse_args(list(argv)))


# ---------------------------------------------------------------------------------------------
# The real source table


def test_real_source_table_covers_every_builder() -> None:
    table = assets.all_sources()
    paths = [f.path for f in table]
    assert len(paths) == len(set(paths))
    by_asset = {name: sources.sources_for(spec) for name, spec in ASSETS.items() if spec.sources}
    derived = {n for n, s in ASSETS.items() if s.builder and not s.sources}
    assert set(by_asset) | derived == {n for n, s in ASSETS.items() if s.builder}
    assert all(ASSETS[n].requires and not ASSETS[n].source_subdir for n in derived), derived
    assert len(by_asset["ict_face_model"]) == 155  # 154 OBJs + vertex_indices.json
    assert all(f.url.startswith("https://raw.githubusercontent.com/ICT-VGL/ICT-FaceKit/"
                                "da5f95a607f5e6b37755b38d3385d7f2853732e5/FaceXModel/")
               for f in by_asset["ict_face_model"])
    folders = {f.path.split("/")[1] for f in by_asset["texture_pca"]}
    assert folders == {"neutral_front", "smiling_front", "canada"}
    tflite = [f for f in table if f.path.startswith("mediapipe/")]
    assert len(tflite) == 5 and all(f.member and f.url.endswith("mediapipe-0.10.21-cp311-cp311-"
                                                                "manylinux_2_28_x86_64.whl") for f in tflite)
    assert all(len(f.sha256) == 64 and f.size > 0 for f in table)


def test_cli_sources_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli("sources") == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"url", "sha256", "size", "assets", "path"} <= set(rows[0])
    landmark = next(r for r in rows if r["path"] == "face-api/model/face_landmark_68_model.bin")
    assert landmark["assets"] == ["faceapi_landmark68"]
    assert landmark["url"] == ("https://raw.githubusercontent.com/vladmandic/face-api/"
                               "f587b44f66eae5a8fbd74f593171882378c14ddc/model/face_landmark_68_model.bin")
    mesh = next(r for r in rows if r["path"] == "mediapipe/face_landmark.tflite")
    assert mesh["member"] == "mediapipe/modules/face_landmark/face_landmark.tflite"


def test_shared_sources_match_the_pins(shared_dir: Path) -> None:
    """Every pinned file is in ../shared (directly or in FaceXModel.tar.xz) with the pinned sha256."""
    if not (shared_dir / "face-api").is_dir():
        pytest.skip(f"no shared sources at {shared_dir} (set GANFIT_SOURCE_DIR)")
    for name, spec in ASSETS.items():
        if spec.sources:
            assert sources.check_local(spec, assets.builder_source(spec, shared_dir)) == [], name
    for f in assets.all_sources():
        if f.path.startswith("mediapipe/") and (shared_dir / f.path).is_file():
            assert assets.sha256_file(shared_dir / f.path) == f.sha256


def test_shared_mirror_serves_faceapi_and_wheel_members(shared_dir: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    if not (shared_dir / "mediapipe").is_dir() or not (shared_dir / "face-api").is_dir():
        pytest.skip(f"no face-api/ and mediapipe/ under {shared_dir} (set GANFIT_SOURCE_DIR)")
    count, _ = mirror.make_mirror(shared_dir, tmp_path / "m", ["face-api/", "mediapipe/"])
    assert count == 11
    server, url = mirror.serve_in_thread(tmp_path / "m")
    try:
        monkeypatch.setenv("GANFIT_MIRROR", url)
        monkeypatch.setenv("GANFIT_OFFLINE", "0")
        wanted = [f for f in assets.all_sources() if f.path.startswith(("face-api/", "mediapipe/"))]
        download.ensure_files(wanted, tmp_path / "cache", progress=False)
    finally:
        server.shutdown()
        server.server_close()
    for f in wanted:
        assert assets.sha256_file(tmp_path / "cache" / f.path) == f.sha256


# ---------------------------------------------------------------------------------------------
# Download, mirror, resume


def test_mirror_url_rewrites_every_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GANFIT_MIRROR", raising=False)
    assert download.mirror_url("https://a.example/x/y.bin") == "https://a.example/x/y.bin"
    monkeypatch.setenv("GANFIT_MIRROR", "http://127.0.0.1:8000/")
    assert download.mirror_url("https://a.example/x/y.bin") == "http://127.0.0.1:8000/a.example/x/y.bin"


def test_build_without_local_sources_downloads_from_the_mirror(toy: dict, monkeypatch) -> None:
    monkeypatch.setenv("GANFIT_MIRROR", toy["url"])
    path = assets.resolve("toy")
    assert path == toy["tmp"] / "weights" / "toy.safetensors"
    cache = toy["tmp"] / "cache" / "sources"
    for f in sources.sources_for(toy["spec"]):
        assert (cache / f.path).read_bytes() == toy["files"][f.path]
    provenance = assets.read_provenance(path)
    assert provenance["inputs"] == "upstream" and provenance["builder_version"] == 1
    assert provenance["sources_sha256"] == assets.sources_digest(toy["spec"])
    assert set(provenance["packages"]) >= {"numpy", "torch", "pillow", "scipy", "python"}
    served = len(toy["requests"])
    assert served == 2
    assets.build("toy", force=True)  # the cache is reused: no new request
    assert len(toy["requests"]) == served


def test_partial_download_resumes_with_range(toy: dict, monkeypatch) -> None:
    monkeypatch.setenv("GANFIT_MIRROR", toy["url"])
    source = next(f for f in toy["pins"] if f.path.endswith("a.bin"))
    dest = toy["tmp"] / "dl" / "a.bin"
    dest.parent.mkdir()
    dest.with_name("a.bin.part").write_bytes(toy["files"][source.path][:120_000])
    download.download_file(source, dest)
    assert dest.read_bytes() == toy["files"][source.path]
    assert toy["requests"][-1][1] == "bytes=120000-"
    assert not dest.with_name("a.bin.part").exists()


def test_corrupt_upstream_file_is_discarded(toy: dict, monkeypatch) -> None:
    monkeypatch.setenv("GANFIT_MIRROR", toy["url"])
    source = next(f for f in toy["pins"] if f.path.endswith("b.txt"))
    served = toy["tmp"] / "mirror" / mirror.mirror_path(source.url)
    served.unlink()
    served.write_bytes(b"tampered")
    with pytest.raises(AssetError) as info:
        assets.resolve("toy")
    assert "sha256" in str(info.value) and source.sha256 in str(info.value)
    assert not (toy["tmp"] / "cache" / "sources" / source.path).exists()
    assert not (toy["tmp"] / "weights" / "toy.safetensors").exists()


def test_offline_gives_one_clear_message(toy: dict, monkeypatch) -> None:
    monkeypatch.setenv("GANFIT_OFFLINE", "1")
    with pytest.raises(AssetError) as info:
        assets.build("toy")
    message = str(info.value)
    assert "offline" in message and "GANFIT_MIRROR" in message and "GANFIT_SOURCE_DIR" in message
    assert toy["requests"] == []


def test_unreachable_upstream_says_so(toy: dict, monkeypatch) -> None:
    monkeypatch.setenv("GANFIT_MIRROR", "http://127.0.0.1:9")
    with pytest.raises(SourceUnavailable, match="cannot download 2 upstream source file"):
        assets.build("toy")


def test_wheel_members_are_fetched_with_range_requests(toy: dict, monkeypatch) -> None:
    monkeypatch.setenv("GANFIT_MIRROR", toy["url"])
    member = next(f for f in toy["pins"] if f.member)
    archive = toy["tmp"] / "mirror" / mirror.mirror_path(WHEEL_URL)
    with zipfile.ZipFile(archive) as zf:
        assert zf.namelist() == ["pkg/models/model.tflite"]
    dest = toy["tmp"] / "wheel-out" / "model.tflite"
    dest.parent.mkdir()
    download.download_members(WHEEL_URL, [(member, dest)])
    assert dest.read_bytes() == toy["files"][member.path]
    ranges = [r for p, r in toy["requests"] if p.endswith(".whl")]
    assert ranges and all(r is None or r.startswith("bytes=") for r in ranges)
    assert any(r is not None for r in ranges)


def test_range_server_answers_206_and_416(toy: dict) -> None:
    source = next(f for f in toy["pins"] if f.path.endswith("b.txt"))
    url = f"{toy['url']}/{mirror.mirror_path(source.url)}"
    request = urllib.request.Request(url, headers={"Range": "bytes=5-9"})
    with urllib.request.urlopen(request) as response:
        assert response.status == 206 and response.read() == toy["files"][source.path][5:10]
    request = urllib.request.Request(url, headers={"Range": f"bytes={source.size}-"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request)
    assert info.value.code == 416


# ---------------------------------------------------------------------------------------------
# Local sources, provenance, content check


def test_local_sources_are_used_and_checked(toy: dict) -> None:
    path = assets.build("toy", source_dir=toy["local"])
    assert assets.read_provenance(path)["inputs"] == "local"
    assert toy["requests"] == []
    (toy["local"] / "toy-src" / "data" / "b.txt").write_bytes(b"edited locally")
    with pytest.raises(AssetHashError, match="differs from upstream"):
        assets.build("toy", source_dir=toy["local"], force=True)


def _rewrite(path: Path, out: Path, change) -> None:
    from safetensors.numpy import load_file, save_file

    tensors = load_file(str(path))
    change(tensors)
    save_file(tensors, str(out), metadata=verify.read_metadata(path))


def test_content_check_accepts_float_noise_and_rejects_real_changes(toy: dict) -> None:
    path = assets.build("toy", source_dir=toy["local"])
    assert _cli("pin", "toy") == 0
    reference = json.loads((toy["tmp"] / "fingerprints" / "toy.json").read_text())
    assert reference["tensors"]["weights"]["shape"] == [64, 64] and "sha256" in reference["tensors"]["ids"]
    spec = toy["spec"]
    candidate = toy["tmp"] / "candidate.safetensors"

    def noise(t: dict) -> None:  # last-bit float differences, as another CPU or library gives
        t["weights"] = (t["weights"] * np.float32(1 + 1e-6)).astype(np.float32)

    _rewrite(path, candidate, noise)
    assert verify.sha256_file(candidate) != verify.sha256_file(path)
    verify.verify(spec, candidate, fix="-")

    def scaled(t: dict) -> None:
        t["weights"] = t["weights"] * np.float32(1.05)

    def int_changed(t: dict) -> None:
        t["ids"] = t["ids"] + 1

    def reshaped(t: dict) -> None:
        t["weights"] = t["weights"].reshape(32, 128)

    cases = ((scaled, "mean"), (int_changed, "integer data differs"), (reshaped, "instead of"))
    for change, expected in cases:
        _rewrite(path, candidate, change)
        with pytest.raises(AssetHashError, match=expected):
            verify.verify(spec, candidate, fix="-")


def test_provenance_is_required_and_must_match(toy: dict, monkeypatch) -> None:
    path = assets.build("toy", source_dir=toy["local"])
    bare = toy["tmp"] / "bare.safetensors"
    from safetensors.numpy import load_file, save_file

    save_file(load_file(str(path)), str(bare))
    with pytest.raises(AssetHashError, match="no provenance"):
        verify.verify(toy["spec"], bare, fix="-")
    newer = AssetSpec(**{**toy["spec"].__dict__, "builder_version": 2})
    monkeypatch.setitem(ASSETS, "toy", newer)
    with pytest.raises(AssetHashError, match="builder version 1 instead of 2"):
        assets.resolve("toy")
    legacy = AssetSpec(**{**newer.__dict__, "accept_sha256": (verify.sha256_file(bare),)})
    verify.verify(legacy, bare, fix="-")  # a known-good pre-provenance file is still accepted


def test_metadata_rewrite_keeps_tensors(tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    src, dst = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    save_file({"x": np.arange(10, dtype=np.float32), "y": np.ones((2, 3), np.uint8)}, str(src),
              metadata={"k": "v"})
    verify.write_with_metadata(src, dst, {"extra": json.dumps({"a": 1})})
    loaded = load_file(str(dst))
    assert np.array_equal(loaded["x"], np.arange(10)) and loaded["y"].shape == (2, 3)
    assert verify.read_metadata(dst) == {"k": "v", "extra": '{"a": 1}'}
    (tmp_path / "junk").write_bytes(b"x" * 20)
    with pytest.raises(ValueError, match="not a safetensors file"):
        verify.read_header(tmp_path / "junk")


def test_shipped_fingerprints_match_present_files() -> None:
    """Every pinned fingerprint is well-formed, and a present built file (e.g. in weights/) matches it."""
    checked = 0
    for name, spec in ASSETS.items():
        reference = verify.reference_fingerprint(name)
        if spec.builder is None:
            continue
        if spec.on_demand and reference is None:  # an hour-long training build: pinned once published
            continue
        assert reference is not None, f"{name}: no fingerprint (python -m ganfit_core assets pin {name})"
        assert reference["sources_sha256"] == assets.sources_digest(spec)
        path = assets.weights_dir() / spec.filename
        if path.is_file():
            actual = verify.fingerprint(path)
            assert verify.compare_fingerprints(actual, reference["tensors"], spec.tolerance,
        exact_integers=spec.exact_integers) == [], name
            checked += 1
    if checked == 0:
        pytest.skip(f"no built asset in {assets.weights_dir()} to compare")


def test_a_passed_check_is_remembered_by_sha256(toy: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    path = assets.build("toy", source_dir=toy["local"])
    assert _cli("pin", "toy") == 0
    verify.verify(toy["spec"], path, fix="-")
    marker = verify.check_marker(path)
    assert toy["tmp"] / "cache" in marker.parents
    assert json.loads(marker.read_text())["sha256"] == verify.sha256_file(path)
    verify._OK_CACHE.clear()
    calls: list[Path] = []
    monkeypatch.setattr(verify, "verify_built", lambda spec, p, digest: calls.append(p) or ["re-checked"])
    verify.verify(toy["spec"], path, fix="-")  # the marker matches: no content check
    assert calls == []
    _rewrite(path, path, lambda t: t.update(weights=t["weights"] * np.float32(2)))
    with pytest.raises(AssetHashError, match="re-checked"):
        verify.verify(toy["spec"], path, fix="-")
    assert calls == [path]
