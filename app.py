"""Gradio app: one photo in, a textured 3D face out (``python app.py`` → http://127.0.0.1:7860).

Event chain of the Run button (each step is an API endpoint, see README "API"):

1. ``/reconstruct`` (generator) — streams the loss plot, the preview rendering and a status line,
   then yields the UV texture, the downloads (GLB, OBJ zip, params JSON), the per-stage timings
   and the GLB path into a ``gr.State``.
2. ``/show_model`` — a plain function that moves that GLB path into ``gr.Model3D`` (a Model3D
   value coming straight from a generator never mounts its canvas in the browser).

``/cancel`` stops the session's running fit. Heavy work lives in ``ganfit_core``; widget-free
helpers in the ``ganfit_app`` package (``ui_support``, ``updates``).

Errors: a :class:`ganfit_core.errors.UserInputError` (bad photo, no usable face, setting out of its
range) is shown with its message; anything else is logged and shown as a generic internal error.
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from ganfit_app import ui_support
from ganfit_app.updates import KEEP, ReconstructUpdate
from ganfit_core.assets import AssetError
from ganfit_core.errors import FitCancelled
from ganfit_core.export import export_all
from ganfit_core.fitting.config import FitConfig
from ganfit_core.fitting.engine import FitRun, fit
from ganfit_core.fitting.target import prepare_target
from ganfit_core.fitting.types import FitResult
from ganfit_core.model.eyes import EyeBasis, load_eye_basis
from ganfit_core.model.layout import EYELESS_REGIONS
from ganfit_core.texture import TexturePriorError

logger = logging.getLogger("ganfit.app")

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
#: Internal errors with their own generic message (their details, server paths, go to the log).
MISSING_MODEL_ERRORS: tuple[type[BaseException], ...] = (AssetError, TexturePriorError)
#: Model files a default fit needs, resolved at start (the GAN prior loads on use, when chosen).
APP_ASSETS = (
    "ict_face_model",
    "faceapi_tiny_detector",
    "faceapi_landmark68",
    "faceapi_recognition",
    "texture_pca",  # the default texture prior (FitConfig.texture_prior), by bench/texture.py
)
#: Seconds between streamed UI updates while fitting (the plot then refreshes at least this often).
UPDATE_INTERVAL_S = 0.5
# PLOT_RESET: gr.LinePlot fixes its colour legend from the first data it draws, so new loss terms
# (later stages add some) would never be drawn; the plot is sent None first, which resets it.
#: Seconds the ZeroGPU scheduler reserves per fit on Hugging Face Spaces.
GPU_DURATION_S = 120

try:  # ZeroGPU on Hugging Face Spaces; a no-op decorator elsewhere.
    import spaces

    gpu_task: Callable[[Callable], Callable] = spaces.GPU(duration=GPU_DURATION_S)
except ImportError:

    def gpu_task(fn: Callable) -> Callable:
        return fn


def control_elem_id(key: str) -> str:
    """The HTML id of a config control, e.g. ``"cfg-weights-identity"`` (used by browser tests)."""
    return "cfg-" + key.replace(".", "-").replace("_", "-")


def _control_widget(control: ui_support.ConfigControl) -> gr.components.Component:
    common = {"label": control.label, "info": control.help or None, "elem_id": control_elem_id(control.key)}
    if control.kind == "bool":
        return gr.Checkbox(value=control.default, **common)
    limits = {"minimum": control.minimum, "maximum": control.maximum}  # FitConfig's ranges
    if control.kind == "int":
        return gr.Number(value=control.default, precision=0, **limits, **common)
    if control.kind == "float":
        return gr.Number(value=control.default, **limits, **common)
    if control.kind == "choice":
        return gr.Dropdown(
            choices=list(control.choices),
            value=control.default,
            interactive=len(control.choices) > 1,
            **common,
        )
    return gr.Textbox(value=control.default, **common)


def _error(exc: BaseException) -> gr.Error:
    message = ui_support.user_message(exc)
    if message is None:
        logger.error("reconstruction failed", exc_info=exc)
        if isinstance(exc, MISSING_MODEL_ERRORS):
            message = "A model file this fit needs is missing on the server (see the server log)."
        else:
            message = f"Reconstruction failed (internal error {type(exc).__name__}). See the server log."
    return gr.Error(message, print_exception=False)


def make_reconstruct(
    controls: list[ui_support.ConfigControl], store: ui_support.OutputStore, update_interval_s: float
) -> Callable[..., Iterator[tuple]]:
    """The streaming handler: ``(photo, cancel_flag, face_index, *control_values)``."""
    base_config = FitConfig()
    eye_basis: list[EyeBasis] = []  # loaded on the first export that needs it, then reused

    def eyes_for(result: FitResult) -> EyeBasis | bool:
        if result.region not in EYELESS_REGIONS:
            return False
        if not eye_basis:
            eye_basis.append(load_eye_basis())
        return eye_basis[0]

    @gpu_task
    def reconstruct(photo: Any, cancel_flag: Any, face_index: float | None, *values: Any) -> Iterator[tuple]:
        """Fit the photo; yields (plot, preview, status, texture, downloads, timings, glb_path).

        Runs with ``preprocess=False`` so that an unreadable upload reaches ``prepare_target``
        and fails there with a clear message: ``photo`` is Gradio's raw file payload.
        """
        for update in _updates(photo, cancel_flag, face_index, values):
            yield update.outputs(gr.skip())

    def _updates(photo: Any, cancel_flag: Any, face_index: float | None,
                 values: tuple) -> Iterator[ReconstructUpdate]:
        try:
            photo = ui_support.photo_path(photo)
        except Exception as exc:  # a message, never a traceback
            raise _error(exc) from exc
        if not photo:
            raise gr.Error("Upload a photo (or pick an example) first.", print_exception=False)
        cancel_flag.event.clear()
        history = ui_support.LossHistory()
        start = time.monotonic()
        # None, not an empty frame: a LinePlot first fed an empty frame draws no lines afterwards.
        yield ReconstructUpdate(None, None, "Finding the face…", None, None, None, None)
        preview = None
        try:
            config = ui_support.apply_controls(base_config, controls, values)
            index = None if face_index is None else int(face_index)
            target = prepare_target(photo, face_index=index, resolution=config.render_size)
            throttle = ui_support.Throttle(update_interval_s)
            plotted_terms: tuple[str, ...] = ()
            run = FitRun(fit(target, config, cancel=cancel_flag.event))
            for event in run:
                preview = event.preview if event.preview is not None else preview
                history.add(event.step, ui_support.plot_terms(event.losses))
                if throttle.due():
                    if plotted_terms and history.terms != plotted_terms:
                        yield ReconstructUpdate(plot=None)  # see PLOT_RESET
                    plotted_terms = history.terms
                    yield ReconstructUpdate(history.frame(), preview, ui_support.status_line(event))
            result = run.result
            run_dir = store.new_run_dir()
            exported = export_all(result, run_dir, eyes=eyes_for(result))
            downloads = ui_support.package_downloads(exported, run_dir)
        except FitCancelled:
            yield ReconstructUpdate(plot=history.frame() if len(history) else KEEP, preview=preview,
                                    status="Cancelled.")
            return
        except gr.Error:
            raise
        except Exception as exc:  # shown as a message, never a traceback; the app keeps serving
            raise _error(exc) from exc
        notes = list(result.warnings)
        num_faces = target.num_faces
        if num_faces > 1:
            chosen = "the largest" if index is None else f"face {index}"
            notes.insert(0, f"{num_faces} faces found; fitted {chosen} (the face index picks another).")
        for note in notes:
            gr.Info(note)
        status = f"Done in {time.monotonic() - start:.1f} s."
        if notes:
            status += " Note: " + " ".join(notes)
        if plotted_terms and history.terms != plotted_terms:
            yield ReconstructUpdate(plot=None)  # see PLOT_RESET
        yield ReconstructUpdate(
            plot=history.frame() if len(history) else None,
            preview=result.render,
            status=status,
            texture=result.texture,
            downloads=downloads.paths(),
            timings=ui_support.timing_table(result.stage_seconds),
            glb_path=str(downloads.glb),
        )

    # Name the API parameters after the config fields (``client.predict(..., full_steps=20)``).
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    reconstruct.__signature__ = inspect.Signature(
        [inspect.Parameter("photo", kind), inspect.Parameter("cancel_flag", kind)]
        + [inspect.Parameter("face_index", kind, default=None)]
        + [inspect.Parameter(c.key.replace(".", "_"), kind, default=c.default) for c in controls]
    )
    return reconstruct


def show_model(glb_path: str | None) -> str | None:
    """The GLB path of the last finished fit (for ``gr.Model3D``)."""
    return glb_path or None


def cancel(cancel_flag: ui_support.CancelFlag) -> str:
    """Ask this session's running fit to stop."""
    cancel_flag.event.set()
    return "Cancelled."


