"""Widget-free helpers for the Gradio app (``app.py``): config ↔ controls, live loss history,
status lines, output packaging, per-run temporary folders and user-facing error messages.

Nothing here imports Gradio, so all of it is testable without a server.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
import shutil
import sys
import tempfile
import threading
import time
import types
import typing
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ganfit_core.errors import ConfigError, UserInputError

#: Short help shown under a control when the config field has no ``metadata["help"]``;
#: the first keyword found in the field's dotted name wins.
_HELP_BY_KEYWORD: tuple[tuple[str, str], ...] = (
    ("iter", "Adam steps in this stage; fewer is faster, more fits closer."),
    ("steps", "Adam steps in this stage; fewer is faster, more fits closer."),
    ("identity", "Weight of the face-recognition loss (1 − cosine of embeddings)."),
    ("content", "Weight of the feature (content) loss between photo and rendering."),
    ("pixel", "Weight of the masked colour difference between photo and rendering."),
    ("photo", "Weight of the masked colour difference between photo and rendering."),
    ("landmark", "Weight of the 2D landmark distance (pixels²)."),
    ("reg", "Weight of a regulariser keeping the parameters plausible."),
    ("lr", "Adam learning rate."),
    ("learning_rate", "Adam learning rate."),
    ("resolution", "Side of the square face crop the fit renders at (pixels); lower is faster."),
    ("texture", "Which texture prior decodes the UV map."),
    ("prior", "Which texture prior decodes the UV map."),
    ("device", "Where to compute: auto picks CUDA when available."),
    ("renderer", "Rasteriser backend: auto picks nvdiffrast on CUDA, else pure PyTorch."),
    ("backend", "Backend: auto picks the fastest available."),
    ("seed", "Random seed for the initial texture latent (same seed, same result)."),
)

Scalar = int | float | str | bool


# ---------------------------------------------------------------------------------------------
# Config ↔ controls


@dataclass(frozen=True)
class ConfigControl:
    """One editable scalar leaf of a (possibly nested) config dataclass.

    ``path`` addresses the leaf: field names, and integer indices inside tuples/lists of
    dataclasses, e.g. ``("weights", "identity")`` or ``("stages", 0, "iterations")``.
    ``kind`` is ``"int"``, ``"float"``, ``"bool"``, ``"choice"`` or ``"text"``. ``minimum`` and
    ``maximum`` are the field's accepted range (its metadata ``min``/``max``, e.g. FitConfig's),
    None when it declares none; ``choices`` come from the field's ``Literal`` type.
    """

    path: tuple[str | int, ...]
    default: Scalar
    kind: str
    choices: tuple[str, ...] = ()
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None

    @property
    def key(self) -> str:
        """Dotted name, e.g. ``"weights.identity"``."""
        return ".".join(str(p) for p in self.path)

    @property
    def label(self) -> str:
        """Human label, e.g. ``"weights · identity"``."""
        return " · ".join(str(p).replace("_", " ") for p in self.path)

    @property
    def group(self) -> str:
        """Layout group: ``"Iterations"``, ``"Loss weights"``, ``"Learning rates"`` or ``"Other"``."""
        name = str(self.path[-1]).lower()
        if self.kind == "int" and ("iter" in name or name.endswith("steps")):
            return "Iterations"
        if self.kind == "float" and "weight" in name:
            return "Loss weights"
        if self.kind == "float" and (name.startswith("lr") or "learning_rate" in name):
            return "Learning rates"
        return "Other"


def _literal_choices(hint: Any) -> tuple[str, ...]:
    """The string values of a ``Literal`` type hint (also inside a union), else ()."""
    if typing.get_origin(hint) is typing.Literal:
        return tuple(str(v) for v in typing.get_args(hint))
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return tuple(c for arg in typing.get_args(hint) for c in _literal_choices(arg))
    return ()


def _type_hints(cls: type) -> dict[str, Any]:
    """The resolved field types of ``cls``; a field whose annotation cannot be resolved maps to None."""
    try:
        return typing.get_type_hints(cls)
    except (NameError, TypeError):
        namespace = {"typing": typing, **vars(sys.modules.get(cls.__module__, typing))}
        hints: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            try:
                hints[f.name] = eval(f.type, namespace) if isinstance(f.type, str) else f.type  # noqa: S307
            except (NameError, SyntaxError, TypeError):
                hints[f.name] = None
        return hints


def _choices_for(name: str, hint: Any) -> tuple[str, ...]:
    choices = _literal_choices(hint)
    if name == "texture_prior" and choices:  # only the priors usable here
        available = set(texture_prior_choices())
        choices = tuple(c for c in choices if c in available)
    return choices


def _help_for(key: str, field: dataclasses.Field | None) -> str:
    if field is not None and field.metadata.get("help"):
        return str(field.metadata["help"])
    lkey = key.lower()
    for keyword, text in _HELP_BY_KEYWORD:
        if keyword in lkey:
            return text
    return ""


def _leaf_control(
    path: tuple[str | int, ...], value: Any, field: dataclasses.Field | None, hint: Any = None
) -> ConfigControl | None:
    key = ".".join(str(p) for p in path)
    help_text = _help_for(key, field)
    metadata = field.metadata if field is not None else {}
    low, high = metadata.get("min"), metadata.get("max")
    if isinstance(value, bool):
        return ConfigControl(path, value, "bool", help=help_text)
    if isinstance(value, int):
        return ConfigControl(path, value, "int", help=help_text, minimum=low, maximum=high)
    if isinstance(value, float):
        return ConfigControl(path, value, "float", help=help_text, minimum=low, maximum=high)
    if isinstance(value, str):
        choices = _choices_for(str(path[-1]), hint)
        if choices and value not in choices:
            choices = (value, *choices)
        return ConfigControl(path, value, "choice" if choices else "text", choices, help_text)
    return None  # None, tuples of numbers, nested mappings: not user-editable here


def config_controls(config: Any, _prefix: tuple[str | int, ...] = ()) -> list[ConfigControl]:
    """The editable scalar leaves of a config dataclass instance, in field order.

    Nested dataclasses and tuples/lists of dataclasses are walked; defaults come from
    ``config`` itself, so nothing is duplicated here.

    Example:
        >>> @dataclasses.dataclass(frozen=True)
        ... class Weights:
        ...     landmark_weight: float = 1.0
        >>> @dataclasses.dataclass(frozen=True)
        ... class Config:
        ...     rigid_steps: int = dataclasses.field(default=50, metadata={"min": 0, "max": 100})
        ...     weights: Weights = Weights()
        ...     device: typing.Literal["auto", "cpu"] = "auto"
        >>> for c in config_controls(Config()):
        ...     print(c.key, c.kind, c.group, c.choices, c.minimum, c.maximum)
        rigid_steps int Iterations () 0 100
        weights.landmark_weight float Loss weights () None None
        device choice Other ('auto', 'cpu') None None
    """
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"expected a dataclass instance, got {type(config).__name__}")
    controls: list[ConfigControl] = []
    hints = _type_hints(type(config))
    for field in dataclasses.fields(config):
        if field.name.startswith("_"):
            continue
        value = getattr(config, field.name)
        path = (*_prefix, field.name)
        if dataclasses.is_dataclass(value):
            controls.extend(config_controls(value, path))
        elif isinstance(value, list | tuple) and value and all(dataclasses.is_dataclass(v) for v in value):
            for index, item in enumerate(value):
                controls.extend(config_controls(item, (*path, index)))
        else:
            control = _leaf_control(path, value, field, hints.get(field.name))
            if control is not None:
                controls.append(control)
    return controls


def _coerce(control: ConfigControl, value: Any) -> Scalar:
    if value is None:
        return control.default
    if control.kind == "int":
        if isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"{control.label}: expected a whole number, got {value}")
        return int(value)
    if control.kind == "float":
        result = float(value)
        if not math.isfinite(result):
            raise ConfigError(f"{control.label}: expected a finite number, got {value}")
        return result
    if control.kind == "bool":
        return bool(value)
    if control.kind == "choice" and str(value) not in control.choices:
        raise ConfigError(
            f"{control.label}: {value!r} is not offered here; choose one of {', '.join(control.choices)}"
        )
    return str(value)


def _set_path(obj: Any, path: Sequence[str | int], value: Any) -> Any:
    """A copy of ``obj`` (dataclass / tuple / list) with the leaf at ``path`` replaced."""
    head, rest = path[0], path[1:]
    if isinstance(head, int):
        items = list(obj)
        items[head] = _set_path(items[head], rest, value) if rest else value
        return type(obj)(items)
    new_value = _set_path(getattr(obj, head), rest, value) if rest else value
    return dataclasses.replace(obj, **{head: new_value})


def apply_controls(config: Any, controls: Sequence[ConfigControl], values: Sequence[Any]) -> Any:
    """A copy of ``config`` with each control's leaf set to the matching value (None keeps the default).

    Raises ``ConfigError`` (a ValueError) with the control's label for values of the wrong kind.

    Example:
        >>> @dataclasses.dataclass(frozen=True)
        ... class Config:
        ...     iterations: int = 50
        ...     lr: float = 0.01
        >>> controls = config_controls(Config())
        >>> apply_controls(Config(), controls, [3.0, None])
        Config(iterations=3, lr=0.01)
    """
    if len(controls) != len(values):
        raise ValueError(f"expected {len(controls)} control values, got {len(values)}")
    for control, value in zip(controls, values, strict=True):
        coerced = _coerce(control, value)
        if coerced != _get_path(config, control.path):
            config = _set_path(config, control.path, coerced)
    return config


def _get_path(obj: Any, path: Sequence[str | int]) -> Any:
    for part in path:
        obj = obj[part] if isinstance(part, int) else getattr(obj, part)
    return obj


def texture_prior_choices() -> list[str]:
    """Texture priors offered in the app: the module is installed and, for a learned prior, its
    asset (``texture_<name>``) is registered and resolves without a build: present in the local
    weights folder or in the Hugging Face cache (a build of ``texture_gan`` trains for most of an
    hour: ``python -m ganfit_core assets build texture_gan``)."""
    from ganfit_core import assets
    from ganfit_core.texture.base import PRIORS

    names = []
    for name, target in PRIORS.items():
        try:
            if importlib.util.find_spec(target.split(":")[0]) is None:
                continue
        except ModuleNotFoundError:
            continue
        spec = assets.ASSETS.get(f"texture_{name}")
        if name == "simple" or (spec is not None and ((assets.weights_dir() / spec.filename).is_file()
                                                      or assets.hub_cached(spec) is not None)):
            names.append(name)
    return names


# ---------------------------------------------------------------------------------------------
# Live progress


class LossHistory:
    """Loss values per step and term, as the long-format table ``gr.LinePlot`` wants.

    Example:
        >>> history = LossHistory()
        >>> history.add(0, {"total": 2.0, "landmark": 1.5})
        >>> history.add(1, {"total": 1.0, "landmark": 0.5})
        >>> frame = history.frame()
        >>> frame["step"].tolist(), frame["loss"].tolist(), frame["term"].tolist()[:2]
        ([0, 0, 1, 1], [2.0, 1.5, 1.0, 0.5], ['total', 'landmark'])
    """

    def __init__(self, max_points_per_term: int = 300) -> None:
        self.max_points_per_term = max_points_per_term
        self._rows: list[tuple[int, float, str]] = []

    def add(self, step: int, losses: Mapping[str, float]) -> None:
        """Record one step's losses; non-finite values are skipped."""
        for term, value in losses.items():
            value = float(value)
            if math.isfinite(value):
                self._rows.append((int(step), value, str(term)))

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def terms(self) -> tuple[str, ...]:
        """Term names in order of first appearance."""
        return tuple(dict.fromkeys(term for _, _, term in self._rows))

    def frame(self) -> pd.DataFrame:
        """Columns ``step`` (int), ``loss`` (float), ``term`` (str); long runs are thinned by stride."""
        steps_col, losses_col, terms_col = zip(*self._rows, strict=True) if self._rows else ((), (), ())
        frame = pd.DataFrame(
            {
                "step": pd.Series(steps_col, dtype="int64"),
                "loss": pd.Series(losses_col, dtype="float64"),
                "term": pd.Series(terms_col, dtype="object"),
            }
        )
        steps = frame["step"].unique()
        if len(steps) > self.max_points_per_term:
            stride = math.ceil(len(steps) / self.max_points_per_term)
            keep = set(steps[::stride]) | {steps[-1]}
            frame = frame[frame["step"].isin(keep)].reset_index(drop=True)
        return frame


