"""Settings of one fit (:class:`FitConfig`): stages, learning rates, loss weights, resolution.

A frozen, flat dataclass of JSON scalars, so that it saves to ``params.json`` and every field
becomes a command-line flag (``ganfit_core/cli/fit.py`` generates them from :func:`config_fields`).
Learning rates are per parameter group, in the group's own units (radians, pixels, log units,
standard deviations); later stages multiply the pose/shape rates by ``refine_lr_scale``.

One place for every limit: each numeric field declares its accepted range in its metadata
(``FIELD_RANGES``), each choice field is a ``typing.Literal`` (``FIELD_CHOICES``); ``__post_init__``
enforces both, so the API, the CLI (flags and ``choices=``) and the app (sliders, dropdowns) all get
the same limits. The ranges keep the worst accepted combination within ~2 GB of memory on a CPU
(README "Resource bounds").
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from ganfit_core.errors import ConfigError
from ganfit_core.model.layout import Region

TexturePriorName = Literal["simple", "pca", "gan"]
DeviceName = Literal["auto", "cpu", "cuda"]  # "cuda:N" is accepted too
RendererName = Literal["auto", "torch", "nvdiffrast"]
ExpressionBounds = Literal["real", "full"]

__all__ = ["FitConfig", "ConfigError", "config_fields", "FIELD_HELP", "FIELD_RANGES", "FIELD_CHOICES",
           "Region", "TexturePriorName", "DeviceName", "RendererName", "ExpressionBounds"]


def _f(default: Any, help_text: str, low: float | None = None, high: float | None = None) -> Any:
    """A field with its help text and, for numbers, its accepted range ``[low, high]``."""
    metadata: dict[str, Any] = {"help": help_text}
    if low is not None:
        metadata.update(min=low, max=high)
    return field(default=default, metadata=metadata)


_STEPS = (0, 1000)
_WEIGHT = (0.0, 100.0)
_LR = (0.0, 1.0)


@dataclass(frozen=True)
class FitConfig:
    """Everything that controls a fit.

    Defaults are the app's and CLI's default fit, chosen with ``bench/fit.py`` and visual checks
    on photos: about 15 s of CPU time (one thread) at 224 px, i.e. within 30 s on a 2-core CPU.
    The texture regulariser (0.01; a typical face of the 64-mode PCA prior has ``|z|^2`` about 50,
    and 0.1 pulled every albedo back to the light mean face, darker skin most) keeps the latent
    plausible; the texture starts from the prior fitted to the photo's visible skin
    (``texture_init_from_photo``); the detail stage (30 steps) adds per-texel photo detail on the
    skin texels the photo shows (``detail_skin_mask``). The exposure prior (``light_reg_weight``)
    keeps the face's mean shading near the level the texture prior was built at, so a subject's skin
    tone goes into the albedo rather than into the light.
    """

    # --- model, prior, devices -------------------------------------------------------------------
    region: Region = _f("face", "morphable-model region: narrow_face | face | face_neck | full")
    num_identity: int = _f(80, "number of identity coefficients fitted (first K of 100)", 1, 100)
    texture_prior: TexturePriorName = _f("pca", "texture prior: simple | pca | gan")
    render_size: int = _f(224, "side of the square fitting render (and target), px", 64, 512)
    device: DeviceName | str = _f("auto", "auto | cpu | cuda (or cuda:N)")
    renderer: RendererName = _f("auto", "renderer backend: auto | torch | nvdiffrast")
    seed: int = _f(0, "random seed (same seed, same device: same result)", 0, 2**32 - 1)
    preview_every: int = _f(10, "preview image every N steps of the rendering stages (full, detail) "
                            "and at every stage end (0: stage ends only)", 0, 1000)
    initial_fov_deg: float = _f(40.0, "initial field of view across the photo's longer side, degrees "
                                "(the centre of the focal prior; the start when focal_hypotheses is 0)",
                                5.0, 120.0)

    # --- camera: focal length and start pose (issue #13) ---------------------------------------
    focal_hypotheses: int = _f(6, "focal lengths tried at the start (fields of view evenly spaced in "
                               "log-focal over fov_min_deg..fov_max_deg, each from several head "
                               "rotations); the best landmark fit wins. 0: start at initial_fov_deg. "
                               "A focal length from EXIF is used instead when the photo has one", 0, 16)
    fov_min_deg: float = _f(10.0, "narrowest field of view tried (portrait lens), degrees", 2.0, 60.0)
    fov_max_deg: float = _f(75.0, "widest field of view tried (phone selfie), degrees", 60.0, 150.0)
    focal_prior_weight: float = _f(0.0, "weight of log(focal / initial focal)^2 when choosing among the "
                                   "focal hypotheses", *_WEIGHT)
    search_steps: int = _f(50, "steps of each phase (rigid, then shape) of the hypothesis search", 1, 1000)

    # --- stages: steps ---------------------------------------------------------------------------
    rigid_steps: int = _f(60, "stage 1 (pose + focal from landmarks) iterations", *_STEPS)
    shape_steps: int = _f(100, "stage 2 (identity + expression from landmarks) iterations", *_STEPS)
    full_steps: int = _f(80, "stage 3 (everything, photometric + identity + content) iterations", *_STEPS)
    detail_steps: int = _f(30, "stage 4 (per-texel detail layer) iterations; 0 skips it", *_STEPS)

    # --- learning rates (Adam) -------------------------------------------------------------------
    lr_rotation: float = _f(0.03, "rotation (axis-angle, rad) learning rate", *_LR)
    lr_translation: float = _f(1.0, "image-plane translation (px at the face's depth) learning rate",
                               0.0, 10.0)
    lr_depth: float = _f(0.03, "log-depth learning rate", *_LR)
    lr_focal: float = _f(0.01, "log-focal-length learning rate", *_LR)
    lr_identity: float = _f(0.1, "identity coefficients (std units) learning rate", *_LR)
    lr_expression: float = _f(0.03, "expression weights ([0, 1]) learning rate", *_LR)
    lr_texture: float = _f(0.1, "texture latent learning rate", *_LR)
    lr_light: float = _f(0.05, "spherical-harmonics lighting learning rate", *_LR)
    lr_detail: float = _f(0.02, "detail layer learning rate", *_LR)
    refine_lr_scale: float = _f(0.3, "multiplier of the pose/shape learning rates in stages 2-3", 0.0, 1.0)

    # --- loss weights ----------------------------------------------------------------------------
    landmark_weight: float = _f(1.0, "landmark loss weight (normalised by face size squared, x1e3 inside)",
                                *_WEIGHT)
    contour_weight: float = _f(0.1, "relative weight of the 17 jawline landmarks", *_WEIGHT)
    sliding_window: int = _f(2, "jawline landmarks may slide this many candidates either way (0: fixed)",
                             0, 8)
    pixel_weight: float = _f(1.0, "masked robust pixel loss weight", *_WEIGHT)
    identity_weight: float = _f(0.3, "identity loss (1 - cos of recogniser embeddings) weight", *_WEIGHT)
    content_weight: float = _f(0.1, "content loss (recogniser activations) weight", *_WEIGHT)
    freeview_identity_weight: float = _f(0.5, "free-view identity weight: 1 - cos of the recogniser's "
                                         "embedding of the face re-rendered frontally and turned "
                                         "+-freeview_yaw_deg under neutral light (with its eyeballs) vs "
                                         "the photo's", *_WEIGHT)
    identity_gradient_blur_px: float = _f(1.5, "Gaussian sigma (px at render_size) of the blur on the "
                                          "recogniser terms' gradients in the detail stage and the free "
                                          "views (per texel, the raw gradient paints speckles; 0: off)",
                                          0.0, 8.0)
    freeview_yaw_deg: float = _f(30.0, "head turn of the free views, degrees", 0.0, 60.0)
    freeview_size: int = _f(288, "side of the free-view renders, px (larger: the recogniser's gradient "
                            "reaches more texels)", 64, 512)
    freeview_every: int = _f(1, "the free-view term on every N-th step of the full and detail stages", 1, 100)
    dense_weight: float = _f(1.0, "weight of the dense landmark term (MediaPipe FaceMesh's 468 points "
                             "against their ICT surface points; normalised as the 68-point term; 0: off)",
                             *_WEIGHT)
    dense_spread_floor_mm: float = _f(1.0, "dense point weights: (floor / max(spread, floor))^2 with each "
                                      "point's correspondence spread, mm", 0.1, 50.0)
    landmark_robust_scale: float = _f(0.03, "Cauchy scale of the landmark loss, fraction of the face size: "
                                      "errors beyond it count less and less (0: plain squared error)",
                                      0.0, 1.0)
    identity_reg_weight: float = _f(0.03, "||identity||^2 regulariser weight", *_WEIGHT)
    expression_reg_weight: float = _f(1e-3, "||expression||^2 regulariser weight", *_WEIGHT)
    expression_bounds: ExpressionBounds = _f("real", "expression weight bounds: real (rare shapes such as "
                                             "cheekPuff, mouthStretch capped; ganfit_core.fitting."
                                             "expression_prior) | full ([0, 1] for all)")
    fit_gaze: int = _f(0, "1: fit the eye-gaze blendshapes (eyeLook*) too; 0: keep them at 0", 0, 1)
    expression_l1_weight: float = _f(0.02, "L1 (sparsity) weight on the expression weights, scaled per "
                                     "blendshape by its displacement", *_WEIGHT)
    expression_symmetry_weight: float = _f(0.1, "weight of (left - right)^2 over the _L/_R blendshape pairs",
                                           *_WEIGHT)
    texture_reg_weight: float = _f(0.01, "texture prior regulariser weight", *_WEIGHT)
    focal_reg_weight: float = _f(1e-2, "(log focal - initial)^2 regulariser weight", *_WEIGHT)
    detail_smooth_weight: float = _f(10.0, "detail layer smoothness weight", *_WEIGHT)
    detail_symmetry_weight: float = _f(0.1, "detail layer left/right symmetry weight", *_WEIGHT)
    detail_resolution: int = _f(512, "side of the detail layer (UV texels; finer than the prior's 256 it "
                                "is box-averaged down: the photo and the gradients are supersampled)",
                                32, 1024)
    detail_skin_mask: float = _f(1.0, "how strictly the detail stage keeps photo detail to the skin texels "
                                 "the photo shows (not hair, background, eyes, mouth interior): 0 anywhere, "
                                 "1 skin only", 0.0, 1.0)
    detail_init_from_photo: float = _f(1.0, "start the detail layer from the photo's albedo (the crop with "
                                       "the fitted light divided out, minus the prior's texture) x this "
                                       "factor, and keep the light; 0: from zero, light refined", 0.0, 1.0)
    texture_init_from_photo: float = _f(1.0, "start the texture latent from the prior fitted to the photo's "
                                        "visible skin (x this factor; 0: the prior's own start)", 0.0, 1.0)
    light_reg_weight: float = _f(10.0, "exposure prior: (mean shading over the visible face - 1)^2 per "
                                 "colour; 1 is the level the texture priors' albedos are normalised to, so "
                                 "skin tone stays in the albedo", *_WEIGHT)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            choices = FIELD_CHOICES.get(f.name)
            if choices is not None:
                if not isinstance(value, str) or not (
                        value in choices or (f.name == "device" and _CUDA_INDEX.fullmatch(value))):
                    raise ConfigError(f"{f.name}: expected one of {' | '.join(choices)}, got {value!r}")
                continue
            low, high = FIELD_RANGES[f.name]
            kind = type(f.default)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                    kind is int and not float(value).is_integer()):
                raise ConfigError(f"{f.name}: expected {'an integer' if kind is int else 'a number'} "
                                  f"in {low}..{high}, got {value!r}")
            if not low <= value <= high:  # also refuses NaN
                raise ConfigError(f"{f.name}: expected a value in {low}..{high}, got {value}")

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
#: The accepted range ``(low, high)`` of every numeric field, inclusive (from the field metadata).
FIELD_RANGES: dict[str, tuple[float, float]] = {
    f.name: (f.metadata["min"], f.metadata["max"])
    for f in dataclasses.fields(FitConfig) if "min" in f.metadata}
#: The choices of every string field (from its ``Literal`` type), first the default's kind of order.
FIELD_CHOICES: dict[str, tuple[str, ...]] = {
    "region": get_args(Region), "texture_prior": get_args(TexturePriorName),
    "device": get_args(DeviceName), "renderer": get_args(RendererName),
    "expression_bounds": get_args(ExpressionBounds)}
_CUDA_INDEX = re.compile(r"cuda:\d+")
