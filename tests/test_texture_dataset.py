"""The UV data set: file round trip, identity split, extraction from real photos."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from ganfit_core.texture.dataset import (
    heldout_stems,
    identity_of,
    list_photos,
    load_uv_dataset,
    save_uv_dataset,
    synthetic_uv_dataset,
)

SOURCE = Path(os.environ.get("GANFIT_SOURCE_DIR", Path(__file__).resolve().parents[2] / "shared"))
SOURCE = SOURCE / "london-faces"


def test_save_load_round_trip(tmp_path) -> None:
    data = synthetic_uv_dataset(5, 16)
    save_uv_dataset(data, tmp_path / "uv_textures.safetensors")
    back = load_uv_dataset(tmp_path)
    np.testing.assert_array_equal(back.textures, data.textures)
    assert back.stems == data.stems and back.info["source"] == "synthetic"
    train, held = back.split()
    assert len(train) == 5 and len(held) == 0


def test_heldout_split_keeps_identities_whole() -> None:
    held = heldout_stems()
    assert len(held) >= 10
    ids = {identity_of(s) for s in held}
    london = {s.split("_")[0] for s in held if "_" in s}
    for number in london:  # both the neutral and the smiling photo of a held-out person
        assert f"{number}_03" in held and f"{number}_08" in held
    assert len(ids) == 22


@pytest.mark.skipif(not SOURCE.is_dir(), reason=f"london-faces photos not found at {SOURCE}")
def test_extract_two_photos_gives_aligned_textures() -> None:
    from ganfit_core.pipelines.uv_extract import extract_dataset

    photos = list_photos(SOURCE)
    assert len(photos) == 204
    data = extract_dataset(SOURCE, resolution=64, limit=2)
    assert data.textures.shape == (2, 64, 64, 3) and data.stems == ("001_03", "002_03")
    assert max(data.info["fit_rms_px"]) < 30.0  # photo px; faces are about 450 px wide
    seen = data.weights > 128
    assert seen.mean() > 0.2
    # Skin is neither black nor saturated where the photo saw it well.
    skin = data.textures[seen].astype(float) / 255.0
    assert 0.25 < skin.mean() < 0.85


def test_texture_package_never_imports_the_fitter() -> None:
    """Layering (#16): the prior's data pipeline that needs a fit lives in ganfit_core.pipelines."""
    import ast

    package = Path(__file__).resolve().parents[1] / "ganfit_core" / "texture"
    above = ("ganfit_core.fitting", "ganfit_core.fit", "ganfit_core.target", "ganfit_core.pipelines",
             "ganfit_core.api")
    prefixes = tuple(a + "." for a in above)
    offenders = []
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name}: {n}" for n in names if n in above or n.startswith(prefixes)]
    assert not offenders, offenders