def plot_terms(losses: Mapping[str, float]) -> dict[str, float]:
    """Loss terms as plotted: every regulariser (a name containing ``reg``) summed into one
    ``"regularisers"`` term, the others unchanged — fewer curves, a legend that fits.

    Example:
        >>> plot_terms({"total": 3.0, "landmark": 2.0, "identity_reg": 0.5, "focal_reg": 0.5})
        {'total': 3.0, 'landmark': 2.0, 'regularisers': 1.0}
    """
    terms: dict[str, float] = {}
    for name, value in losses.items():
        key = "regularisers" if "reg" in name.lower() else name
        terms[key] = terms.get(key, 0.0) + float(value)
    return terms


class Throttle:
    """``due()`` is True at most once per ``interval_s`` (and always the first time)."""

    def __init__(self, interval_s: float, clock: Any = time.monotonic) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._last: float | None = None

    def due(self) -> bool:
        now = self._clock()
        if self._last is None or now - self._last >= self.interval_s:
            self._last = now
            return True
        return False


def status_line(event: Any) -> str:
    """One line for a :class:`~ganfit_core.fitting.types.FitEvent`: stage, progress, elapsed time, loss.

    Example:
        >>> from types import SimpleNamespace
        >>> event = SimpleNamespace(stage="rigid", stage_index=0, num_stages=3, step=5, stage_step=5,
        ...                         elapsed_s=2.04, losses={"total": 1.23456}, message="rigid 5/60")
        >>> status_line(event)
        'Stage 1/3 · rigid 5/60 · 2.0 s · loss 1.235'
    """
    progress = event.message or f"{event.stage} step {event.stage_step}"
    parts = [f"Stage {min(event.stage_index + 1, event.num_stages)}/{event.num_stages}", progress]
    parts.append(f"{event.elapsed_s:.1f} s")
    total = event.losses.get("total") if event.losses else None
    if total is not None and math.isfinite(float(total)):
        parts.append(f"loss {float(total):.4g}")
    return " · ".join(parts)


