"""Headless Chromium for the browser tests: Debian's ``chromium`` + ``chromium-driver`` with the
project's flags and a fresh profile (``tests/`` is on ``sys.path``, see conftest.py)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")


def require_browser() -> None:
    """Skip (fail under CI=true) unless Chromium and its driver are installed."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        message = (
            f"headless browser missing ({', '.join(missing)}): apt-get install -y chromium chromium-driver"
        )
        if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
            pytest.fail(message + " (required in CI)")
        pytest.skip(message)


@contextlib.contextmanager
def chromium_driver(window_size: str) -> Iterator[Any]:
    """A selenium Chrome driver (``window_size`` "W,H" px) on a fresh profile, quit and removed on exit."""
    require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in (*CHROMIUM_FLAGS, f"--window-size={window_size}"):
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="ganfit-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.binary_location = str(CHROMIUM)
    browser = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)
