"""Draw a fit's loss curves into a PNG with PIL (no plotting dependency)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

from ganfit_core.fitting.types import StepRecord

__all__ = ["draw_loss_plot"]

_COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
            (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207), (0, 0, 0), (174, 199, 232))


def draw_loss_plot(records: Sequence[StepRecord], path: str | Path, *,
                   size: tuple[int, int] = (900, 500)) -> Path:
    """Plot every loss term of ``records`` (FitResult.history) against the step, log10 y axis.

    Stage changes are drawn as vertical grey lines; ``total`` is drawn thicker.

    Example:
        >>> import tempfile, os
        >>> h = [StepRecord(i, "rigid", {"total": 1.0 / i, "landmark": 1.0 / i}) for i in range(1, 5)]
        >>> p = draw_loss_plot(h, os.path.join(tempfile.mkdtemp(), "l.png"))
        >>> Image.open(p).size
        (900, 500)
    """
    history = [{"step": r.step, "stage": r.stage, **r.losses} for r in records]
    width, height = size
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    left, right, top, bottom = 60, width - 160, 20, height - 40
    terms = [k for k in (history[0] if history else {}) if k not in ("step", "stage")]
    values = [v for h in history for k, v in h.items() if k in terms and isinstance(v, float) and v > 0
              and math.isfinite(v)]
    draw.rectangle([left, top, right, bottom], outline="black")
    if not values:
        draw.text((left + 10, top + 10), "no losses to plot", fill="black")
        image.save(path)
        return Path(path)
    terms = sorted({k for h in history for k in h if k not in ("step", "stage")}, key=lambda k: k != "total")
    lo, hi = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
    hi = max(hi, lo + 1)
    first, last = history[0]["step"], max(history[-1]["step"], history[0]["step"] + 1)

    def xy(step: float, value: float) -> tuple[float, float]:
        x = left + (step - first) / (last - first) * (right - left)
        y = bottom - (math.log10(value) - lo) / (hi - lo) * (bottom - top)
        return x, y

    for decade in range(lo, hi + 1):
        _, y = xy(first, 10.0**decade)
        draw.line([left, y, right, y], fill=(230, 230, 230))
        draw.text((5, y - 6), f"1e{decade}", fill="black")
    for prev, cur in zip(history, history[1:], strict=False):
        if cur["stage"] != prev["stage"]:
            x, _ = xy(cur["step"], 1.0)
            draw.line([x, top, x, bottom], fill=(180, 180, 180))
            draw.text((x + 3, top + 3), cur["stage"], fill=(120, 120, 120))
    for i, term in enumerate(terms):
        colour = _COLOURS[i % len(_COLOURS)]
        points = [xy(h["step"], h[term]) for h in history
                  if isinstance(h.get(term), float) and math.isfinite(h[term]) and h[term] > 0]
        if len(points) > 1:
            draw.line(points, fill=colour, width=3 if term == "total" else 1)
        draw.line([right + 10, top + 10 + 16 * i, right + 30, top + 10 + 16 * i], fill=colour, width=3)
        draw.text((right + 35, top + 4 + 16 * i), term, fill="black")
    draw.text(((left + right) // 2 - 15, bottom + 12), "step", fill="black")
    image.save(path)
    return Path(path)
