"""Issue #15: one test per defect of the robustness probe, on generated inputs (no downloads).

Each test names the defect it covers (numbers as in the issue). Memory is measured in a fresh
subprocess (``probe_images.peak_rss_mib``); photos are the London portrait from ``../shared``, pasted,
shrunk or turned here.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganfit_core.errors import ConfigError
from ganfit_core.face import FaceIndexError, FaceTooSmallError, load_image
from ganfit_core.face.errors import DecompressionBombError, EmptyImageError
from ganfit_core.fitting.config import FitConfig

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY_FIT = {
    "rigid_steps": 4,
    "shape_steps": 3,
    "full_steps": 2,
    "detail_steps": 2,
    "detail_resolution": 32,
    "render_size": 64,
    "texture_prior": "simple",
    "device": "cpu",
    "preview_every": 0,
}


@pytest.fixture(scope="module")
def portrait(shared_dir: Path, faceapi_models: Path) -> np.ndarray:
    """A London portrait (600², RGB) once the face-api assets are there (skips otherwise)."""
    path = shared_dir / "london-faces" / "neutral_front" / "001_03.jpg"
    if not path.is_file():
        pytest.skip(f"London portrait not found under {shared_dir}")
    return load_image(path, max_side=600)


def _encode(image: np.ndarray, fmt: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, fmt, quality=92)
    return buffer.getvalue()


def _pasted(portrait: np.ndarray, canvas: tuple[int, int], face_px: float) -> tuple[np.ndarray, np.ndarray]:
    """``portrait`` shrunk so its face box is ~``face_px`` across, pasted into a noisy canvas (W, H)."""
    from ganfit_core.face import detect_faces

    face = detect_faces(portrait)[0]
    scale = face_px / face.size
    side = round(portrait.shape[0] * scale)
    small = np.asarray(Image.fromarray(portrait).resize((side, side), Image.Resampling.BOX))
    width, height = canvas
    out = np.random.default_rng(0).integers(70, 110, (height, width, 1), dtype=np.uint8).repeat(3, axis=2)
    x0, y0 = int(width * 0.6), int(height * 0.3)
    out[y0 : y0 + side, x0 : x0 + side] = small
    return out, np.array([x0, y0]) + (face.box[:2] + face.box[2:]) / 2 * scale


# ------------------------------------------------------------------ 1. settings without an upper bound


@pytest.mark.parametrize(
    "setting",
    [{"detail_resolution": 8192}, {"detail_resolution": 0}, {"render_size": 2048}, {"full_steps": 10**6}],
)
def test_1_unbounded_settings_are_refused(setting: dict[str, int]) -> None:
    """8192 detail texels took 17.6 GB; 0 diverged to inf and said "Done" (bounds: the refactor of #16)."""
    with pytest.raises(ConfigError):
        FitConfig(**setting)


# ------------------------------------------------------------------ 2. small uploads, huge arrays


def test_2_a_16_bit_16384_png_decodes_within_a_bounded_memory(tmp_path: Path) -> None:
    """0.6 MB file, 7.4 GB peak RSS on today's main (float64 at full size); now its 512 MiB decode."""
    from probe_images import peak_rss_mib, write_quadrant_png

    path = write_quadrant_png(tmp_path / "l16.png", 16384, 16384, mode="L", bit_depth=16)
    probe = peak_rss_mib(
        "from ganfit_core.face.image_io import load_image\n# -- measure --\n"
        f"result = list(load_image({str(path)!r}).shape)"
    )
    assert probe["result"] == [2048, 2048, 3]
    assert probe["peak_mib"] - probe["baseline_mib"] < 900, probe


# ------------------------------------------------------------------ 3. usable faces not found


def test_3_a_150_px_face_in_a_4000_px_photo_is_fitted(portrait: np.ndarray) -> None:
    """Today's main: "No face found" (the detector saw the photo at 416 px)."""
    from ganfit_core.fitting.target import prepare_target

    photo, centre = _pasted(portrait, (4000, 3000), 150)
    target = prepare_target(_encode(photo), resolution=128)
    assert target.photo_size == (4000, 3000)  # loaded at full size (<= 4096): the face keeps its pixels
    eyes = np.c_[target.landmarks[36:48], np.ones(12)] @ target.crop_to_photo.T
    assert np.linalg.norm(eyes[:, :2].mean(axis=0) - centre) < 60


def test_3_a_40_px_face_is_too_small_not_missing(portrait: np.ndarray) -> None:
    from ganfit_core.fitting.target import prepare_target

    photo, _ = _pasted(portrait, (1024, 768), 40)
    with pytest.raises(FaceTooSmallError, match="too small"):
        prepare_target(photo)


# ------------------------------------------------------------------ 4. garbage reported as success


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_4_a_turned_face_is_fitted_upright_and_mapped_back(portrait: np.ndarray, turns: int) -> None:
    """A face turned 90° was fitted sideways with exit 0; upside down it was not found at all."""
    from ganfit_core.face.rotation import points_to_rotated, rotate_image
    from ganfit_core.fitting.target import prepare_target

    upright = prepare_target(portrait, resolution=128)
    target = prepare_target(rotate_image(portrait, turns), resolution=128)
    assert target.rotation == (-turns) % 4
    lm = target.landmarks  # the crop is upright: brows above eyes above nose above mouth above chin
    assert lm[19, 1] < lm[37, 1] < lm[30, 1] < lm[62, 1] < lm[8, 1]
    to_photo = np.c_[target.landmarks, np.ones(68)] @ target.crop_to_photo.T
    expected = points_to_rotated(
        np.c_[upright.landmarks, np.ones(68)] @ upright.crop_to_photo.T[:, :2], (600, 600), turns
    )
    inter_ocular = np.linalg.norm(upright.landmarks[36:42].mean(0) - upright.landmarks[42:48].mean(0))
    scale = upright.crop_to_photo[0, 0]
    assert np.linalg.norm(to_photo[:, :2] - expected, axis=1).mean() < 0.1 * inter_ocular * scale


def test_4_a_fit_that_cannot_follow_its_landmarks_fails_instead_of_done(portrait: np.ndarray) -> None:
    from ganfit_core.fitting.engine import fit, run_to_end
    from ganfit_core.fitting.target import prepare_target
    from ganfit_core.fitting.types import FitTarget

    good = prepare_target(portrait, resolution=64)
    scrambled = np.random.default_rng(1).permutation(good.landmarks)  # points of a face, in no order
    garbage = FitTarget.from_crop(good.image, scrambled, detection_score=0.55, landmark_consistency=0.2)
    config = FitConfig(**TINY_FIT)
    events = list(fit(garbage, config))
    result = events[-1].result
    assert result is not None and result.quality is not None
    assert result.quality.status == "failed" and events[-1].message != "done"
    fine = run_to_end(fit(good, config.replace(rigid_steps=40, shape_steps=20)))
    assert fine.quality is not None and fine.quality.status in ("good", "doubtful")
    assert fine.quality.landmark_residual < result.quality.landmark_residual


def test_4_the_cli_exits_non_zero_on_a_failed_fit(
    portrait: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ganfit_core.fitting.engine as engine
    from ganfit_core.__main__ import main
    from ganfit_core.cli import fit as cli
    from ganfit_core.fitting.quality import assess_fit

    photo = tmp_path / "face.jpg"
    photo.write_bytes(_encode(portrait))
    failing = assess_fit(np.full((68, 2), np.nan), np.zeros((68, 2)))
    monkeypatch.setattr(engine, "_assess", lambda *args, **kwargs: failing)
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in TINY_FIT.items()]
    assert main(["fit", str(photo), "--out", str(tmp_path / "out"), "--quiet", *flags]) == cli.EXIT_FIT_FAILED


# ------------------------------------------------------------------ 5. disk left behind


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT])
def test_5_the_app_removes_its_folders_on_sigterm_and_sigint(tmp_path: Path, how: signal.Signals) -> None:
    """SIGTERM skipped the cleanup; now the output store (and Gradio's cache inside it) goes."""
    port = _free_port()
    stale = tmp_path / "ganfit-app-dead"
    stale.mkdir()
    (stale / "owner.pid").write_text("999999999")
    env = dict(
        os.environ,
        TMPDIR=str(tmp_path),
        GRADIO_SERVER_PORT=str(port),
        PYTHONPATH=str(REPO_ROOT),
        OMP_NUM_THREADS="1",
        GRADIO_ANALYTICS_ENABLED="False",
    )
    process = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "app.py")],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        else:
            pytest.fail(
                f"the app did not start: {process.stderr.read().decode()[-2000:] if process.stderr else ''}"
            )
        roots = list(tmp_path.glob("ganfit-app-*"))
        assert not stale.exists()  # swept at start: its owner is dead
        assert len(roots) == 1 and (roots[0] / "owner.pid").read_text() == str(process.pid)
        process.send_signal(how)
        process.wait(timeout=60)
        assert not roots[0].exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_5_each_output_is_stored_once(tmp_path: Path) -> None:
    from ganfit_app.ui_support import package_downloads

    files = {}
    for name in ("mesh.glb", "mesh.obj", "mesh.mtl", "texture.png", "params.json"):
        files[name] = tmp_path / name
        files[name].write_bytes(os.urandom(1000))
    downloads = package_downloads(files, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["face_obj.zip", "mesh.glb", "params.json"]
    assert downloads.obj_zip is not None and downloads.obj_zip.is_file()


# ------------------------------------------------------------------ 6. server details in messages


def test_6_messages_carry_no_server_path(tmp_path: Path) -> None:
    from ganfit_app.ui_support import apply_controls, config_controls

    secret = tmp_path / "gradio" / "0123abcd"
    secret.mkdir(parents=True)
    (secret / "photo.jpg").write_text("not a photo")
    (secret / "empty.png").write_bytes(b"")
    for name in ("photo.jpg", "empty.png", "missing.jpg"):
        with pytest.raises(ValueError) as caught:
            load_image(secret / name)
        assert str(tmp_path) not in str(caught.value) and name in str(caught.value)
    controls = config_controls(FitConfig())
    prior = next(c for c in controls if c.key == "texture_prior")
    if "gan" not in prior.choices:  # not offered on this server (no trained GAN): refused, no registry report
        values = [None] * len(controls)
        values[controls.index(prior)] = "gan"
        with pytest.raises(ConfigError, match="not offered") as caught:
            apply_controls(FitConfig(), controls, values)
        assert "/" not in str(caught.value)


# ------------------------------------------------------------------ 7. the API skips the form's checks


@pytest.mark.parametrize("index", [-1, 1.5])
def test_7_face_index_minus_one_and_one_and_a_half_are_refused(portrait: np.ndarray, index: float) -> None:
    from ganfit_core.fitting.target import prepare_target

    with pytest.raises(FaceIndexError, match="whole number >= 0"):
        prepare_target(portrait, face_index=index)  # type: ignore[arg-type]


def test_7_the_cli_refuses_face_index_minus_one(
    portrait: np.ndarray, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ganfit_core.__main__ import main
    from ganfit_core.cli import fit as cli

    photo = tmp_path / "face.jpg"
    photo.write_bytes(_encode(portrait))
    assert (
        main(["fit", str(photo), "--out", str(tmp_path / "o"), "--face-index", "-1", "--quiet"])
        == cli.EXIT_BAD_INPUT
    )
    assert "whole number >= 0" in capsys.readouterr().err


def test_7_a_choice_the_menu_does_not_offer_is_refused() -> None:
    from ganfit_app.ui_support import ConfigControl, apply_controls

    control = ConfigControl(("texture_prior",), "pca", "choice", ("simple", "pca"))
    assert apply_controls(FitConfig(), [control], ["simple"]).texture_prior == "simple"
    with pytest.raises(ConfigError, match="not offered"):
        apply_controls(FitConfig(), [control], ["gan"])


# ------------------------------------------------------------------ 8. smaller ones


def test_8_decompression_bomb_message_quotes_one_limit() -> None:
    from ganfit_core.face.image_io import MAX_PIXELS

    data = bytearray(_encode(np.zeros((16, 16, 3), np.uint8)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = (60000).to_bytes(2, "big") * 2
    with pytest.raises(DecompressionBombError) as caught:
        load_image(bytes(data))
    message = str(caught.value)  # today's main also quotes PIL's own (2x) limit, without commas
    assert (
        f"{MAX_PIXELS:,}" in message and "exceeds limit" not in message and str(2 * MAX_PIXELS) not in message
    )


def test_8_cancel_with_nothing_running_says_so() -> None:
    from ganfit_app.ui_support import CancelFlag

    flag = CancelFlag()
    assert flag.cancel() == "Nothing to cancel." and not flag.event.is_set()
    flag.running.set()
    assert flag.cancel() == "Cancelled." and flag.event.is_set()


def test_8_corrupt_exif_is_not_a_raw_warning() -> None:
    import struct

    entry = struct.pack("<HHII", 0x010F, 2, 100, 1000)
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1) + entry + struct.pack("<I", 0)
    buffer = io.BytesIO()
    Image.new("RGB", (20, 20)).save(buffer, "JPEG", exif=b"Exif\x00\x00" + tiff)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        load_image(buffer.getvalue())
    assert not seen


def test_8_a_zero_size_png_is_empty() -> None:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 0, 8, 2, 0, 0, 0))
        + chunk(b"IEND", b"")
    )
    with pytest.raises(EmptyImageError, match="empty"):
        load_image(png)


