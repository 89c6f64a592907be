"""The app's streamed UI update as one typed value instead of a 7-tuple."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

__all__ = ["KEEP", "ReconstructUpdate"]


class _Keep:
    """Marker: leave this output as it is (becomes ``gr.skip()``)."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Any = _Keep()


@dataclass(frozen=True)
class ReconstructUpdate:
    """One update of the ``/reconstruct`` outputs, in the order of the endpoint's outputs.

    Each field is a new value, None (clear it) or :data:`KEEP` (unchanged).

    Attributes:
        plot: loss table (pandas DataFrame: step, loss, term) for the LinePlot.
        preview: (S, S, 3) uint8 rendering over the crop.
        status: the status line.
        texture: (H, W, 3) uint8 UV texture.
        downloads: file paths offered for download.
        timings: per-stage seconds table.
        glb_path: path of the GLB (for ``/show_model``).

    Example:
        >>> ReconstructUpdate(status="Finding the face…").outputs(skip="S")
        ('S', 'S', 'Finding the face…', 'S', 'S', 'S', 'S')
    """

    plot: Any = KEEP
    preview: Any = KEEP
    status: Any = KEEP
    texture: Any = KEEP
    downloads: Any = KEEP
    timings: Any = KEEP
    glb_path: Any = KEEP

    def outputs(self, skip: Any) -> tuple:
        """The gradio output tuple, :data:`KEEP` replaced by ``skip`` (``gr.skip()``)."""
        values = (getattr(self, f.name) for f in fields(self))
        return tuple(skip if value is KEEP else value for value in values)
