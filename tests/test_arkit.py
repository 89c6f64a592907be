"""ICT-FaceKit expression names -> Apple ARKit blendshape names."""

from __future__ import annotations

from pathlib import Path

import pytest

from ganfit_core.model.arkit import ARKIT_COMBINED, ARKIT_MISSING, ARKIT_NAMES, arkit_name, arkit_names


def test_arkit_list_is_apples_52_unique_names() -> None:
    assert len(ARKIT_NAMES) == 52 and len(set(ARKIT_NAMES)) == 52
    assert set(ARKIT_MISSING) | set(ARKIT_COMBINED) <= set(ARKIT_NAMES)


def test_every_ict_shape_maps_and_covers_arkit(ict_model_path: Path) -> None:
    from ganfit_core.model.morphable import load_morphable_model

    ict = load_morphable_model("face", path=ict_model_path).expression_names
    assert len(ict) == 53
    names = arkit_names(ict)
    assert len(set(names)) == 53
    direct = set(names) & set(ARKIT_NAMES)
    halves = {half for pair in ARKIT_COMBINED.values() for half in pair}
    assert all(half in ict for half in halves)
    # every ARKit shape ICT has: 49 one-to-one, 2 as the sum of ICT's halves; only tongueOut missing
    assert direct | set(ARKIT_COMBINED) == set(ARKIT_NAMES) - set(ARKIT_MISSING)
    assert len(direct) == 49
    # the halves keep a clear, side-suffixed name that is not an ARKit name
    assert {arkit_name(h) for h in halves} == {"browInnerUpLeft", "browInnerUpRight", "cheekPuffLeft",
                                              "cheekPuffRight"}
    sided = [n for n, i in zip(names, ict, strict=True) if i.endswith(("_L", "_R"))]
    assert len(sided) == 40 and all(n.endswith(("Left", "Right")) for n in sided)


@pytest.mark.parametrize("bad", ["", "_L", "mouth_Smile_L", "eye_blink"])
def test_malformed_names_raise(bad: str) -> None:
    with pytest.raises(ValueError, match="ICT expression name"):
        arkit_name(bad)


def test_duplicates_raise() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        arkit_names(["jawOpen", "jawOpen"])
