"""``python -m ganfit_core fit``: flags generated from FitConfig, exit codes, output files."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganfit_core.cli import fit as cli
from ganfit_core.fitting.config import FitConfig

REPO = Path(__file__).resolve().parents[1]


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(argv)


def test_every_config_field_is_a_flag(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    text = parser.format_help()
    for field in dataclasses.fields(FitConfig):
        assert "--" + field.name.replace("_", "-") in text
    assert "130" in text and "exit codes" in text
    args = _parse(["p.jpg", "--out", str(tmp_path), "--full-steps", "7", "--identity-weight", "0.5",
                   "--device", "cpu", "--texture-prior", "simple"])
    config = cli.config_from_args(args)
    assert config == FitConfig(full_steps=7, identity_weight=0.5, device="cpu", texture_prior="simple")


def test_config_file_then_flags(tmp_path: Path) -> None:
    path = tmp_path / "params.json"
    path.write_text(json.dumps({"config": FitConfig(full_steps=3, seed=5).to_dict()}))
    config = cli.config_from_args(_parse(["p.jpg", "--out", "o", "--config", str(path), "--seed", "9"]))
    assert config.full_steps == 3 and config.seed == 9


def test_missing_photo_exit_code(tmp_path: Path) -> None:
    assert cli.run(_parse([str(tmp_path / "nope.jpg"), "--out", str(tmp_path)])) == cli.EXIT_BAD_INPUT


def test_bad_config_exit_code(tmp_path: Path) -> None:
    assert cli.run(_parse(["x.jpg", "--out", str(tmp_path), "--lr-texture", "-1"])) == cli.EXIT_BAD_INPUT


def test_not_an_image_exit_code(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    assert cli.run(_parse([str(bad), "--out", str(tmp_path / "out")])) == cli.EXIT_BAD_INPUT


def test_no_face_exit_code(tmp_path: Path, shared_dir: Path) -> None:
    if not (shared_dir / "face-api").is_dir():
        pytest.skip(f"face-api weights source not found under {shared_dir}")
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((200, 200, 3), 127, np.uint8)).save(blank)
    assert cli.run(_parse([str(blank), "--out", str(tmp_path / "out"), "--quiet"])) == cli.EXIT_BAD_INPUT


def test_fit_writes_outputs(tmp_path: Path, shared_dir: Path, ict_model_path: Path) -> None:
    photo = REPO / "examples" / "astronaut.jpg"
    if not photo.is_file() or not (shared_dir / "face-api").is_dir():
        pytest.skip("examples/astronaut.jpg or the face-api source is missing")
    out = tmp_path / "out"
    steps = ["--rigid-steps", "5", "--shape-steps", "5", "--full-steps", "2", "--detail-steps", "1"]
    code = cli.run(_parse([str(photo), "--out", str(out), "--quiet", "--render-size", "96", *steps,
                           "--device", "cpu", "--save-loss-plot", "--save-render"]))
    assert code == cli.EXIT_OK
    names = {"mesh.glb", "mesh.obj", "mesh.mtl", "texture.png", "params.json", "losses.json", "losses.png",
             "render.png"}
    assert names <= {p.name for p in out.iterdir()}
    params = json.loads((out / "params.json").read_text())
    assert params["config"]["render_size"] == 96 and len(params["params"]["expression"]) == 53
    quality = params["quality"]
    assert quality["status"] in ("good", "doubtful") and isinstance(quality["reasons"], list)
    iris = params["params"]["iris_rgb"]
    assert iris is None or (len(iris) == 3 and all(0.0 <= c <= 1.0 for c in iris))
