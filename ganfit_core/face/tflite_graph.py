"""TensorFlow Lite flatbuffer → PyTorch: a reader, a converter to safetensors, and a graph module.

MediaPipe's face models (FaceMesh, selfie segmentation) are small float16 TFLite graphs made of a
handful of standard ops. Instead of hand-writing each architecture, the builder reads the graph
with the ``tflite`` package (a build-time dependency), converts every constant to PyTorch layout
and saves them with the op list (JSON, in the safetensors header) to one safetensors file.
:class:`TfliteGraph` then executes that op list with ``torch.nn.functional``. The op list is
plain data, checked against :data:`SUPPORTED_OPS` on load: nothing from the file is executed.

Layouts: TFLite tensors are NHWC; inside :class:`TfliteGraph` activations are NCHW (PyTorch's),
so inputs are given and outputs returned as (B, C, H, W) (a (1, 1, 1, N) TFLite output comes
back as (B, N, 1, 1)). Conv filters OHWI → OIHW, depthwise (1, kh, kw, C) → (C, 1, kh, kw),
PReLU alphas (1, 1, C) → (1, C, 1, 1), channel paddings NHWC → NCHW.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganfit_core.face._layers import tf_same_padding

__all__ = [
    "SUPPORTED_OPS",
    "TfliteFormatError",
    "TfliteGraph",
    "TfliteOp",
    "convert_tflite",
    "load_tflite_graph",
    "read_tflite",
]

#: Ops :class:`TfliteGraph` executes (TFLite builtin names; custom ops prefixed ``CUSTOM:``).
SUPPORTED_OPS = frozenset({
    "CONV_2D", "DEPTHWISE_CONV_2D", "PRELU", "ADD", "MUL", "MAX_POOL_2D", "AVERAGE_POOL_2D", "PAD",
    "RELU", "RELU6", "HARD_SWISH", "LOGISTIC", "RESIZE_BILINEAR", "CUSTOM:Convolution2DTransposeBias",
})
_PADDING = {0: "SAME", 1: "VALID"}  # tflite.Padding
_ACTIVATION = {0: None, 1: "RELU", 3: "RELU6"}  # tflite.ActivationFunctionType (others unsupported)
_FLOAT_TYPES = {0: np.dtype("<f4"), 1: np.dtype("<f2")}  # tflite.TensorType FLOAT32, FLOAT16
_INT32 = 2


class TfliteFormatError(ValueError):
    """The TFLite file (or a converted graph) uses something this port does not support."""


@dataclass(frozen=True)
class TfliteOp:
    """One graph op: ``kind`` (e.g. ``"CONV_2D"``), tensor names in/out, and its options."""

    kind: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    options: dict[str, object]


# ---------------------------------------------------------------------------------------------
# Reading the flatbuffer (build time only: needs the `tflite` package)


def _op_options(kind: str, op: object) -> dict[str, object]:
    import tflite

    table = op.BuiltinOptions()
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        o = tflite.Conv2DOptions() if kind == "CONV_2D" else tflite.DepthwiseConv2DOptions()
        o.Init(table.Bytes, table.Pos)
        if o.DilationHFactor() != 1 or o.DilationWFactor() != 1:
            raise TfliteFormatError(f"{kind}: dilation is not supported")
        return {"padding": _PADDING[o.Padding()], "stride": [o.StrideH(), o.StrideW()],
                "activation": _activation(o.FusedActivationFunction())}
    if kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        o = tflite.Pool2DOptions()
        o.Init(table.Bytes, table.Pos)
        return {"padding": _PADDING[o.Padding()], "stride": [o.StrideH(), o.StrideW()],
                "kernel": [o.FilterHeight(), o.FilterWidth()],
                "activation": _activation(o.FusedActivationFunction())}
    if kind in ("ADD", "MUL"):
        o = tflite.AddOptions() if kind == "ADD" else tflite.MulOptions()
        o.Init(table.Bytes, table.Pos)
        return {"activation": _activation(o.FusedActivationFunction())}
    if kind == "RESIZE_BILINEAR":
        o = tflite.ResizeBilinearOptions()
        o.Init(table.Bytes, table.Pos)
        return {"align_corners": bool(o.AlignCorners()), "half_pixel_centers": bool(o.HalfPixelCenters())}
    if kind == "CUSTOM:Convolution2DTransposeBias":
        # MediaPipe's TfLiteTransposeConvParams: int32 padding (1 SAME, 2 VALID), stride_w, stride_h
        padding, stride_w, stride_h = np.frombuffer(op.CustomOptionsAsNumpy().tobytes(), "<i4")[:3]
        return {"padding": {1: "SAME", 2: "VALID"}[int(padding)], "stride": [int(stride_h), int(stride_w)]}
    return {}


def _activation(code: int) -> str | None:
    if code not in _ACTIVATION:
        raise TfliteFormatError(f"fused activation {code} is not supported")
    return _ACTIVATION[code]


def read_tflite(path: str | Path) -> tuple[list[TfliteOp], dict[str, np.ndarray], list[str], list[str]]:
    """Parse a single-subgraph float TFLite model.

    Returns:
        ops in execution order (DEQUANTIZE ops folded away), constants ``{tensor name: array}``
        in TFLite layout (float16 weights dequantised to float32, int32 kept), input names,
        output names.

    Raises:
        TfliteFormatError: several subgraphs, quantised int8 tensors or an unsupported op.
    """
    import tflite
    from tflite.BuiltinOperator import BuiltinOperator

    op_names = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
    model = tflite.Model.GetRootAsModel(Path(path).read_bytes(), 0)
    if model.SubgraphsLength() != 1:
        raise TfliteFormatError(f"{path}: expected one subgraph, found {model.SubgraphsLength()}")
    graph = model.Subgraphs(0)
    names = [graph.Tensors(i).Name().decode() for i in range(graph.TensorsLength())]
    if len(set(names)) != len(names):
        raise TfliteFormatError(f"{path}: tensor names are not unique")

    def constant(index: int) -> np.ndarray | None:
        tensor = graph.Tensors(index)
        data = model.Buffers(tensor.Buffer()).DataAsNumpy()
        if isinstance(data, int) or data.size == 0:
            return None
        dtype = _FLOAT_TYPES.get(tensor.Type(), np.dtype("<i4") if tensor.Type() == _INT32 else None)
        if dtype is None:
            raise TfliteFormatError(f"{path}: tensor {names[index]!r} has unsupported type {tensor.Type()}")
        shape = tuple(int(s) for s in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
        array = np.frombuffer(data.tobytes(), dtype).reshape(shape)
        return array.astype(np.float32) if array.dtype.kind == "f" else array.copy()

    constants: dict[str, np.ndarray] = {}
    alias: dict[str, str] = {}  # DEQUANTIZE output → its float16 constant
    ops: list[TfliteOp] = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        kind = op_names.get(builtin, str(builtin))
        if kind == "CUSTOM":
            kind = f"CUSTOM:{code.CustomCode().decode()}"
        inputs = [int(t) for t in op.InputsAsNumpy()]
        outputs = [int(t) for t in op.OutputsAsNumpy()]
        for t in inputs:
            if t >= 0 and names[t] not in constants:
                value = constant(t)
                if value is not None:
                    constants[names[t]] = value
        if kind == "DEQUANTIZE":
            alias[names[outputs[0]]] = names[inputs[0]]
            continue
        if kind not in SUPPORTED_OPS:
            raise TfliteFormatError(f"{path}: op {kind} is not supported by TfliteGraph")
        ops.append(TfliteOp(
            kind=kind,
            inputs=tuple(alias.get(names[t], names[t]) if t >= 0 else "" for t in inputs),
            outputs=tuple(names[t] for t in outputs),
            options=_op_options(kind, op),
        ))
    inputs = [names[int(t)] for t in graph.InputsAsNumpy()]
    outputs = [names[int(t)] for t in graph.OutputsAsNumpy()]
    return ops, constants, inputs, outputs


# ---------------------------------------------------------------------------------------------
# Conversion to PyTorch layout


def _torch_layout(kind: str, slot: int, array: np.ndarray) -> np.ndarray:
    """A constant used as input ``slot`` of a ``kind`` op, in the layout :class:`TfliteGraph` uses."""
    if slot == 1 and kind == "CONV_2D":
        return array.transpose(0, 3, 1, 2)  # OHWI → OIHW
    if slot == 1 and kind == "DEPTHWISE_CONV_2D":
        return array.transpose(3, 0, 1, 2)  # (1, kh, kw, C) → (C, 1, kh, kw)
    if slot == 1 and kind == "CUSTOM:Convolution2DTransposeBias":
        return array.transpose(3, 0, 1, 2)  # (O, kh, kw, I) → (I, O, kh, kw)
    if slot == 1 and kind == "PRELU":
        return array.reshape(-1)[None, :, None, None]  # (1, 1, C) → (1, C, 1, 1)
    if slot == 1 and kind == "PAD":
        return array[[0, 3, 1, 2]]  # NHWC paddings → NCHW
    if kind in ("ADD", "MUL") and array.ndim == 4:
        return array.transpose(0, 3, 1, 2)
    return array


def convert_tflite(path: str | Path) -> tuple[dict[str, object], dict[str, torch.Tensor]]:
    """TFLite file → (graph dict for :class:`TfliteGraph`, constants in PyTorch layout)."""
    ops, constants, inputs, outputs = read_tflite(path)
    converted: dict[str, np.ndarray] = {}
    for op in ops:
        for slot, name in enumerate(op.inputs):
            if name not in constants:
                continue
            value = np.ascontiguousarray(_torch_layout(op.kind, slot, constants[name]))
            if name in converted and not np.array_equal(converted[name], value):
                raise TfliteFormatError(f"{path}: constant {name!r} is used with two layouts")
            converted[name] = value
    graph = {
        "inputs": inputs,
        "outputs": outputs,
        "ops": [{"kind": op.kind, "inputs": list(op.inputs), "outputs": list(op.outputs),
                 "options": op.options} for op in ops],
    }
    return graph, {name: torch.from_numpy(value) for name, value in sorted(converted.items())}


def save_tflite_asset(tflite_path: Path, out_path: Path, *, source: str) -> None:
    """Convert ``tflite_path`` and write weights + graph (header metadata ``graph``: JSON with the
    op list and ``source``) to safetensors ``out_path``; the same input gives the same bytes."""
    from safetensors.torch import save_file

    graph, tensors = convert_tflite(tflite_path)
    graph["source"] = source
    # one metadata key: safetensors writes the metadata map in arbitrary order, so several keys
    # would make the bytes (and the sha256) differ from build to build
    save_file(tensors, str(out_path), metadata={"graph": json.dumps(graph, sort_keys=True)})


def load_tflite_graph(path: str | Path) -> TfliteGraph:
    """A :class:`TfliteGraph` from a file written by :func:`save_tflite_asset` (eval mode, CPU)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    if "graph" not in metadata:
        raise TfliteFormatError(f"{path}: no graph in the safetensors metadata (not a converted model)")
    return TfliteGraph(json.loads(metadata["graph"]), tensors).eval()


