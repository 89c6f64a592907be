"""One face from several photos: shared identity and albedo, per-photo pose/expression/light
(engine, API and CLI); one photo stays the single-photo fit."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
TINY = {"render_size": 96, "rigid_steps": 5, "shape_steps": 5, "full_steps": 2, "detail_steps": 1,
        "device": "cpu"}


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path, ict_model_path: Path) -> list[Path]:
    """The astronaut and her mirror image (a second view of the same face)."""
    photo = REPO / "examples" / "astronaut.jpg"
    if not photo.is_file() or not (shared_dir / "face-api").is_dir():
        pytest.skip("examples/astronaut.jpg or the face-api source is missing")
    mirrored = tmp_path_factory.mktemp("views") / "astronaut_mirrored.png"
    Image.open(photo).transpose(Image.FLIP_LEFT_RIGHT).save(mirrored)
    return [photo, mirrored]


def test_two_photos_share_identity_and_albedo(photos: list[Path]) -> None:
    from ganfit_core import FitConfig, fit, prepare_target, run_to_end

    config = FitConfig(**TINY)
    targets = [prepare_target(p, resolution=config.render_size) for p in photos]
    joint = run_to_end(fit(targets, config))
    assert len(joint.other_views) == 1 and joint.other_views[0].other_views == ()
    other = joint.other_views[0]
    np.testing.assert_array_equal(joint.face.identity, other.face.identity)
    np.testing.assert_array_equal(joint.texture, other.texture)
    np.testing.assert_array_equal(joint.face.texture_latent, other.face.texture_latent)
    # per photo: its own pose (the mirror turns the head the other way), light and render
    assert not np.allclose(joint.pose.rotation, other.pose.rotation)
    assert not np.array_equal(joint.face.sh, other.face.sh)
    assert not np.array_equal(joint.render, other.render)
    np.testing.assert_array_equal(other.target_landmarks, targets[1].landmarks)
    single = run_to_end(fit(targets[0], config))
    listed = run_to_end(fit(targets[:1], config))
    assert listed.other_views == () and np.array_equal(listed.vertices, single.vertices)
    np.testing.assert_array_equal(listed.texture, single.texture)


def test_api_and_cli_take_several_photos(photos: list[Path], tmp_path: Path) -> None:
    from ganfit_core import reconstruct
    from ganfit_core.cli import fit as cli
    from ganfit_core.errors import UserInputError

    result = reconstruct([str(p) for p in photos], **TINY)
    assert len(result.other_views) == 1
    with pytest.raises(UserInputError, match="non-empty"):
        reconstruct([], **TINY)
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    out = tmp_path / "out"
    steps = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]
    argv = [*map(str, photos), "--out", str(out), "--quiet", "--save-render", *steps]
    code = cli.run(parser.parse_args(argv))
    assert code == cli.EXIT_OK
    assert {"mesh.glb", "params.json", "params_photo2.json", "render.png", "render_photo2.png"} <= \
        {p.name for p in out.iterdir()}
    first, second = (json.loads((out / name).read_text())["params"]
                     for name in ("params.json", "params_photo2.json"))
    assert first["identity"] == second["identity"] and first["rotation"] != second["rotation"]
