"""The asset table: every model file ganfit uses (data only; see the package docstring to add one)."""

from __future__ import annotations

from ganfit_core.assets.spec import AssetSpec

_FACEAPI = "MIT (@vladmandic/face-api 1.7.15)"

_SPECS: tuple[AssetSpec, ...] = (
    AssetSpec(
        name="ict_face_model",
        filename="ict_face_model.safetensors",
        sha256=None,
        builder="ganfit_core.model.ict_build:build_ict_face_model",
        source_subdir="ict-facekit",
        sources=("ict-facekit/FaceXModel/",),
        accept_sha256=("7e224f5855287c080383a3b6b3fa7e5cf3b5b79d66f225bcc676864edda51532",),
        licence="MIT (ICT-FaceKit)",
        description="ICT-FaceKit Light morphable model: mean, 100 identity + 53 expression bases (mm), "
        "triangles, UVs, landmarks",
    ),
    AssetSpec(
        name="faceapi_recognition",
        filename="faceapi_recognition.safetensors",
        sha256=None,
        builder="ganfit_core.face.faceapi_recognition:build_faceapi_recognition",
        source_subdir="face-api",
        sources=("face-api/model/face_recognition_model",),
        accept_sha256=("8267d3a5b87c1de9210b0901fdae6f0b0e7f70417cfa10679af0d285a547b4b5",),
        licence=_FACEAPI,
        description="face-api's port of dlib's ResNet face descriptor: aligned 150x150 RGB chip -> 128-D",
    ),
    AssetSpec(
        name="arcface_r100",
        filename="arcface.onnx",
        sha256=None,  # not stated publicly; pin it from a download (`assets list` prints the hash)
        hub_repo="FoivosPar/Arc2Face",
        licence="InsightFace antelopev2 glintr100: non-commercial research only (check before use)",
        description="ArcFace R100 ONNX (261 MB), optional identity backend for online users (onnx2torch)",
    ),
    AssetSpec(
        name="faceapi_tiny_detector",
        filename="faceapi_tiny_detector.safetensors",
        sha256=None,
        builder="ganfit_core.face.faceapi_detector:build_tiny_detector",
        source_subdir="face-api",
        sources=("face-api/model/tiny_face_detector_model",),
        accept_sha256=("ade7b2f1b19269471fb4f04b328e4418a04f41a51881ebe6c78eef7acb0dc1ee",),
        licence=_FACEAPI,
        description="face-api Tiny Face Detector (tiny-YOLOv2, separable convs, 416 px input)",
    ),
    AssetSpec(
        name="faceapi_landmark68",
        filename="faceapi_landmark68.safetensors",
        sha256=None,
        builder="ganfit_core.face.faceapi_landmarks:build_landmark68",
        source_subdir="face-api",
        sources=("face-api/model/face_landmark_68_model",),
        accept_sha256=("4a41a348daf4c32e06771609e584077ea88e8bb730f4a79e69ac58c7145c72b6",),
        licence=_FACEAPI,
        description="face-api 68-point landmark net (112 px face crop, iBUG 68 layout)",
    ),
    AssetSpec(
        name="mediapipe_face_landmark",
        filename="mediapipe_face_landmark.safetensors",
        sha256=None,
        builder="ganfit_core.face.facemesh:build_face_landmark",
        source_subdir="mediapipe",
        sources=("mediapipe/face_landmark.tflite",),
        accept_sha256=("755550fe95f66e83f584506cc51ef778ef43910b41c6801fa05c8b3fbff20edf",),
        licence="Apache-2.0 (MediaPipe 0.10.21)",
        description="MediaPipe FaceMesh (face_landmark.tflite): 192 px face crop -> 468 x (x, y, z) + "
        "face presence; TFLite graph and float16 weights converted to PyTorch",
    ),
    AssetSpec(
        name="mediapipe_selfie_segmentation",
        filename="mediapipe_selfie_segmentation.safetensors",
        sha256=None,
        builder="ganfit_core.face.segmentation:build_selfie_segmentation",
        source_subdir="mediapipe",
        sources=("mediapipe/selfie_segmentation.tflite",),
        accept_sha256=("87babae2acbe2dff0238d1a3daecb35361cd2cba2169fed5268012082920aeb9",),
        licence="Apache-2.0 (MediaPipe 0.10.21)",
        description="MediaPipe selfie segmentation (selfie_segmentation.tflite): 256 px photo -> person "
        "probability mask; TFLite graph and float16 weights converted to PyTorch",
    ),
    AssetSpec(
        name="ict_facemesh_correspondence",
        filename="ict_facemesh_correspondence.safetensors",
        sha256=None,
        builder="ganfit_core.model.facemesh_correspondence:build_correspondence",
        source_subdir=None,  # derived only from the assets below (source_dir is handed on to them)
        requires=("ict_face_model", "mediapipe_face_landmark", "texture_pca"),
        # Renders textured by texture_pca, whose bytes differ between machines: so do these.
        tolerance=1e-2,
        exact_integers=False,  # a nearest triangle can flip with float noise in the renders
        licence="MIT (ICT-FaceKit) + Apache-2.0 (MediaPipe); renders textured by texture_pca (CC BY 4.0)",
        description="MediaPipe FaceMesh 468 points -> ICT face-region surface (triangle + barycentrics) "
        "and per-point spread (mm), from FaceMesh on 160 ICT renders (yaw up to 45 deg)",
    ),
    AssetSpec(
        name="texture_pca",
        filename="texture_pca.safetensors",
        sha256=None,
        builder="ganfit_core.pipelines.uv_extract:build_texture_pca",
        builder_version=2,  # 2: skin-only UV maps (hair, background, eyes, mouth interior masked out)
        source_subdir="london-faces",
        sources=("london-faces/neutral_front/", "london-faces/smiling_front/", "london-faces/canada/"),
        requires=("ict_face_model", "faceapi_tiny_detector", "faceapi_landmark68"),
        # Float pipeline (JPEG decoding, fitting, PCA): the bytes differ between machines and library
        # versions, so the file is checked by provenance and content fingerprint.
        tolerance=1e-2,
        licence="CC BY 4.0 (derived from the Face Research Lab London Set and Young Adult White Faces; "
        "attribution in the file's metadata)",
        description="PCA texture prior: mean + 64 components of 256x256 ICT UV albedo maps unwrapped from "
        "the london-faces photos, skin only (hair, background, eyes, mouth interior masked out and "
        "completed; training identities only)",
    ),
    AssetSpec(
        name="texture_gan",
        filename="texture_gan.safetensors",
        sha256=None,  # a seeded CPU training run: checked by provenance; pin the published file
        builder="ganfit_core.pipelines.texture_gan:build_texture_gan",
        source_subdir="london-faces",
        sources=("london-faces/neutral_front/", "london-faces/smiling_front/", "london-faces/canada/"),
        requires=("ict_face_model", "faceapi_tiny_detector", "faceapi_landmark68"),
        on_demand=True,
        licence="CC BY 4.0 (trained on UV maps derived from the Face Research Lab London Set and Young "
        "Adult White Faces; attribution in the file's metadata)",
        description="GAN texture prior: the 64-component PCA of the skin-only UV maps plus a StyleGAN2-like "
        "residual generator orthogonal to it; the builder extracts the UV data set and runs "
        "`python -m ganfit_core.texture train --config full` (about 45 min on a CPU)",
    ),
)

#: The registry: asset name → spec.
ASSETS: dict[str, AssetSpec] = {spec.name: spec for spec in _SPECS}
