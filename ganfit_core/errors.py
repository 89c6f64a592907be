"""The exception tree of ganfit: one root, user-facing errors apart from internal ones.

::

    GanfitError (Exception)
    ├── UserInputError (also ValueError): the caller's input is unusable; the message says how to fix it
    │   ├── ImageLoadError (ganfit_core.face.errors): unreadable / empty / oversized photo
    │   ├── FaceError (ganfit_core.face.errors): no face, face too small, bad face index
    │   └── ConfigError: a FitConfig setting out of its range or unknown
    │       └── DeviceUnavailableError: ``device="cuda"`` on a machine without CUDA
    ├── FitError (also RuntimeError): the fit could not run or ended without a result (internal)
    └── FitCancelled: the caller's ``cancel`` event stopped the fit

Front ends (app, CLI) show a :class:`UserInputError`'s message as the user's mistake; anything else
is an internal error (logged, shown as a generic message). Other packages' errors
(``ganfit_core.assets.AssetError``, ``ganfit_core.texture.TexturePriorError``) are internal too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["GanfitError", "UserInputError", "ConfigError", "DeviceUnavailableError", "FitError",
           "FitCancelled", "is_user_error", "check_shape"]


class GanfitError(Exception):
    """Root of every error ganfit raises on purpose."""


class UserInputError(GanfitError, ValueError):
    """The caller's input (photo, face choice, setting) is unusable; the message is for the user."""


class ConfigError(UserInputError):
    """A FitConfig field has an invalid value or an unknown name."""


class DeviceUnavailableError(ConfigError):
    """The requested compute device does not exist on this machine."""


class FitError(GanfitError, RuntimeError):
    """A fit could not run or ended without a result (a bug or a broken component, not the user's input)."""


class FitCancelled(GanfitError):  # noqa: N818  (the name reads as the event it is)
    """Raised by :func:`ganfit_core.fitting.fit` when its ``cancel`` event is set (checked between steps)."""


def is_user_error(exc: BaseException) -> bool:
    """True when ``exc``'s message describes the user's own mistake (a :class:`UserInputError`).

    Example:
        >>> is_user_error(ConfigError("steps: expected 0..1000")), is_user_error(FitError("bug"))
        (True, False)
    """
    return isinstance(exc, UserInputError)


def check_shape(tensor: Any, expected: str | Sequence[int | str], name: str) -> None:
    """Raise ``ValueError`` (``TypeError`` for a non-tensor) unless ``tensor`` has the ``expected`` shape.

    ``expected`` is a space-separated string (``"B N 3"``) or a sequence; each entry is an int (exact
    size), a name (a free size; a repeated name must have the same size everywhere in this call) or
    ``"*"`` (any size). For array inputs (torch tensors, NumPy arrays) only ``.shape`` is read.
    A shape mismatch is a caller's bug, so it is a plain ``ValueError``, not a :class:`UserInputError`.

    Example:
        >>> import numpy as np
        >>> check_shape(np.zeros((2, 3)), "B 3", "x")
        >>> check_shape(np.zeros((2, 4)), ("B", 3), "x")
        Traceback (most recent call last):
        ...
        ValueError: x: expected shape (B, 3), got (2, 4)
    """
    if not hasattr(tensor, "shape"):
        raise TypeError(f"{name}: expected a tensor, got {type(tensor).__name__}")
    wants = [int(e) if isinstance(e, str) and e.isdigit() else e
             for e in (expected.split() if isinstance(expected, str) else expected)]
    shape = tuple(int(s) for s in tensor.shape)
    wanted = "(" + ", ".join(str(e) for e in wants) + ")"
    named: dict[str, int] = {}
    ok = len(shape) == len(wants)
    for size, want in zip(shape, wants, strict=False):
        if isinstance(want, str):
            ok &= want == "*" or named.setdefault(want, size) == size
        else:
            ok &= size == want
    if not ok:
        raise ValueError(f"{name}: expected shape {wanted}, got {shape}")
