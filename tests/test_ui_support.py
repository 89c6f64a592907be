"""The app's widget-free helpers: downloads packaging, error classification, typed updates, controls."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from ganfit_app.ui_support import apply_controls, config_controls, package_downloads, user_message
from ganfit_app.updates import KEEP, ReconstructUpdate
from ganfit_core.errors import ConfigError, FitError, UserInputError
from ganfit_core.face.errors import FaceTooSmallError, NotAnImageError
from ganfit_core.fitting.config import FIELD_RANGES, FitConfig


def _files(folder: Path, names: list[str]) -> dict[str, Path]:
    paths = {}
    for name in names:
        path = folder / name
        path.write_bytes(name.encode() * 3)
        paths[Path(name).stem + Path(name).suffix] = path
    return paths


def test_package_downloads_groups_the_exported_files(tmp_path: Path) -> None:
    exported = _files(tmp_path, ["mesh.glb", "mesh.obj", "mesh.mtl", "texture.png", "losses.json",
                                 "params.json"])
    downloads = package_downloads(exported, tmp_path)
    assert downloads.glb == tmp_path / "mesh.glb"
    assert downloads.params_json == tmp_path / "params.json"  # not losses.json
    with zipfile.ZipFile(downloads.obj_zip) as archive:
        assert sorted(archive.namelist()) == ["mesh.mtl", "mesh.obj", "texture.png"]
        assert archive.read("mesh.obj") == b"mesh.obj" * 3
    assert downloads.paths() == [str(tmp_path / "mesh.glb"), str(downloads.obj_zip),
                                 str(tmp_path / "params.json")]


def test_package_downloads_without_obj_or_glb(tmp_path: Path) -> None:
    downloads = package_downloads(_files(tmp_path, ["mesh.glb"]), tmp_path)
    assert downloads.obj_zip is None and downloads.params_json is None
    assert downloads.paths() == [str(tmp_path / "mesh.glb")]
    with pytest.raises(ValueError, match="no .glb"):
        package_downloads(_files(tmp_path, ["mesh.obj"]), tmp_path)


def test_only_user_errors_are_shown_as_the_users_mistake() -> None:
    assert user_message(NotAnImageError("x is not an image")) == "x is not an image"
    assert user_message(FaceTooSmallError("the face is 40 px")) == "the face is 40 px"
    assert user_message(ConfigError("render_size: expected 64..512")) == "render_size: expected 64..512"
    for internal in (FitError("bug"), ValueError("shape mismatch"), RuntimeError("boom"), KeyError("k")):
        assert user_message(internal) is None, internal  # logged, generic message
    assert issubclass(NotAnImageError, UserInputError) and issubclass(NotAnImageError, ValueError)


def test_reconstruct_update_outputs_in_endpoint_order() -> None:
    update = ReconstructUpdate(plot=None, status="Done", glb_path="/x.glb")
    assert update.outputs(skip="S") == (None, "S", "Done", "S", "S", "S", "/x.glb", "S")
    assert ReconstructUpdate().outputs(skip=0) == (0,) * 8
    assert repr(KEEP) == "KEEP"


def test_controls_carry_fitconfig_ranges_and_out_of_range_is_a_config_error() -> None:
    controls = config_controls(FitConfig())
    by_key = {c.key: c for c in controls}
    assert (by_key["detail_resolution"].minimum, by_key["detail_resolution"].maximum) == \
        FIELD_RANGES["detail_resolution"]
    values = [None] * len(controls)
    values[list(by_key).index("detail_resolution")] = 0
    with pytest.raises(ConfigError, match="detail_resolution"):
        apply_controls(FitConfig(), controls, values)
    values[list(by_key).index("detail_resolution")] = 2.5
    with pytest.raises(ConfigError, match="whole number"):
        apply_controls(FitConfig(), controls, values)


def test_the_gan_prior_is_offered_only_when_its_file_resolves(tmp_path: Path, monkeypatch) -> None:
    from ganfit_app.ui_support import texture_prior_choices

    monkeypatch.setenv("GANFIT_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty Hugging Face cache
    assert "gan" not in texture_prior_choices() and "simple" in texture_prior_choices()
    (tmp_path / "texture_gan.safetensors").write_bytes(b"x")
    assert "gan" in texture_prior_choices()
