"""bench/_recognisers.py: the TensorFlow.js graph interpreter on a small graph written here, checked
against the same network written directly in PyTorch; the five-point alignment.

(The interpreter's outputs on the real networks were checked against TensorFlow.js in Node: equal
to float precision. Those networks come from npm at benchmark time, so they are not needed here.)
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import _recognisers as R  # noqa: E402


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _conv_node(name: str, op: str, inputs: list[str], padding: str, stride: int, fused: list[str]) -> dict:
    return {"name": name, "op": op, "input": inputs,
            "attr": {"padding": {"s": _b64(padding)},
                     "strides": {"list": {"i": ["1", str(stride), str(stride), "1"]}},
                     "fused_ops": {"list": {"s": [_b64(f) for f in fused]}}}}


def _write_graph(folder: Path, weights: dict[str, np.ndarray], quantise: str | None = None) -> Path:
    nodes = [{"name": "x", "op": "Placeholder"}]
    nodes += [{"name": k, "op": "Const"} for k in weights]
    nodes += [
        _conv_node("conv", "_FusedConv2D", ["x", "w1", "b1"], "SAME", 2, ["BiasAdd", "Relu"]),
        _conv_node("dw", "FusedDepthwiseConv2dNative", ["conv", "w2", "b2"], "SAME", 1, ["BiasAdd"]),
        # PReLU as TensorFlow exports it: relu(x) + a * (x - |x|), a = alpha / 2 folded in
        {"name": "relu", "op": "Relu", "input": ["dw"]},
        {"name": "abs", "op": "Abs", "input": ["dw"]},
        {"name": "sub", "op": "Sub", "input": ["dw", "abs"]},
        {"name": "mul", "op": "Mul", "input": ["sub", "alpha"]},
        {"name": "prelu", "op": "AddV2", "input": ["relu", "mul"]},
        {"name": "pad", "op": "Pad", "input": ["prelu", "paddings"]},
        {"name": "pool", "op": "Mean", "input": ["pad", "axes"], "attr": {"keep_dims": {"b": False}}},
        {"name": "fc", "op": "_FusedMatMul", "input": ["pool", "w3", "b3"],
         "attr": {"fused_ops": {"list": {"s": [_b64("BiasAdd")]}}}},
    ]
    blob, manifest = b"", []
    for k, v in weights.items():
        entry = {"name": k, "shape": list(v.shape), "dtype": "int32" if v.dtype == np.int32 else "float32"}
        if quantise == "uint8" and k == "w3":
            lo, hi = float(v.min()), float(v.max())
            scale = (hi - lo) / 255.0
            q = np.round((v - lo) / scale).astype(np.uint8)
            entry["quantization"] = {"dtype": "uint8", "scale": scale, "min": lo}
            blob += q.tobytes()
        else:
            blob += v.astype(np.int32 if v.dtype == np.int32 else np.float32).tobytes()
        manifest.append(entry)
    (folder / "g.bin").write_bytes(blob)
    spec = {"format": "graph-model", "modelTopology": {"node": nodes},
            "weightsManifest": [{"paths": ["g.bin"], "weights": manifest}]}
    (folder / "g.json").write_text(json.dumps(spec))
    return folder / "g.json"


def _weights() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "w1": rng.normal(size=(3, 3, 3, 4)).astype(np.float32),  # HWIO
        "b1": rng.normal(size=(4,)).astype(np.float32),
        "w2": rng.normal(size=(3, 3, 4, 1)).astype(np.float32),  # H W C multiplier
        "b2": rng.normal(size=(4,)).astype(np.float32),
        "alpha": rng.uniform(0.1, 0.3, size=(4,)).astype(np.float32),
        "paddings": np.array([[0, 0], [1, 1], [2, 0], [0, 0]], dtype=np.int32),
        "axes": np.array([1, 2], dtype=np.int32),
        "w3": rng.normal(size=(4, 5)).astype(np.float32),
        "b3": rng.normal(size=(5,)).astype(np.float32),
    }


def _reference(x: torch.Tensor, w: dict[str, np.ndarray]) -> torch.Tensor:
    """The same network in plain PyTorch, NCHW, TensorFlow's SAME padding written out by hand."""
    t = {k: torch.from_numpy(v) for k, v in w.items()}
    h = x.permute(0, 3, 1, 2)
    h = F.pad(h, (0, 1, 0, 1))  # 8 px, stride 2, kernel 3: TF pads 0 before, 1 after
    h = torch.relu(F.conv2d(h, t["w1"].permute(3, 2, 0, 1), t["b1"], stride=2))
    h = F.conv2d(F.pad(h, (1, 1, 1, 1)), t["w2"].permute(2, 3, 0, 1), t["b2"], groups=4)
    h = torch.where(h > 0, h, 2.0 * t["alpha"][None, :, None, None] * h)  # PReLU, alpha = 2 a
    h = F.pad(h, (2, 0, 1, 1))  # width: 2 before; height: 1 and 1
    return h.mean(dim=(2, 3)) @ t["w3"] + t["b3"]


def test_graph_interpreter_matches_pytorch(tmp_path: Path) -> None:
    w = _weights()
    graph = R.GraphModel(_write_graph(tmp_path, w))
    x = torch.randn(2, 8, 8, 3, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(graph(x, "fc"), _reference(x, w), atol=1e-5)


def test_quantised_weights_are_dequantised(tmp_path: Path) -> None:
    w = _weights()
    graph = R.GraphModel(_write_graph(tmp_path, w, quantise="uint8"))
    step = (w["w3"].max() - w["w3"].min()) / 255.0
    assert np.abs(graph.consts["w3"].numpy() - w["w3"]).max() <= step / 2 + 1e-6
    assert graph.consts["w3"].dtype == torch.float32


def test_unknown_op_is_named(tmp_path: Path) -> None:
    path = _write_graph(tmp_path, _weights())
    spec = json.loads(path.read_text())
    spec["modelTopology"]["node"].append({"name": "odd", "op": "Cumprod", "input": ["fc"]})
    path.write_text(json.dumps(spec))
    graph = R.GraphModel(path)
    try:
        graph(torch.zeros(1, 8, 8, 3), "odd")
    except NotImplementedError as exc:
        assert "Cumprod" in str(exc)
    else:
        raise AssertionError("an unknown op must raise")


def test_similarity_transform_recovers_a_known_one() -> None:
    src = R.ARCFACE_TEMPLATE
    angle, scale, shift = 0.3, 2.5, np.array([10.0, -4.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = scale * src @ rot.T + shift
    m = R.similarity_transform(src, dst)
    assert np.allclose(m[:, :2], scale * rot, atol=1e-9) and np.allclose(m[:, 2], shift, atol=1e-9)


def test_five_points_from_68() -> None:
    lm = np.zeros((68, 2))
    lm[36:42] = [10, 20]
    lm[42:48] = [30, 20]
    lm[30], lm[48], lm[54] = [20, 30], [12, 40], [28, 40]
    assert R.five_points(lm).tolist() == [[10, 20], [30, 20], [20, 30], [12, 40], [28, 40]]
