"""The error tree (user-facing vs internal) and the one shape checker."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganfit_core.assets import AssetError
from ganfit_core.errors import (
    ConfigError,
    DeviceUnavailableError,
    FitCancelled,
    FitError,
    GanfitError,
    UserInputError,
    check_shape,
    is_user_error,
)
from ganfit_core.face.errors import FaceError, FaceIndexError, ImageLoadError, NotAnImageError


def test_user_errors_are_value_errors_under_one_root() -> None:
    user_errors = (ImageLoadError, NotAnImageError, FaceError, FaceIndexError, ConfigError,
                   DeviceUnavailableError)
    for cls in user_errors:
        assert issubclass(cls, UserInputError) and issubclass(cls, ValueError)
        assert issubclass(cls, GanfitError)
        assert is_user_error(cls("x"))
    for cls in (FitError, FitCancelled):
        assert issubclass(cls, GanfitError) and not issubclass(cls, UserInputError)
        assert not is_user_error(cls("x"))
    assert issubclass(FitError, RuntimeError)  # callers catching RuntimeError keep working
    assert not is_user_error(AssetError("missing file")) and not is_user_error(ValueError("internal"))


def test_check_shape_names_sizes_and_wildcards() -> None:
    check_shape(torch.zeros(2, 5, 3), "B N 3", "points")
    check_shape(np.zeros((4, 4)), ("S", "S"), "square")
    check_shape(torch.zeros(2, 7), "B *", "any")
    with pytest.raises(ValueError, match=r"points: expected shape \(B, N, 3\), got \(2, 5, 2\)"):
        check_shape(torch.zeros(2, 5, 2), "B N 3", "points")
    with pytest.raises(ValueError, match="square"):
        check_shape(np.zeros((4, 5)), "S S", "square")  # a repeated name must match
    with pytest.raises(ValueError, match="rank"):
        check_shape(torch.zeros(3), "B 3", "rank")
    with pytest.raises(TypeError, match="tensor"):
        check_shape([1, 2, 3], "N", "list")
