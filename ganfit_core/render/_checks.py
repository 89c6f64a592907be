"""Input validation helpers for the renderer (real exceptions with expected-vs-got messages)."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def check_shape(tensor: torch.Tensor, expected: Sequence[int | str], name: str) -> None:
    """Raise ``ValueError`` unless ``tensor`` has the given shape.

    ``expected`` holds ints (exact sizes) or strings (named, free sizes; a repeated name must have
    the same size everywhere it appears in this call).

    Example:
        >>> check_shape(torch.zeros(2, 3), ("B", 3), "x")
        >>> check_shape(torch.zeros(2, 4), ("B", 3), "x")
        Traceback (most recent call last):
        ...
        ValueError: x: expected shape (B, 3), got (2, 4)
    """
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(tensor).__name__}")
    shape = tuple(tensor.shape)
    wanted = "(" + ", ".join(str(e) for e in expected) + ")"
    if len(shape) != len(expected):
        raise ValueError(f"{name}: expected shape {wanted}, got {shape}")
    named: dict[str, int] = {}
    for size, want in zip(shape, expected, strict=True):
        if isinstance(want, str):
            if named.setdefault(want, size) != size:
                raise ValueError(f"{name}: expected shape {wanted}, got {shape}")
        elif size != want:
            raise ValueError(f"{name}: expected shape {wanted}, got {shape}")
