"""The app in a real browser (headless Debian Chromium through Selenium): click an example, run a
tiny fit, and check that the 3D viewer draws the mesh (its canvas is not blank).

Needs ``chromium`` and ``chromium-driver`` (``apt-get install -y chromium chromium-driver``).
Without them the test is skipped, except in CI (``CI=true``), where it fails.
Screenshots go to ``artifacts/`` (git-ignored).
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from chromium import chromium_driver, require_browser
from PIL import Image

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
TINY_ITERATIONS = 3
#: Seconds allowed for the page, the first plot update and the finished fit.
PAGE_TIMEOUT_S = 60
FIT_TIMEOUT_S = 150


@pytest.fixture(scope="module")
def app_and_url(tmp_path_factory: pytest.TempPathFactory, app_module: Any, serve_app: Any) -> Any:
    require_browser()
    with serve_app(tmp_path_factory.mktemp("browser-outputs")) as url:
        yield app_module, url


@pytest.fixture()
def driver() -> Iterator[Any]:
    with chromium_driver("1400,1700") as browser:
        yield browser


def _set_number(driver: Any, elem_id: str, value: int) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    selector = f"#{elem_id} input"
    WebDriverWait(driver, PAGE_TIMEOUT_S).until(
        lambda d: any(e.is_displayed() for e in d.find_elements(By.CSS_SELECTOR, selector))
    )
    field = driver.find_element(By.CSS_SELECTOR, selector)
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(str(value))
    field.send_keys(Keys.TAB)


def _open_accordion(driver: Any, label: str, inner_selector: str) -> None:
    """Click the accordion ``label`` until ``inner_selector`` is visible (a click during a re-render
    can be lost)."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def visible(d: Any) -> bool:
        return any(e.is_displayed() for e in d.find_elements(By.CSS_SELECTOR, inner_selector))

    for _ in range(5):
        if visible(driver):
            return
        driver.find_element(By.XPATH, f"//button[.//span[text()='{label}']]").click()
        try:
            WebDriverWait(driver, 3).until(visible)
            return
        except TimeoutException:
            continue
    raise AssertionError(f"accordion {label!r} did not open")


def _element_pixels(driver: Any, element: Any) -> np.ndarray:
    """The element's region of a fresh page screenshot, (H, W, 3) float."""
    page = np.asarray(Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB"), dtype=float)
    ratio = driver.execute_script("return window.devicePixelRatio") or 1
    # viewport coordinates (the screenshot's), not document ones: the page may be scrolled
    rect = driver.execute_script("const r = arguments[0].getBoundingClientRect();"
                                 "return {x: r.left, y: r.top, width: r.width, height: r.height};", element)
    x0, y0 = int(rect["x"] * ratio), int(rect["y"] * ratio)
    x1, y1 = x0 + int(rect["width"] * ratio), y0 + int(rect["height"] * ratio)
    return page[y0:y1, x0:x1]


def test_example_run_shows_the_mesh(app_and_url: Any, driver: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from ganfit_app.ui_support import config_controls
    from ganfit_core.fitting.config import FitConfig

    app, url = app_and_url
    driver.get(url)
    WebDriverWait(driver, PAGE_TIMEOUT_S).until(lambda d: d.find_elements(By.ID, "run"))
    WebDriverWait(driver, PAGE_TIMEOUT_S).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "button.gallery-item")
    )
    driver.find_element(By.CSS_SELECTOR, "button.gallery-item").click()
    WebDriverWait(driver, PAGE_TIMEOUT_S).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#photo img"))

    _open_accordion(driver, "Advanced", f"#{app.control_elem_id('render_size')} input")
    iteration_controls = [c for c in config_controls(FitConfig()) if c.group == "Iterations" and c.default]
    assert iteration_controls, "FitConfig should expose iterations per stage"
    for control in iteration_controls:
        _set_number(driver, app.control_elem_id(control.key), TINY_ITERATIONS)

    start = time.monotonic()
    driver.find_element(By.ID, "run").click()
    WebDriverWait(driver, FIT_TIMEOUT_S, poll_frequency=0.1).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#loss-plot g.mark-line path")
    )
    first_plot_s = time.monotonic() - start
    WebDriverWait(driver, FIT_TIMEOUT_S, poll_frequency=0.2).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#model3d canvas")
    )
    mesh_s = time.monotonic() - start
    status = driver.find_element(By.CSS_SELECTOR, "#status textarea").get_attribute("value")
    assert status.startswith("Done"), status

    canvas = driver.find_element(By.CSS_SELECTOR, "#model3d canvas")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", canvas)
    time.sleep(4)  # Babylon.js loads the GLB and draws a few frames
    pixels = _element_pixels(driver, canvas)
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "browser_run.png"))
    Image.fromarray(pixels.astype(np.uint8)).save(ARTIFACTS / "browser_model3d.png")
    print(f"click → first plot update {first_plot_s:.1f} s, → 3D viewer {mesh_s:.1f} s")
    assert pixels.size > 0, "the 3D canvas is off screen"
    assert pixels.std(axis=(0, 1)).max() > 8.0, "the 3D viewer canvas is blank"

    # The "animate and relight" panel: after the fit it shows the re-rendered face; moving the
    # jawOpen slider (keyboard on the range, as a user would) re-renders it with the mouth open.
    from selenium.webdriver.common.keys import Keys

    pose_img = "#pose-image img"
    WebDriverWait(driver, PAGE_TIMEOUT_S).until(lambda d: d.find_elements(By.CSS_SELECTOR, pose_img))
    image = driver.find_element(By.CSS_SELECTOR, pose_img)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", image)
    before_src = image.get_attribute("src")
    time.sleep(0.5)
    before = _element_pixels(driver, image)
    slider = driver.find_element(By.CSS_SELECTOR, "#pose-jaw input[type=range]")
    slider.click()
    slider.send_keys(*([Keys.ARROW_RIGHT] * 12))
    WebDriverWait(driver, PAGE_TIMEOUT_S, poll_frequency=0.2).until(
        lambda d: d.find_element(By.CSS_SELECTOR, pose_img).get_attribute("src") != before_src)
    time.sleep(0.5)
    after = _element_pixels(driver, driver.find_element(By.CSS_SELECTOR, pose_img))
    driver.save_screenshot(str(ARTIFACTS / "browser_pose_page.png"))
    pair = np.concatenate([before, after], axis=1).astype(np.uint8)
    Image.fromarray(pair).save(ARTIFACTS / "browser_pose.png")
    assert before.shape == after.shape and before.size > 0
    changed = np.abs(after - before).max(axis=-1).mean()
    assert changed > 0.5, "moving jawOpen did not change the re-rendered face"
