"""``reconstruct``: the one-call API is prepare_target + fit + run_to_end, with options and errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ganfit_core import FitConfig, export_all, fit, prepare_target, reconstruct, run_to_end
from ganfit_core.errors import ConfigError
from ganfit_core.face.errors import NotAnImageError
from ganfit_core.fitting.types import FitResult

ROOT = Path(__file__).resolve().parents[1]
ASTRONAUT = ROOT / "examples" / "astronaut.jpg"
TINY = FitConfig(render_size=64, device="cpu", renderer="torch", texture_prior="simple", rigid_steps=3,
                 shape_steps=3, full_steps=2, detail_steps=0, identity_weight=0.0, content_weight=0.0)


@pytest.fixture(scope="module")
def reconstructed(ict_model_path: Path) -> FitResult:  # noqa: ARG001  (builds the model asset)
    return reconstruct(str(ASTRONAUT), config=TINY.replace(full_steps=7), full_steps=2)


def test_reconstruct_equals_the_pipeline_it_wraps(reconstructed: FitResult) -> None:
    target = prepare_target(ASTRONAUT, resolution=TINY.render_size)
    manual = run_to_end(fit(target, TINY))
    assert reconstructed.config == TINY  # the keyword option overrode the config's full_steps
    assert np.array_equal(reconstructed.vertices, manual.vertices)
    assert np.array_equal(reconstructed.texture, manual.texture)
    assert np.array_equal(reconstructed.face.identity, manual.face.identity)
    assert reconstructed.losses == manual.losses
    assert reconstructed.render.shape == (TINY.render_size, TINY.render_size, 3)


def test_reconstruct_result_exports(reconstructed: FitResult, tmp_path: Path) -> None:
    paths = export_all(reconstructed, tmp_path, eyes=False)
    assert {"glb", "obj", "params", "losses"} <= set(paths)


def test_reconstruct_refuses_bad_options_and_bad_photos(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="render_size"):
        reconstruct(str(ASTRONAUT), config=TINY, render_size=4096)
    with pytest.raises(TypeError):
        reconstruct(str(ASTRONAUT), config=TINY, no_such_option=1)
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    with pytest.raises(NotAnImageError):
        reconstruct(str(bad), config=TINY)