def build_demo(
    store: ui_support.OutputStore | None = None, *, update_interval_s: float = UPDATE_INTERVAL_S
) -> gr.Blocks:
    """The app. ``store`` holds per-run output folders (a fresh temporary one by default);
    ``update_interval_s`` is the least time between streamed updates while fitting."""
    store = store or ui_support.OutputStore()
    controls = ui_support.config_controls(FitConfig())

    with gr.Blocks(title="ganfit — 3D face from one photo", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            "# ganfit — a textured 3D face from one photo\n"
            "Upload a selfie (or use the webcam, or click an example), press **Run**, and watch the fit: "
            "a morphable face model and a texture prior are optimised through a differentiable renderer "
            "until the rendering matches the photo."
        )
        cancel_state = gr.State(ui_support.CancelFlag())
        glb_state = gr.State(None)
        with gr.Row():
            with gr.Column(scale=1):
                photo = gr.Image(
                    label="Photo", type="filepath", sources=["upload", "webcam"], height=320, elem_id="photo"
                )
                with gr.Row():
                    run_button = gr.Button("Run", variant="primary", elem_id="run")
                    cancel_button = gr.Button("Cancel", variant="stop", elem_id="cancel")
                examples = sorted(
                    p for p in EXAMPLES_DIR.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"}
                )
                gr.Examples(
                    examples=[[str(p)] for p in examples],
                    inputs=[photo],
                    cache_examples=False,
                    label="Examples",
                )
                with gr.Accordion("Advanced", open=False):
                    face_index = gr.Number(
                        value=None,
                        precision=0,
                        minimum=0,
                        label="face index",
                        elem_id="face-index",
                        info="Which face when there are several: 0 = the largest, 1 = the next largest…",
                    )
                    widgets = {}
                    for group in ("Iterations", "Loss weights", "Other"):
                        gr.Markdown(f"**{group}**")
                        for control in controls:
                            if control.group == group:
                                widgets[control.key] = _control_widget(control)
                    with gr.Accordion("Learning rates", open=False):
                        for control in controls:
                            if control.group == "Learning rates":
                                widgets[control.key] = _control_widget(control)
            with gr.Column(scale=2):
                status = gr.Textbox(label="Status", interactive=False, elem_id="status")
                plot = gr.LinePlot(
                    x="step",
                    y="loss",
                    color="term",
                    title="Losses (weighted terms)",
                    show_label=False,  # a block label pushes the legend out of view
                    height=240,
                    elem_id="loss-plot",
                )
                with gr.Row():
                    preview = gr.Image(
                        label="Rendering over the photo", interactive=False, height=380, scale=2
                    )
                    model = gr.Model3D(label="3D face (GLB)", height=380, elem_id="model3d", scale=3)
                with gr.Row():
                    texture = gr.Image(label="UV texture", interactive=False, height=260)
                    timings = gr.Dataframe(
                        headers=["stage", "seconds"], label="Time per stage", interactive=False
                    )
                downloads = gr.File(label="Downloads", file_count="multiple", interactive=False)

        reconstruct = make_reconstruct(controls, store, update_interval_s)
        run_event = run_button.click(
            reconstruct,
            inputs=[photo, cancel_state, face_index, *(widgets[c.key] for c in controls)],
            outputs=[plot, preview, status, texture, downloads, timings, glb_state],
            api_name="reconstruct",
            concurrency_id="fit",
            concurrency_limit=1,
            show_progress="minimal",
            preprocess=False,
        )
        run_event.success(show_model, inputs=[glb_state], outputs=[model], api_name="show_model")
        cancel_button.click(
            cancel,
            inputs=[cancel_state],
            outputs=[status],
            cancels=[run_event],
            api_name="cancel",
            concurrency_limit=None,
        )
    demo.queue(default_concurrency_limit=1, max_size=16)
    return demo


def check_assets(names: tuple[str, ...] = APP_ASSETS) -> None:
    """Resolve the model files a default fit needs (building or fetching them on first start);
    exit with the registry's message (what was tried, the fix) if one is missing."""
    from ganfit_core import assets

    try:
        for name in names:
            path = assets.resolve(name)
            logger.info("asset %s: %s", name, path)
    except AssetError as exc:
        sys.exit(f"ganfit: a model file is missing and could not be built or downloaded.\n{exc}")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    check_assets()
    store = ui_support.OutputStore()
    demo = build_demo(store)
    try:
        demo.launch(
            server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
            server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
            theme=gr.themes.Soft(),
        )
    finally:
        store.close()


if __name__ == "__main__":
    main()