def test_8_same_seed_same_bytes_through_api_cli_and_app(portrait: np.ndarray, tmp_path: Path) -> None:
    """The same photo, settings and seed give identical result bytes through all three front ends,
    whatever the caller's global torch generator holds (the fit has its own generator)."""
    from ganfit_core import reconstruct
    from ganfit_core.__main__ import main

    photo = tmp_path / "face.jpg"
    photo.write_bytes(_encode(portrait))
    config = FitConfig(**TINY_FIT, seed=7)
    torch.manual_seed(123)
    api = reconstruct(str(photo), config=config)
    torch.manual_seed(456)
    again = reconstruct(str(photo), config=config)
    assert (
        api.texture.tobytes() == again.texture.tobytes()
        and api.vertices.tobytes() == again.vertices.tobytes()
    )
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in TINY_FIT.items()]
    assert main(["fit", str(photo), "--out", str(tmp_path / "cli"), "--quiet", "--seed=7", *flags]) == 0
    cli_texture = np.asarray(Image.open(tmp_path / "cli" / "texture.png").convert("RGB"))
    assert cli_texture.tobytes() == api.texture.tobytes()
    app_result = _app_fit(photo, config, tmp_path / "app")
    assert app_result.tobytes() == api.texture.tobytes()


def _app_fit(photo: Path, config: FitConfig, folder: Path) -> np.ndarray:
    """The app's handler run once (no server) with ``config``'s values in its controls; its texture."""
    import importlib.util

    from ganfit_app import ui_support

    spec = importlib.util.spec_from_file_location("ganfit_app_main", REPO_ROOT / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    controls = ui_support.config_controls(FitConfig())
    values = [getattr(config, c.path[0]) if len(c.path) == 1 else None for c in controls]
    store = ui_support.OutputStore(folder)
    try:
        handler = module.make_reconstruct(controls, store, 0.0)
        outputs = list(handler({"path": str(photo)}, ui_support.CancelFlag(), None, *values))
        texture = outputs[-1][3]
        return np.asarray(texture)
    finally:
        store.close()


def test_app_iterations_and_loss_weights_are_sliders_over_the_config_ranges(app_module: object) -> None:
    """The design card asks for iteration and loss-weight sliders (they were number boxes)."""
    import gradio as gr

    from ganfit_app.ui_support import OutputStore
    from ganfit_core.fitting.config import FIELD_RANGES

    store = OutputStore()
    try:
        demo = app_module.build_demo(store)  # type: ignore[attr-defined]
        by_id = {getattr(b, "elem_id", None): b for b in demo.blocks.values()}
        for name in ("rigid_steps", "detail_steps", "identity_weight", "landmark_weight"):
            widget = by_id[app_module.control_elem_id(name)]  # type: ignore[attr-defined]
            assert isinstance(widget, gr.Slider), name
            assert (widget.minimum, widget.maximum) == FIELD_RANGES[name]
            assert widget.value == getattr(FitConfig(), name) and "default" in (widget.info or "")
    finally:
        store.close()
