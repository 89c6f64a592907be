"""Builder for the ``ict_face_model`` asset: ICT-FaceKit Light OBJs → one safetensors file.

Source: ``FaceXModel.tar.xz`` from ICT-FaceKit (MIT), found under the asset source folder
(``<source root>/ict-facekit``). The archive holds ``generic_neutral_mesh.obj``, 100 identity
modes ``identity000..099.obj``, 53 expression targets (ARKit names, listed in
``vertex_indices.json``) and landmark tables. Every OBJ is the full mesh (26,719 vertices,
26,384 polygons: quads plus a few triangles, ``f v/vt`` with 28,911 UVs, centimetres).

What the builder writes (all tensors over the **full** mesh; regions are chosen at load time):

- ``mean`` (V, 3) float32, millimetres: the neutral mesh (ICT centimetres × 10).
- ``identity_basis`` (100, V, 3) float32 mm: ``identityNNN - neutral``. The modes are scaled by
  their standard deviation (displacement RMS shrinks with the index), so coefficients are ~N(0, 1).
- ``expression_basis`` (53, V, 3) float32 mm: ``expression - neutral``; coefficients in [0, 1].
- ``faces`` (F, 3) int64 triangles; each quad ``a b c d`` becomes ``a b c`` and ``a c d``, keeping
  the OBJ's winding: counter-clockwise seen from outside (normals point out of the head; +z on the
  face front).
- ``uv_faces`` (F, 3) int64 into ``uvs`` (T, 2) float32, (u, v) with v up (OBJ convention).
- ``face_polygon`` (F,) int64: the source OBJ polygon of each triangle (for region selection).
- ``landmark_indices`` (68,), ``jaw_right`` (17,), ``jaw_left`` (17,) int64 vertex indices.

Metadata (one key, ``ganfit``, a sorted JSON document): expression names, regions (vertex and
polygon ranges), units, source archive sha256, format version. The output is byte-for-byte
deterministic, so the asset registry can pin its sha256.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath

import numpy as np

ARCHIVE_NAME = "FaceXModel.tar.xz"
ARCHIVE_SHA256 = "2fdcf5009c8bcc58af07db3b8d5d9dcf25a4a7d1ffc9e1153648d1d42c66ead4"
FORMAT_VERSION = 1
CM_TO_MM = 10.0
NUM_IDENTITY = 100
NUM_VERTICES = 26719
NUM_POLYGONS = 26384
NUM_UVS = 28911
METADATA_KEY = "ganfit"

# Vertex / polygon index ranges [start, stop) of each selectable region (ICT-FaceKit README tables).
REGIONS: dict[str, dict[str, list[int]]] = {
    "narrow_face": {"vertices": [0, 6706], "polygons": [0, 6560]},
    "face": {"vertices": [0, 9409], "polygons": [0, 9230]},
    "face_neck": {"vertices": [0, 11248], "polygons": [0, 11144]},
    "full": {"vertices": [0, NUM_VERTICES], "polygons": [0, NUM_POLYGONS]},
}

# 68 Multi-PIE landmarks and the extended (sliding) jawline candidate sets, from the ICT README.
LANDMARKS_68: tuple[int, ...] = (
    1225, 1888, 1052, 367, 1719, 1722, 2199, 1447, 966, 3661, 4390, 3927, 3924, 2608, 3272, 4088, 3443,
    268, 493, 1914, 2044, 1401, 3615, 4240, 4114, 2734, 2509, 978, 4527, 4942, 4857, 1140, 2075, 1147,
    4269, 3360, 1507, 1542, 1537, 1528, 1518, 1511, 3742, 3751, 3756, 3721, 3725, 3732, 5708, 5695, 2081,
    0, 4275, 6200, 6213, 6346, 6461, 5518, 5957, 5841, 5702, 5711, 5533, 6216, 6207, 6470, 5517, 5966,
)
JAW_RIGHT_EXTENDED: tuple[int, ...] = (
    1280, 1278, 1275, 1272, 1248, 12, 820, 1834, 1902, 243, 844, 781, 1673, 2199, 801, 1447, 800,
)
JAW_LEFT_EXTENDED: tuple[int, ...] = (
    3041, 3661, 3042, 4390, 3880, 3022, 3085, 2484, 4102, 4036, 3061, 2253, 3466, 3490, 3493, 3496, 3498,
)


def _read(source: Path | bytes) -> bytes:
    return source if isinstance(source, bytes) else Path(source).read_bytes()


def parse_obj_vertices(source: Path | bytes) -> np.ndarray:
    r"""The ``v x y z`` lines of an OBJ (a path or its bytes) → (V, 3) float64, in the file's units.

    Example:
        >>> parse_obj_vertices(b"v 0 1 2\nv 3 4 5.5\nvt 0 0\nf 1/1 2/1 2/1\n").tolist()
        [[0.0, 1.0, 2.0], [3.0, 4.0, 5.5]]
    """
    data = _read(source)
    count = data.count(b"\nv ") + data.startswith(b"v ")
    # Fast path: the vertex lines form one block (true of every ICT file).
    first = 0 if data.startswith(b"v ") else data.find(b"\nv ") + 1
    last = data.rfind(b"\nv ") + 1 if count > 1 else first
    stop = data.find(b"\n", last)
    block = data[first: len(data) if stop < 0 else stop]
    if count and block.count(b"\n") == count - 1:
        rows = block.replace(b"v ", b" ")
    else:
        rows = b" ".join(line[2:] for line in data.split(b"\n") if line.startswith(b"v "))
    values = np.array(rows.split(), dtype=np.float64)
    if values.size != 3 * count:
        raise ValueError(f"OBJ: expected 3 coordinates per 'v' line, got {values.size} values "
                         f"for {count} lines")
    return values.reshape(-1, 3)


def parse_obj_topology(source: Path | bytes) -> tuple[np.ndarray, list[list[int]], list[list[int]]]:
    """UVs and polygons of an OBJ (a path or its bytes) with ``f v/vt`` faces.

    Returns ``uvs`` (T, 2) float64 and, per polygon, 0-based vertex and UV index lists.
    """
    uvs: list[bytes] = []
    polys: list[list[int]] = []
    uv_polys: list[list[int]] = []
    for line in _read(source).split(b"\n"):
        if line.startswith(b"vt "):
            uvs.append(line[3:])
        elif line.startswith(b"f "):
            corners = [c.split(b"/") for c in line[2:].split()]
            if any(len(c) < 2 or not c[1] for c in corners):
                raise ValueError(f"OBJ: face line without UV indices: {line!r}")
            polys.append([int(c[0]) - 1 for c in corners])
            uv_polys.append([int(c[1]) - 1 for c in corners])
    uv_array = np.array(b" ".join(uvs).split(), dtype=np.float64).reshape(-1, 2)
    return uv_array, polys, uv_polys


def triangulate(polys: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Fan-triangulate polygons keeping their winding.

    Returns ``triangles`` (F, 3) int64 (``a b c d`` → ``a b c``, ``a c d``) and ``polygon`` (F,)
    int64, the source polygon index of each triangle.

    Example:
        >>> tris, owner = triangulate([[0, 1, 2, 3], [3, 2, 4]])
        >>> tris.tolist(), owner.tolist()
        ([[0, 1, 2], [0, 2, 3], [3, 2, 4]], [0, 0, 1])
    """
    tris: list[list[int]] = []
    owner: list[int] = []
    for index, poly in enumerate(polys):
        for k in range(1, len(poly) - 1):
            tris.append([poly[0], poly[k], poly[k + 1]])
            owner.append(index)
    return np.asarray(tris, dtype=np.int64).reshape(-1, 3), np.asarray(owner, dtype=np.int64)