def timing_table(stage_seconds: Mapping[str, float]) -> pd.DataFrame:
    """Columns ``stage``, ``seconds``; a last ``total`` row sums them.

    Example:
        >>> timing_table({"landmarks": 1.25, "full": 2.0}).to_dict("list")
        {'stage': ['landmarks', 'full', 'total'], 'seconds': [1.25, 2.0, 3.25]}
    """
    rows = [(str(stage), round(float(seconds), 2)) for stage, seconds in stage_seconds.items()]
    rows.append(("total", round(sum(s for _, s in rows), 2)))
    return pd.DataFrame(rows, columns=["stage", "seconds"])


# ---------------------------------------------------------------------------------------------
# Outputs and temporary folders

_MESH_BUNDLE_SUFFIXES = (".obj", ".mtl", ".png")


@dataclass(frozen=True)
class Downloads:
    """The files offered for download after a fit."""

    glb: Path
    obj_zip: Path | None
    params_json: Path | None

    def paths(self) -> list[str]:
        return [str(p) for p in (self.glb, self.obj_zip, self.params_json) if p is not None]


def package_downloads(exported: Mapping[str, Path], folder: Path) -> Downloads:
    """Group ``export_all``'s files: the GLB, a zip of the OBJ+MTL+PNG files (the loose files are
    then removed, so each output is stored once), the params JSON.

    ``exported`` maps names to paths; files are told apart by suffix. Raises ``ValueError``
    when no ``.glb`` was exported.
    """
    paths = [Path(p) for p in exported.values()]
    glbs = [p for p in paths if p.suffix.lower() == ".glb"]
    if not glbs:
        raise ValueError(f"the export wrote no .glb file (got {sorted(p.name for p in paths)})")
    bundle = [p for p in paths if p.suffix.lower() in _MESH_BUNDLE_SUFFIXES]
    obj_zip = None
    if any(p.suffix.lower() == ".obj" for p in bundle):
        obj_zip = Path(folder) / "face_obj.zip"
        with zipfile.ZipFile(obj_zip, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(bundle):
                archive.write(path, arcname=path.name)
        for path in bundle:  # each output is stored once: the zip is what is offered
            path.unlink(missing_ok=True)
    jsons = sorted(p for p in paths if p.suffix.lower() == ".json")
    params = next((p for p in jsons if "param" in p.name.lower()), jsons[0] if jsons else None)
    return Downloads(glb=glbs[0], obj_zip=obj_zip, params_json=params)


class OutputStore:
    """Per-run output folders under one root, removed once older than ``max_age_s``.

    The app creates one store at start; each run gets a fresh folder from :meth:`new_run_dir`,
    which also sweeps expired folders. :meth:`close` removes the root (the app calls it on every
    exit: normal, SIGINT, SIGTERM). The root holds a ``owner.pid`` marker, so that
    :func:`sweep_stale_stores` at the next start removes the roots of instances that died without
    cleaning up. Gradio's upload/download cache is pointed inside the root (``upload_dir``), so a
    served file is stored once and goes with the root.
    """

    PREFIX = "ganfit-app-"

    def __init__(self, root: Path | None = None, *, max_age_s: float = 3600.0) -> None:
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix=self.PREFIX))
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "owner.pid").write_text(str(os.getpid()))
        self.max_age_s = max_age_s

    @property
    def upload_dir(self) -> Path:
        """Gradio's cache folder for this instance (``GRADIO_TEMP_DIR``): uploads and served files."""
        return self.root

    def new_run_dir(self) -> Path:
        self.sweep()
        return Path(tempfile.mkdtemp(prefix="run-", dir=self.root))

    def sweep(self, now: float | None = None) -> list[Path]:
        """Remove run folders older than ``max_age_s``; returns those removed."""
        now = time.time() if now is None else now
        removed = []
        for path in self.root.glob("run-*"):
            try:
                if now - path.stat().st_mtime > self.max_age_s:
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(path)
            except FileNotFoundError:
                continue
        return removed

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_stores(parent: Path | None = None, *, max_age_s: float = 24 * 3600.0) -> list[Path]:
    """Remove ``ganfit-app-*`` folders under ``parent`` (the temp directory) left by app instances
    that are no longer running (their ``owner.pid`` names a dead process; without a marker: older
    than ``max_age_s``). Returns the folders removed."""
    parent = Path(tempfile.gettempdir()) if parent is None else Path(parent)
    removed = []
    for root in parent.glob(OutputStore.PREFIX + "*"):
        marker = root / "owner.pid"
        try:
            if marker.is_file():
                text = marker.read_text().strip()
                stale = not text.isdigit() or (int(text) != os.getpid() and not _pid_alive(int(text)))
            else:
                stale = time.time() - root.stat().st_mtime > max_age_s
        except OSError:
            continue
        if stale and root.is_dir():
            shutil.rmtree(root, ignore_errors=True)
            removed.append(root)
    return removed


