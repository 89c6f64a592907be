"""``python -m ganfit_core fit PHOTO --out DIR``: reconstruct a textured 3D face from a photo.

Every :class:`~ganfit_core.fitting.config.FitConfig` field is a flag (``--full-steps 40``,
``--identity-weight 0.5``...), generated from the dataclass. Writes ``mesh.glb``, ``mesh.obj``,
``mesh.mtl``, ``texture.png``, ``params.json``, ``losses.json`` (and with ``--save-loss-plot`` a
``losses.png``; with ``--save-render`` a ``render.png``) into ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import threading
from pathlib import Path

from ganfit_core.fitting.config import FIELD_CHOICES, FIELD_HELP, FIELD_RANGES, FitConfig, config_fields

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_BAD_INPUT = 2
EXIT_MISSING_ASSET = 3
EXIT_CANCELLED = 130

EPILOG = """exit codes:
  0    success
  1    other error
  2    bad input: unreadable image, no face / face too small / bad --face-index, bad option value
  3    a model asset (weights, morphable model, texture prior) is missing and cannot be built
  130  cancelled (Ctrl-C)
"""


def _flag_help(name: str, default: object) -> str:
    """The field's help, its accepted range (FitConfig.FIELD_RANGES) and its default."""
    limits = ""
    if name in FIELD_RANGES:
        low, high = FIELD_RANGES[name]
        limits = f"; {low}..{high}"
    return f"{FIELD_HELP[name]} (default: {default}{limits})"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The photo, output folder, run options and one flag per FitConfig field."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("photo", type=Path, help="input photo (JPEG, PNG, ...)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (created if needed)")
    parser.add_argument("--face-index", type=int, default=None,
                        help="which face to fit, 0 = largest (default: the largest)")
    parser.add_argument("--detector", default="faceapi", help="face detector backend (default: faceapi)")
    parser.add_argument("--config", type=Path, default=None,
                        help="JSON file of FitConfig fields (e.g. the 'config' of a params.json); "
                        "flags given explicitly override it")
    parser.add_argument("--save-loss-plot", action="store_true", help="also write losses.png")
    parser.add_argument("--save-render", action="store_true",
                        help="also write render.png (the fit over the crop)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (default: torch's choice; 1 is best on a busy CPU)")
    group = parser.add_argument_group("fit settings (FitConfig)")
    defaults = FitConfig()
    for f in config_fields():
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        kind = type(default)
        # device also takes "cuda:N", so its choices are checked by FitConfig, not argparse
        choices = FIELD_CHOICES.get(f.name) if f.name != "device" else None
        group.add_argument(flag, dest=f"cfg_{f.name}", type=kind, default=None, choices=choices,
                           metavar=None if choices else kind.__name__.upper(),
                           help=_flag_help(f.name, default))


def config_from_args(args: argparse.Namespace) -> FitConfig:
    """FitConfig from ``--config`` (if any) overridden by explicit flags."""
    data = dataclasses.asdict(FitConfig())
    if args.config is not None:
        loaded = json.loads(Path(args.config).read_text())
        data.update(loaded.get("config", loaded))
    for f in config_fields():
        value = getattr(args, f"cfg_{f.name}")
        if value is not None:
            data[f.name] = value
    return FitConfig.from_dict(data)


def run(args: argparse.Namespace) -> int:
    """Run the fit; returns the exit code (see EPILOG)."""
    from ganfit_core.errors import ConfigError

    try:
        config = config_from_args(args)
    except (ConfigError, OSError, ValueError, TypeError) as exc:
        print(f"error: bad configuration: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    cancel = threading.Event()
    if args.threads is not None:
        import torch

        torch.set_num_threads(max(1, args.threads))
    try:
        return _fit(args, config, cancel)
    except KeyboardInterrupt:
        cancel.set()
        print("\ncancelled", file=sys.stderr)
        return EXIT_CANCELLED


def _error_code(exc: BaseException) -> int | None:
    """Map library exceptions to exit codes (None: not a known kind)."""
    from ganfit_core.assets import AssetError
    from ganfit_core.errors import FitCancelled, UserInputError
    from ganfit_core.texture.base import TexturePriorError

    if isinstance(exc, FitCancelled):
        return EXIT_CANCELLED
    if isinstance(exc, (AssetError, TexturePriorError)):
        return EXIT_MISSING_ASSET
    if isinstance(exc, (FileNotFoundError, IsADirectoryError, UserInputError, ValueError)):
        return EXIT_BAD_INPUT
    return None


def _fit(args: argparse.Namespace, config: FitConfig, cancel: threading.Event) -> int:
    try:
        from ganfit_core.export import export_all
        from ganfit_core.fitting.engine import fit, run_to_end
        from ganfit_core.fitting.target import prepare_target

        if not args.photo.is_file():
            raise FileNotFoundError(f"no such photo: {args.photo}")
        target = prepare_target(args.photo, face_index=args.face_index, resolution=config.render_size,
                                detector_backend=args.detector)
        result = _run_fit(fit(target, config, cancel=cancel), config, run_to_end, quiet=args.quiet)
        paths = export_all(result, args.out)
        if args.save_loss_plot:
            from ganfit_core.cli.loss_plot import draw_loss_plot

            paths["loss_plot"] = draw_loss_plot(result.history, Path(args.out) / "losses.png")
        if args.save_render:
            from PIL import Image

            paths["render"] = Path(args.out) / "render.png"
            Image.fromarray(result.render).save(paths["render"])
    except Exception as exc:  # noqa: BLE001  (mapped to documented exit codes)
        code = _error_code(exc)
        if code is None:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return code
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    seconds = ", ".join(f"{k} {v:.1f}s" for k, v in result.stage_seconds.items())
    print(f"done ({seconds}); final losses: " + ", ".join(f"{k} {v:.4g}" for k, v in result.losses.items()))
    for name, path in paths.items():
        print(f"  {name}: {path}")
    return EXIT_OK


def _run_fit(events, config: FitConfig, run_to_end, *, quiet: bool):  # noqa: ANN001, ANN202
    """``run_to_end(events)`` with a tqdm progress bar on stderr."""
    from tqdm import tqdm

    total = sum(steps for _, steps in config.stages)
    with tqdm(total=total, disable=quiet, unit="step", dynamic_ncols=True, file=sys.stderr) as bar:
        def progress(event) -> None:  # noqa: ANN001
            bar.update(1)
            bar.set_description(event.stage)
            bar.set_postfix({k: f"{v:.3g}" for k, v in event.losses.items()}, refresh=False)

        return run_to_end(events, progress)
