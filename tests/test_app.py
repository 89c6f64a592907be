"""The Gradio app end to end through ``gradio_client``: streaming, final GLB, errors, two clients.

The app runs in-process on 127.0.0.1 (a free port) with a tiny fit config, built from the API's
own parameter list, so the whole file stays well under three minutes on a 2-core CPU.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trimesh
from PIL import Image

gradio_client = pytest.importorskip("gradio_client", reason="gradio_client is a test extra")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402
from gradio_client.utils import Status  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ASTRONAUT = ROOT / "examples" / "astronaut.jpg"
#: Steps per stage and crop side (pixels) of the tiny fits used here.
TINY_ITERATIONS = 3
TINY_RESOLUTION = 112


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory, serve_app: Any) -> Any:
    with serve_app(tmp_path_factory.mktemp("app-outputs"), update_interval_s=0.05) as url:
        yield url


def tiny_settings(client: Client) -> dict[str, Any]:
    """Keyword arguments for ``/reconstruct`` that make a tiny, CPU-only fit.

    Built from the endpoint's own parameter list (named after the FitConfig fields): every
    stage that runs by default gets ``TINY_ITERATIONS`` steps.
    """
    endpoint = client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/reconstruct"]
    settings: dict[str, Any] = {}
    for parameter in endpoint["parameters"]:
        name, default = parameter["parameter_name"], parameter.get("parameter_default")
        if name.endswith("_steps") and isinstance(default, int) and default > 0:
            settings[name] = TINY_ITERATIONS
        elif name == "render_size":
            settings[name] = TINY_RESOLUTION
        elif name == "device":
            settings[name] = "cpu"
    assert any(name.endswith("_steps") for name in settings), "no iteration parameters in the API"
    return settings


def run_fit(url: str, photo: Path) -> dict[str, Any]:
    """Submit one fit; returns the streamed outputs, the final outputs and the /show_model answer."""
    client = Client(url, verbose=False)
    job = client.submit(handle_file(str(photo)), **tiny_settings(client), api_name="/reconstruct")
    streamed = list(job)
    final = job.result()
    model = client.predict(api_name="/show_model")
    return {"streamed": streamed, "final": final, "model": model}


def plot_rows(plot_value: Any) -> int:
    if not plot_value:
        return 0
    return len(plot_value.get("data", []))


def params_of(final: Any) -> dict:
    downloads = final[4]
    json_files = [p for p in downloads if str(p).endswith(".json")]
    assert json_files, f"no params JSON among downloads {downloads}"
    return json.loads(Path(json_files[0]).read_text())


@pytest.fixture(scope="module")
def astronaut_run(server_url: str) -> dict[str, Any]:
    return run_fit(server_url, ASTRONAUT)


def test_streams_plot_updates_and_returns_a_loadable_glb(astronaut_run: dict[str, Any]) -> None:
    plot_updates = [out for out in astronaut_run["streamed"] if plot_rows(out[0]) > 0]
    assert len(plot_updates) > 1, "expected several streamed loss-plot updates"
    rows = [plot_rows(out[0]) for out in plot_updates]
    assert rows == sorted(rows), "the loss history should only grow while fitting"
    final = astronaut_run["final"]
    assert final[2].startswith("Done"), final[2]
    glbs = [Path(p) for p in final[4] if str(p).endswith(".glb")]
    assert len(glbs) == 1
    assert {Path(p).suffix for p in final[4]} == {".glb", ".zip", ".json"}
    mesh = trimesh.load(glbs[0], force="mesh")
    assert len(mesh.vertices) > 1000 and len(mesh.faces) > 1000
    # the textured face plus the flat-coloured ICT eyeballs that fill its eye holes
    assert list(trimesh.load(glbs[0]).geometry) == ["face", "sclera", "iris", "pupil"]
    extent_m = mesh.bounding_box.extents.max()
    assert 0.05 < extent_m < 1.0, f"a face in metres should span 5 cm to 1 m, got {extent_m:.3f}"
    # the chained endpoint hands the 3D viewer the same scene with unlit materials (mesh_unlit.glb:
    # Gradio's viewer would tint PBR materials with its own environment light)
    from ganfit_core.export.animated_glb import read_glb_json

    viewer, download = (read_glb_json(Path(p).read_bytes()) for p in (astronaut_run["model"], glbs[0]))
    assert Path(astronaut_run["model"]).name == "mesh_unlit.glb"
    assert viewer["extensionsUsed"] == ["KHR_materials_unlit"] and "extensionsUsed" not in download
    assert viewer["accessors"] == download["accessors"] and viewer["meshes"] == download["meshes"]
    assert len(download["meshes"][0]["extras"]["targetNames"]) >= 50  # animatable (ARKit names)
    texture = Image.open(final[3])
    assert min(texture.size) >= 16


def test_bad_file_gives_a_clear_error(server_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "photo.jpg"
    bad.write_text("this is not an image")
    client = Client(server_url, verbose=False)
    with pytest.raises(AppError) as info:
        client.predict(handle_file(str(bad)), **tiny_settings(client), api_name="/reconstruct")
    message = str(info.value)
    # what it is: the image loader's own message (a user error), word for word
    assert "is not an image file PIL can read (JPEG, PNG, WebP, …)" in message, message
    assert "Traceback" not in message
    assert "Reconstruction failed" not in message, "a bad file is a user error, not an internal one"
    assert "verbose error reporting" not in message, "the message must come from the app"


def test_photo_without_a_face_gives_a_clear_error(server_url: str, tmp_path: Path) -> None:
    blank = tmp_path / "wall.png"
    rng = np.random.default_rng(0)
    Image.fromarray((120 + rng.integers(0, 10, (240, 320, 3))).astype(np.uint8)).save(blank)
    client = Client(server_url, verbose=False)
    with pytest.raises(AppError) as info:
        client.predict(handle_file(str(blank)), **tiny_settings(client), api_name="/reconstruct")
    assert "face" in str(info.value).lower()
    assert "Reconstruction failed" not in str(info.value)


def test_two_concurrent_clients_get_their_own_results(
    server_url: str, astronaut_run: dict[str, Any], tmp_path: Path
) -> None:
    mirrored = tmp_path / "astronaut_mirrored.png"
    Image.open(ASTRONAUT).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(mirrored)
    results: dict[str, dict[str, Any]] = {}
    errors: list[BaseException] = []

    def worker(name: str, photo: Path) -> None:
        try:
            results[name] = run_fit(server_url, photo)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [
        threading.Thread(target=worker, args=("same", ASTRONAUT)),
        threading.Thread(target=worker, args=("mirrored", mirrored)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=150)
    assert not errors, errors
    assert set(results) == {"same", "mirrored"}
    for result in results.values():
        assert result["final"][2].startswith("Done")
    same, mirrored_params = params_of(results["same"]["final"]), params_of(results["mirrored"]["final"])
    alone = params_of(astronaut_run["final"])
    # the same photo with the same settings gives the same fitted parameters, whatever ran beside it
    # (the fit is deterministic: identical values, not merely close)…
    assert_same_fit(same, alone)
    # …and each client got the result of its own photo: its fitted identity differs
    identity_gap = np.abs(np.asarray(mirrored_params["params"]["identity"])
                          - np.asarray(alone["params"]["identity"])).max()
    assert identity_gap > 1e-3, identity_gap
    assert mirrored_params["target_landmarks_px"] != alone["target_landmarks_px"]


def assert_same_fit(a: dict, b: dict) -> None:
    """Equal fitted parameters (every field of ``params``), camera, crop and config."""
    fitted = [k for k in a["params"] if k != "expression_names"]
    assert {"identity", "expression", "sh", "texture_latent", "rotation_matrix", "focal_px"} <= set(fitted)
    for key in fitted:
        assert a["params"][key] == b["params"][key], key
    for key in ("crop_to_photo", "target_landmarks_px", "config", "region"):
        assert a[key] == b[key], key


def test_cancel_stops_the_fit_and_the_app_keeps_serving(server_url: str) -> None:
    client = Client(server_url, verbose=False)
    settings = {**tiny_settings(client), **{k: 500 for k in tiny_settings(client) if k.endswith("_steps")}}
    job = client.submit(handle_file(str(ASTRONAUT)), **settings, api_name="/reconstruct")
    deadline = time.monotonic() + 120
    while not any(plot_rows(out[0]) for out in job.outputs()) and not job.done():
        assert time.monotonic() < deadline, "no progress from the fit"
        time.sleep(0.1)
    assert client.predict(api_name="/cancel") == "Cancelled."
    while not job.done():
        assert time.monotonic() < deadline, "the fit did not stop after /cancel"
        time.sleep(0.1)
    # Either the fit stopped at its next step and said so, or Gradio dropped the job first.
    outputs = job.outputs()
    stopped = bool(outputs) and outputs[-1][2] == "Cancelled."
    assert stopped or job.status().code == Status.CANCELLED, (job.status(), outputs[-1:])
    offered = [out[4] for out in outputs if isinstance(out[4], list) and out[4]]
    assert not offered, "a cancelled fit offers no downloads"


def test_several_photos_give_one_face(server_url: str, tmp_path: Path) -> None:
    """The app's "more photos" upload (``more_photos`` in the API): one face fitted to all photos."""
    mirrored = tmp_path / "astronaut_mirrored.png"
    Image.open(ASTRONAUT).transpose(Image.FLIP_LEFT_RIGHT).save(mirrored)
    client = Client(server_url, verbose=False)
    final = client.predict(handle_file(str(ASTRONAUT)), **tiny_settings(client),
                           more_photos=[handle_file(str(mirrored))], api_name="/reconstruct")
    assert final[2].startswith("Done") and "One face fitted to 2 photos" in final[2], final[2]
    assert any(str(p).endswith("mesh.glb") for p in final[4])
