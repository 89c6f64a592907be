"""The animatable GLB in real browsers (headless Debian Chromium through Selenium).

- three.js (npm ``three``, pinned in conftest): the page ``tests/web/morph_viewer.html`` served from
  127.0.0.1 loads the file, sets ``jawOpen``, a smile and an eye turn through each mesh's
  ``morphTargetDictionary``, and the test checks what moved; and that the albedo comes out as the
  texture's colour (unlit, and lit by a uniform white light of irradiance 1).
- Gradio's ``Model3D`` (Babylon.js viewer): the unlit file shows the albedo's colour; the lit file is
  tinted by the viewer's bundled environment light (measured and printed, see DESIGN notes).

Screenshots go to ``artifacts/`` (git-ignored): look at them.
"""

from __future__ import annotations

import base64
import colorsys
import functools
import io
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from chromium import chromium_driver
from PIL import Image

from ganfit_core.export.animated_glb import write_face_glb

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
WEB = ROOT / "tests" / "web"
#: The albedo of every test face (sRGB, uint8): a mid skin tone.
SKIN = (200, 150, 130)
BACKGROUND = 128  # the page's clear colour (0x808080)
SMILE = {"jawOpen": 1.0, "mouthSmileLeft": 1.0, "mouthSmileRight": 1.0}
LOOK_LEFT = {"eyeLookOutLeft": 1.0, "eyeLookInRight": 1.0}  # the subject looks to their left (+x)


@pytest.fixture(scope="module")
def glb_folder(ict_face_glb_inputs: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``neutral.glb`` (lit), ``neutral_unlit.glb``: the ICT mean face, neutral, uniform SKIN albedo."""
    folder = tmp_path_factory.mktemp("animated-web")
    texture = np.empty((64, 64, 3), np.uint8)
    texture[:] = SKIN
    inputs = ict_face_glb_inputs(np.zeros(10, np.float32), np.zeros(53, np.float32), texture)
    write_face_glb(folder / "neutral.glb", **inputs)
    write_face_glb(folder / "neutral_unlit.glb", unlit=True, **inputs)
    return folder


@pytest.fixture(scope="module")
def web_url(glb_folder: Path, node_modules: Path) -> Iterator[str]:
    """A static server on 127.0.0.1 for the viewer page, three.js and the GLB files."""
    root = glb_folder / "site"
    root.mkdir()
    shutil.copy(WEB / "morph_viewer.html", root)
    (root / "three").symlink_to(node_modules / "three")
    for glb in glb_folder.glob("*.glb"):
        (root / glb.name).symlink_to(glb)

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def driver() -> Iterator[Any]:
    """Headless Chromium with the project's flags and a fresh profile (tests/chromium.py)."""
    with chromium_driver("900,1100") as browser:
        yield browser


def _open(driver: Any, url: str) -> dict:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, 60).until(
        lambda d: d.execute_script("return window.ganfit && (window.ganfit.ready || !!window.ganfit.error)"))
    error = driver.execute_script("return window.ganfit.error")
    assert error is None, f"three.js could not load the GLB: {error}"
    return {m["name"]: m for m in driver.execute_script("return window.ganfit.info")}


def _frame(driver: Any, weights: dict[str, float], light: dict[str, float] | None) -> np.ndarray:
    url = driver.execute_script("return window.ganfit.render(arguments[0], arguments[1])", weights, light)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"), float)


def _foreground(frame: np.ndarray) -> np.ndarray:
    return np.abs(frame - BACKGROUND).max(axis=-1) > 3


def test_three_js_animates_the_morph_targets(driver: Any, web_url: str) -> None:
    info = _open(driver, f"{web_url}/morph_viewer.html?glb=neutral.glb")
    assert set(info) == {"face", "sclera", "iris", "pupil"}
    assert info["face"]["material"] == "MeshStandardMaterial"
    assert {"jawOpen", "mouthSmileLeft", "mouthSmileRight", "browInnerUp"} <= set(info["face"]["targets"])
    assert len(info["face"]["targets"]) >= 50
    assert {"eyeLookOutLeft", "eyeLookInRight"} <= set(info["iris"]["targets"])
    light = {"ambient": float(np.pi) * 0.5, "key": float(np.pi) * 0.6}
    neutral = _frame(driver, {}, light)
    smile = _frame(driver, SMILE, light)
    look = _frame(driver, LOOK_LEFT, light)
    again = _frame(driver, {}, light)
    ARTIFACTS.mkdir(exist_ok=True)
    Image.fromarray(np.concatenate([neutral, smile, look], axis=1).astype(np.uint8)).save(
        ARTIFACTS / "three_morph_targets.png")
    np.testing.assert_array_equal(neutral, again)  # weights reset: the render is repeatable
    face = _foreground(neutral)
    rows = np.flatnonzero(face.any(axis=1))
    assert face.mean() > 0.05, "the face is not in view"
    # jawOpen drops the chin: the lowest face row moves down (the neck stays, so look at the mouth)
    changed = np.abs(smile - neutral).max(axis=-1) > 10
    assert changed.mean() > 0.01, "jawOpen + smile changed nothing"
    ys, xs = np.nonzero(changed)
    height = rows[-1] - rows[0]
    assert rows[0] + 0.45 * height < np.median(ys) < rows[0] + 0.85 * height, "the change is not at the mouth"
    # the mouth opens: background shows through the face's mouth hole
    mouth = (slice(rows[0] + int(0.55 * height), rows[0] + int(0.8 * height)), slice(None))
    assert (~_foreground(smile[mouth])).sum() > (~_foreground(neutral[mouth])).sum() + 50
    # the eyes turn: changes only in the eye band
    eyes_changed = np.abs(look - neutral).max(axis=-1) > 10
    ys = np.nonzero(eyes_changed)[0]
    assert len(ys) > 20, "eyeLook moved nothing"
    assert rows[0] + 0.2 * height < np.median(ys) < rows[0] + 0.5 * height, "the change is not at the eyes"