# ---------------------------------------------------------------------------------------------
# Execution


def _pad_same(x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int],
              value: float) -> torch.Tensor:
    top, bottom = tf_same_padding(x.shape[-2], kernel[0], stride[0])
    left, right = tf_same_padding(x.shape[-1], kernel[1], stride[1])
    if top == bottom == left == right == 0:
        return x
    return F.pad(x, (left, right, top, bottom), value=value)


def _activate(x: torch.Tensor, activation: object) -> torch.Tensor:
    if activation is None:
        return x
    return F.relu(x) if activation == "RELU" else F.relu6(x)


class TfliteGraph(nn.Module):
    """Runs a converted TFLite op list on NCHW float tensors.

    Args:
        graph: ``{"inputs": [...], "outputs": [...], "ops": [{"kind", "inputs", "outputs",
            "options"}, ...]}`` as written by :func:`convert_tflite`.
        constants: ``{tensor name: tensor}`` in PyTorch layout (kept as buffers).

    ``forward(*inputs)`` takes the graph inputs as (B, C, H, W) float32 and returns the tuple of
    graph outputs, NCHW.
    """

    def __init__(self, graph: dict[str, object], constants: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.ops = [TfliteOp(op["kind"], tuple(op["inputs"]), tuple(op["outputs"]), dict(op["options"]))
                    for op in graph["ops"]]  # type: ignore[index, union-attr]
        unsupported = sorted({op.kind for op in self.ops} - SUPPORTED_OPS)
        if unsupported:
            raise TfliteFormatError(f"unsupported ops in the graph: {', '.join(unsupported)}")
        self.input_names = list(graph["inputs"])  # type: ignore[arg-type]
        self.output_names = list(graph["outputs"])  # type: ignore[arg-type]
        self._buffer_names: dict[str, str] = {}
        for i, (name, value) in enumerate(sorted(constants.items())):
            key = f"c{i}"
            self._buffer_names[name] = key
            self.register_buffer(key, value.float() if value.is_floating_point() else value)
        produced = set(self.input_names) | set(constants)
        for op in self.ops:
            missing = [t for t in op.inputs if t and t not in produced]
            if missing:
                raise TfliteFormatError(f"{op.kind}: inputs {missing} are neither constants nor computed")
            produced.update(op.outputs)

    def constant(self, name: str) -> torch.Tensor:
        """The constant tensor ``name`` (PyTorch layout)."""
        return getattr(self, self._buffer_names[name])

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if len(inputs) != len(self.input_names):
            raise ValueError(f"expected {len(self.input_names)} input(s), got {len(inputs)}")
        values: dict[str, torch.Tensor] = dict(zip(self.input_names, inputs, strict=True))

        def get(name: str) -> torch.Tensor:
            return values[name] if name in values else self.constant(name)

        for op in self.ops:
            args = [get(t) if t else None for t in op.inputs]
            values[op.outputs[0]] = self._run(op, args)
        return tuple(values[name] for name in self.output_names)

    @staticmethod
    def _run(op: TfliteOp, args: list[torch.Tensor | None]) -> torch.Tensor:
        o = op.options
        kind = op.kind
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            x, weight, bias = args
            stride = tuple(o["stride"])
            if o["padding"] == "SAME":
                x = _pad_same(x, tuple(weight.shape[-2:]), stride, 0.0)
            groups = x.shape[1] if kind == "DEPTHWISE_CONV_2D" else 1
            return _activate(F.conv2d(x, weight, bias, stride, groups=groups), o["activation"])
        if kind == "PRELU":
            x, alpha = args
            return torch.where(x >= 0, x, x * alpha)
        if kind in ("ADD", "MUL"):
            a, b = args
            return _activate(a + b if kind == "ADD" else a * b, o["activation"])
        if kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
            (x,) = args
            kernel, stride = tuple(o["kernel"]), tuple(o["stride"])
            if kind == "MAX_POOL_2D":
                if o["padding"] == "SAME":
                    x = _pad_same(x, kernel, stride, -math.inf)
                y = F.max_pool2d(x, kernel, stride)
            else:
                probe = x[:1, :1]
                if o["padding"] == "SAME" and _pad_same(probe, kernel, stride, 0.0).shape != probe.shape:
                    raise TfliteFormatError("AVERAGE_POOL_2D with SAME padding that pads is not supported")
                y = F.avg_pool2d(x, kernel, stride)
            return _activate(y, o["activation"])
        if kind == "PAD":
            x, paddings = args
            flat = [int(v) for pair in reversed(paddings.tolist()) for v in pair]  # last dim first
            return F.pad(x, flat)
        if kind == "RELU":
            return F.relu(args[0])
        if kind == "RELU6":
            return F.relu6(args[0])
        if kind == "HARD_SWISH":
            return F.hardswish(args[0])
        if kind == "LOGISTIC":
            return torch.sigmoid(args[0])
        if kind == "RESIZE_BILINEAR":
            x, size = args
            if o["align_corners"] or not o["half_pixel_centers"]:
                raise TfliteFormatError("RESIZE_BILINEAR is supported with half-pixel centres only")
            shape = tuple(int(s) for s in size.tolist())
            return F.interpolate(x, size=shape, mode="bilinear", align_corners=False)
        if kind == "CUSTOM:Convolution2DTransposeBias":
            x, weight, bias = args
            kernel, stride = tuple(weight.shape[-2:]), tuple(o["stride"])
            if o["padding"] == "SAME" and kernel != stride:
                raise TfliteFormatError("Convolution2DTransposeBias is supported with kernel == stride only")
            return F.conv_transpose2d(x, weight, bias, stride)
        raise TfliteFormatError(f"op {kind} is not supported")  # pragma: no cover - checked in __init__