def iter_model_files(source: Path) -> Iterator[tuple[str, bytes]]:
    """(file name, bytes) of each file of the model: ``source`` is ``FaceXModel.tar.xz`` (read as a
    stream, nothing written to disk) or an unpacked ``FaceXModel/`` folder."""
    source = Path(source)
    if source.is_dir():
        for path in sorted(source.iterdir()):
            if path.is_file():
                yield path.name, path.read_bytes()
        return
    with tarfile.open(source, "r|xz") as tar:
        for member in tar:
            handle = tar.extractfile(member) if member.isfile() else None
            if handle is not None:
                yield PurePosixPath(member.name).name, handle.read()


def build_arrays(source: Path, *, progress: bool = True) -> tuple[dict[str, np.ndarray], dict]:
    """Parse the ICT model (archive or unpacked folder) → (tensors, metadata) as the builder writes them."""
    vertices: dict[str, np.ndarray] = {}
    topology = None
    names: list[str] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(desc="ICT OBJs", unit="obj")
    for filename, data in iter_model_files(source):
        if filename == "vertex_indices.json":
            names = [str(name) for name in json.loads(data)["expressions"]]
        elif filename.endswith(".obj"):
            vertices[filename[:-4]] = parse_obj_vertices(data)
            if filename == "generic_neutral_mesh.obj":
                topology = parse_obj_topology(data)
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.close()
    if topology is None or not names:
        raise ValueError(f"{source}: no generic_neutral_mesh.obj or vertex_indices.json inside")
    uvs, polys, uv_polys = topology
    neutral = vertices["generic_neutral_mesh"]
    if neutral.shape[0] != NUM_VERTICES or len(polys) != NUM_POLYGONS or uvs.shape[0] != NUM_UVS:
        raise ValueError(
            f"unexpected ICT mesh: expected {NUM_VERTICES} vertices, {NUM_POLYGONS} polygons, {NUM_UVS} UVs; "
            f"got {neutral.shape[0]}, {len(polys)}, {uvs.shape[0]}"
        )
    faces, face_polygon = triangulate(polys)
    uv_faces, _ = triangulate(uv_polys)

    modes = [f"identity{k:03d}" for k in range(NUM_IDENTITY)] + names
    missing = [mode for mode in modes if mode not in vertices]
    if missing:
        raise ValueError(f"{source}: missing OBJs {missing[:5]}{'...' if len(missing) > 5 else ''}")
    basis = np.empty((len(modes), NUM_VERTICES, 3), dtype=np.float32)
    for index, mode in enumerate(modes):
        if vertices[mode].shape != neutral.shape:
            raise ValueError(f"{mode}.obj: expected {neutral.shape[0]} vertices, "
                             f"got {vertices[mode].shape[0]}")
        basis[index] = (vertices.pop(mode) - neutral) * CM_TO_MM

    tensors = {
        "mean": (neutral * CM_TO_MM).astype(np.float32),
        "identity_basis": np.ascontiguousarray(basis[:NUM_IDENTITY]),
        "expression_basis": np.ascontiguousarray(basis[NUM_IDENTITY:]),
        "faces": faces,
        "uv_faces": uv_faces,
        "uvs": uvs.astype(np.float32),
        "face_polygon": face_polygon,
        "landmark_indices": np.asarray(LANDMARKS_68, dtype=np.int64),
        "jaw_right": np.asarray(JAW_RIGHT_EXTENDED, dtype=np.int64),
        "jaw_left": np.asarray(JAW_LEFT_EXTENDED, dtype=np.int64),
    }
    metadata = {
        "format_version": FORMAT_VERSION,
        "source": "ICT-FaceKit Light FaceXModel.tar.xz (MIT)",
        "source_sha256": ARCHIVE_SHA256,
        "units": "millimetres",
        "winding": "counter-clockwise seen from outside",
        "expression_names": names,
        "regions": REGIONS,
    }
    return tensors, metadata


def find_archive(source_dir: Path) -> Path:
    """``source_dir/FaceXModel.tar.xz`` (or ``source_dir/ict-facekit/...``), else FileNotFoundError."""
    for candidate in (Path(source_dir) / ARCHIVE_NAME, Path(source_dir) / "ict-facekit" / ARCHIVE_NAME):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{ARCHIVE_NAME} not found in {source_dir} (ICT-FaceKit Light, MIT)")


def build_ict_face_model(source_dir: Path, out_path: Path, *, progress: bool = True) -> None:
    """Asset builder: ``source_dir`` holds ``FaceXModel.tar.xz``; writes the safetensors file."""
    from safetensors.numpy import save_file

    tensors, metadata = build_arrays(find_archive(source_dir), progress=progress)
    save_file(tensors, str(out_path), metadata={METADATA_KEY: json.dumps(metadata, sort_keys=True)})