def _skin_colour(frame: np.ndarray) -> np.ndarray:
    """Median colour of the face's central (skin, frontal) pixels."""
    face = _foreground(frame)
    ys, xs = np.nonzero(face)
    cy, cx = int(np.median(ys)), int(np.median(xs))
    h = (ys.max() - ys.min()) // 10
    patch = frame[cy - 3 * h:cy - 2 * h, cx - h:cx + h]  # the forehead: flat, frontal, no eyes
    return np.median(patch.reshape(-1, 3), axis=0)


def test_three_js_shows_the_albedo_colour(driver: Any, web_url: str) -> None:
    _open(driver, f"{web_url}/morph_viewer.html?glb=neutral_unlit.glb")
    unlit = _skin_colour(_frame(driver, {}, None))
    info = _open(driver, f"{web_url}/morph_viewer.html?glb=neutral.glb")
    assert info["face"]["material"] == "MeshStandardMaterial"
    # a uniform white light of irradiance 1: three.js' ambient light enters the Lambert BRDF with its
    # 1/pi, so intensity pi gives albedo * 1 (the fit's own model: image = albedo * shading)
    lit = _skin_colour(_frame(driver, {}, {"ambient": float(np.pi), "key": 0.0}))
    print(f"albedo {SKIN}, three.js unlit {unlit.tolist()}, lit under irradiance 1 {lit.tolist()}")
    np.testing.assert_allclose(unlit, SKIN, atol=2)  # sRGB texture in, sRGB out: no colour shift
    np.testing.assert_allclose(lit, SKIN, atol=4)  # the sRGB texture is decoded to linear, lit, re-encoded


def _hue(rgb: np.ndarray) -> float:
    return colorsys.rgb_to_hsv(*(np.asarray(rgb) / 255.0))[0]


def test_gradio_model3d_shows_the_albedo_colour(driver: Any, glb_folder: Path) -> None:
    """Gradio's Babylon.js viewer lights with its own bundled environment: measured here, it casts a
    violet tint (a white surface renders about (232, 219, 243)). The unlit file avoids it."""
    import gradio as gr
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    files = ["neutral.glb", "neutral_unlit.glb"]
    with gr.Blocks() as demo:
        for i, name in enumerate(files):
            gr.Model3D(value=str(glb_folder / name), elem_id=f"viewer{i}", label=name, height=360)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                allowed_paths=[str(glb_folder)])
    try:
        driver.set_window_size(900, 1100)
        driver.get(f"http://127.0.0.1:{port}/")
        WebDriverWait(driver, 90).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "canvas")) >= 2)
        time.sleep(8)  # Babylon.js loads both files and its environment, then draws
        page = np.asarray(Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB"), float)
        ratio = driver.execute_script("return window.devicePixelRatio") or 1
        colours = {}
        for i, name in enumerate(files):
            rect = driver.find_element(By.CSS_SELECTOR, f"#viewer{i} canvas").rect
            x0, y0 = int(rect["x"] * ratio), int(rect["y"] * ratio)
            crop = page[y0:y0 + int(rect["height"] * ratio), x0:x0 + int(rect["width"] * ratio)]
            border = np.concatenate([crop[:5].reshape(-1, 3), crop[-5:].reshape(-1, 3)])
            background = np.median(border, axis=0)
            face = np.abs(crop - background).max(axis=-1) > 12
            assert face.mean() > 0.02, f"{name}: the viewer shows no face"
            ys, xs = np.nonzero(face)
            cy, cx = int(np.median(ys)), int(np.median(xs))
            h = (ys.max() - ys.min()) // 10
            colours[name] = np.median(crop[cy - 3 * h:cy - 2 * h, cx - h:cx + h].reshape(-1, 3), axis=0)
        ARTIFACTS.mkdir(exist_ok=True)
        Image.fromarray(page.astype(np.uint8)).save(ARTIFACTS / "gradio_model3d_colour.png")
    finally:
        demo.close()
    lit, unlit = colours["neutral.glb"], colours["neutral_unlit.glb"]
    print(f"albedo {SKIN} hue {_hue(SKIN):.3f}; Model3D lit {lit.tolist()} hue {_hue(lit):.3f}; "
          f"unlit {unlit.tolist()} hue {_hue(unlit):.3f}")
    # unlit: the albedo's hue, and its value within the viewer's tone mapping (Khronos PBR Neutral
    # subtracts up to 0.04 in linear light: about 10 levels at this tone)
    assert abs(_hue(unlit) - _hue(SKIN)) < 0.015
    np.testing.assert_allclose(unlit, SKIN, atol=14)
    assert np.abs(unlit - SKIN).max() < np.abs(lit - SKIN).max()
