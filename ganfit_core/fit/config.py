"""Settings of one fit (:class:`FitConfig`): stages, learning rates, loss weights, resolution.

A frozen, flat dataclass of JSON scalars, so that it saves to ``params.json`` and every field
becomes a command-line flag (``ganfit_core/cli/fit.py`` generates them from :func:`config_fields`).
Learning rates are per parameter group, in the group's own units (radians, pixels, log units,
standard deviations); later stages multiply the pose/shape rates by ``refine_lr_scale``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FitConfig", "ConfigError", "config_fields", "FIELD_HELP"]


class ConfigError(ValueError):
    """A FitConfig field has an invalid value or an unknown name."""


def _f(default: Any, help_text: str) -> Any:
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class FitConfig:
    """Everything that controls a fit.

    Defaults are the app's and CLI's default fit, chosen with ``bench/fit.py`` and visual checks
    on photos: about 15 s of CPU time (one thread) at 224 px, i.e. within 30 s on a 2-core CPU.
    The texture regulariser (0.1) keeps unconstrained texels (hair line, ears, neck) near the prior's
    mean; the detail stage (30 steps) adds per-texel photo detail inside the face-skin mask.
    """

    # --- model, prior, devices -------------------------------------------------------------------
    region: str = _f("face", "morphable-model region: narrow_face | face | face_neck | full")
    num_identity: int = _f(80, "number of identity coefficients fitted (first K of 100)")
    texture_prior: str = _f("pca", "texture prior: simple | pca | gan")
    render_size: int = _f(224, "side of the square fitting render (and target), px")
    device: str = _f("auto", "auto | cpu | cuda")
    renderer: str = _f("auto", "renderer backend: auto | torch | nvdiffrast")
    seed: int = _f(0, "random seed (same seed, same device: same result)")
    preview_every: int = _f(10, "preview image every N steps of the rendering stages (full, detail) "
                            "and at every stage end (0: stage ends only)")
    initial_fov_deg: float = _f(40.0, "initial field of view across the photo's longer side, degrees")

    # --- stages: steps ---------------------------------------------------------------------------
    rigid_steps: int = _f(60, "stage 1 (pose + focal from landmarks) iterations")
    shape_steps: int = _f(100, "stage 2 (identity + expression from landmarks) iterations")
    full_steps: int = _f(80, "stage 3 (everything, photometric + identity + content) iterations")
    detail_steps: int = _f(30, "stage 4 (per-texel detail layer) iterations; 0 skips it")

    # --- learning rates (Adam) -------------------------------------------------------------------
    lr_rotation: float = _f(0.03, "rotation (axis-angle, rad) learning rate")
    lr_translation: float = _f(1.0, "image-plane translation (px at the face's depth) learning rate")
    lr_depth: float = _f(0.03, "log-depth learning rate")
    lr_focal: float = _f(0.01, "log-focal-length learning rate")
    lr_identity: float = _f(0.1, "identity coefficients (std units) learning rate")
    lr_expression: float = _f(0.03, "expression weights ([0, 1]) learning rate")
    lr_texture: float = _f(0.1, "texture latent learning rate")
    lr_light: float = _f(0.05, "spherical-harmonics lighting learning rate")
    lr_detail: float = _f(0.02, "detail layer learning rate")
    refine_lr_scale: float = _f(0.3, "multiplier of the pose/shape learning rates in stages 2-3")

    # --- loss weights ----------------------------------------------------------------------------
    landmark_weight: float = _f(1.0, "landmark loss weight (normalised by face size squared, x1e3 inside)")
    contour_weight: float = _f(0.5, "relative weight of the 17 jawline landmarks")
    sliding_window: int = _f(2, "jawline landmarks may slide this many candidates either way (0: fixed)")
    pixel_weight: float = _f(1.0, "masked robust pixel loss weight")
    identity_weight: float = _f(0.3, "identity loss (1 - cos of recogniser embeddings) weight")
    content_weight: float = _f(0.1, "content loss (recogniser activations) weight")
    identity_reg_weight: float = _f(1e-3, "||identity||^2 regulariser weight")
    expression_reg_weight: float = _f(1e-3, "||expression||^2 regulariser weight")
    texture_reg_weight: float = _f(0.1, "texture prior regulariser weight")
    focal_reg_weight: float = _f(1e-2, "(log focal - initial)^2 regulariser weight")
    detail_smooth_weight: float = _f(10.0, "detail layer smoothness weight")
    detail_symmetry_weight: float = _f(0.1, "detail layer left/right symmetry weight")
    detail_resolution: int = _f(256, "side of the detail layer (UV texels)")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
                raise ConfigError(f"{f.name}: expected a value >= 0, got {value}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"device: expected auto | cpu | cuda, got {self.device!r}")
        if not 1 <= self.num_identity <= 100:
            raise ConfigError(f"num_identity: expected 1..100, got {self.num_identity}")
        if self.render_size < 32:
            raise ConfigError(f"render_size: expected >= 32, got {self.render_size}")
        if not 5.0 <= self.initial_fov_deg <= 120.0:
            raise ConfigError(f"initial_fov_deg: expected 5..120, got {self.initial_fov_deg}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FitConfig:
        """Rebuild from :meth:`to_dict` output; unknown keys raise :class:`ConfigError`.

        Example:
            >>> FitConfig.from_dict(FitConfig(full_steps=5).to_dict()).full_steps
            5
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown FitConfig fields: {unknown}")
        return cls(**data)

    def replace(self, **changes: Any) -> FitConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    @property
    def stages(self) -> tuple[tuple[str, int], ...]:
        """The stages that run, in order, as (name, steps); stages with 0 steps are skipped."""
        all_stages = (("rigid", self.rigid_steps), ("shape", self.shape_steps),
                      ("full", self.full_steps), ("detail", self.detail_steps))
        return tuple((name, steps) for name, steps in all_stages if steps > 0)


def config_fields() -> list[dataclasses.Field]:
    """The dataclass fields of :class:`FitConfig`, in declaration order (for CLI generation)."""
    return list(dataclasses.fields(FitConfig))


FIELD_HELP: dict[str, str] = {f.name: f.metadata.get("help", "") for f in dataclasses.fields(FitConfig)}