class CancelFlag:
    """A per-session cancel signal for ``gr.State``: wraps a ``threading.Event``.

    Gradio gives each session a deep copy of a State's initial value and then hands that same
    object to every handler of the session. A copy of a flag is a new, unset flag (an event
    cannot be copied), so ``gr.State(CancelFlag())`` yields one independent flag per session.

    Example:
        >>> import copy
        >>> flag = CancelFlag(); flag.event.set()
        >>> copy.deepcopy(flag).event.is_set()
        False
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self.running = threading.Event()  # set while this session's fit runs

    def __deepcopy__(self, memo: dict) -> CancelFlag:
        return CancelFlag()

    def cancel(self) -> str:
        """Ask this session's running fit to stop; the message for the user."""
        if not self.running.is_set():
            return "Nothing to cancel."
        self.event.set()
        return "Cancelled."


def photo_path(payload: Any) -> str | None:
    """The file path of an uploaded photo: a path string, or Gradio's raw file payload (a dict with
    ``"path"``), as an event handler receives it with ``preprocess=False``. None when empty.

    Example:
        >>> photo_path({"path": "/tmp/a.jpg", "url": None}), photo_path("b.png"), photo_path(None)
        ('/tmp/a.jpg', 'b.png', None)
    """
    if payload is None or payload == "":
        return None
    if isinstance(payload, str | Path):
        return str(payload)
    if isinstance(payload, Mapping) and payload.get("path"):
        return str(payload["path"])
    raise UserInputError(f"unexpected photo payload of type {type(payload).__name__}")


def photo_paths(payload: Any) -> list[str]:
    """The file paths of a multi-file upload (``gr.File(file_count="multiple")`` with
    ``preprocess=False``: a list of payloads, or one), empty when nothing was uploaded.

    Example:
        >>> photo_paths([{"path": "/tmp/a.jpg"}, "b.png"]), photo_paths(None)
        (['/tmp/a.jpg', 'b.png'], [])
    """
    if payload is None or payload == "":
        return []
    items = payload if isinstance(payload, list | tuple) else [payload]
    return [p for p in (photo_path(item) for item in items) if p]


# ---------------------------------------------------------------------------------------------
# Errors


def user_message(exc: BaseException) -> str | None:
    """The message to show for the user's own mistake (a :class:`~ganfit_core.errors.UserInputError`:
    bad photo, no usable face, setting out of range), else None (an internal error: log it, show a
    generic message).

    Example:
        >>> from ganfit_core.errors import ConfigError, FitError
        >>> user_message(ConfigError("steps: expected 0..1000")), user_message(FitError("bug"))
        ('steps: expected 0..1000', None)
    """
    if isinstance(exc, UserInputError):
        return str(exc).strip() or type(exc).__name__
    return None
