"""Whole-body keypoints from a video, one frame at a time.

Two independent models look at every frame:

- MediaPipe Holistic (legacy ``mp.solutions``, video mode, refined face): body 33, left and
  right hand 21 each, face mesh 478 (468 + two irises of 5 points);
- dlib's HOG detector and 68-point shape predictor (``face_dlib68``), which the face swap never
  uses, so it judges the swap instead of agreeing with it.

Beside the points, the MediaPipe Tasks face landmarker scores 52 facial blendshapes per frame
(``series.scores["face_blendshapes"]``, :mod:`medswap.keypoints.blendshapes`) for the face
measures.

Missing detections are NaN with confidence 0, never zeros. A body point whose visibility is
below ``min_visibility`` (0.5) is a guess, not a detection (hips below the frame edge of a
head-and-shoulders shot): its x and y are NaN, and its visibility is kept as its confidence.
Points of the other groups have no per-point score; a detected point has confidence 1.

Speed: the dlib HOG detector at full resolution costs 0.2-0.4 s a frame at 700 px, which would
dominate. Instead the face found in the previous frame is searched for again in a crop around
it, scaled so that the face is about 110 px wide (HOG's sweet spot, ~10 ms); only when that
fails is the whole frame searched, scaled to about 0.5 megapixels. The search only decides
*where* to look: the detector must still find the face in that frame, so a blurred face is
still lost. The 68 points are then fitted on the full-resolution frame. dlib runs in a worker
thread beside MediaPipe, using the second core. The blendshapes cost about a quarter more
(30.9 fps without them, 21.9 with). See ``benchmarks/bench_keypoints.py`` for fps.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from medswap import native
from medswap.faces.independent import DlibFaces
from medswap.keypoints.blendshapes import BlendshapeReader
from medswap.models import KEYPOINT_MODELS
from medswap.models import require as require_models
from medswap.types import KEYPOINT_GROUPS, SCORE_SETS, KeypointSeries
from medswap.video import probe, read_frames

log = logging.getLogger(__name__)

#: Pinned model files the extraction runs (their hashes go into every keypoint file).
EXTRACTION_MODELS = KEYPOINT_MODELS

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class FrameKeypoints:
    """Keypoints of one frame: ``groups[name]`` is (K, 3) float32, x, y, confidence."""

    index: int
    time_s: float
    groups: dict[str, np.ndarray]
    scores: dict[str, np.ndarray] = field(default_factory=dict)  # (K,) per SCORE_SETS


def empty_group(name: str) -> np.ndarray:
    """A group with nothing detected: NaN coordinates, confidence 0."""
    arr = np.full((KEYPOINT_GROUPS[name], 3), np.nan, dtype=np.float32)
    arr[:, 2] = 0.0
    return arr


def _landmarks(lms, width: int, height: int, k: int) -> np.ndarray:
    """MediaPipe normalised landmarks -> (k, 3) pixels with confidence 1 (NaN-padded)."""
    out = np.full((k, 3), np.nan, dtype=np.float32)
    out[:, 2] = 0.0
    if lms is None:
        return out
    pts = np.array([(p.x, p.y) for p in lms.landmark], dtype=np.float32)[:k]
    out[: len(pts), 0] = pts[:, 0] * width
    out[: len(pts), 1] = pts[:, 1] * height
    out[: len(pts), 2] = 1.0
    return out


def _pose(lms, width: int, height: int, min_visibility: float) -> np.ndarray:
    out = empty_group("body")
    if lms is None:
        return out
    raw = np.array([(p.x, p.y, p.visibility) for p in lms.landmark], dtype=np.float32)
    out[:, 0] = raw[:, 0] * width
    out[:, 1] = raw[:, 1] * height
    out[:, 2] = raw[:, 2]
    out[raw[:, 2] < min_visibility, :2] = np.nan
    return out


@cache
def shared_dlib_faces() -> DlibFaces:
    """One dlib model set per process: loading the 100 MB shape predictor costs seconds, and
    the loaded models hold no per-video state, so every extraction shares them."""
    return DlibFaces()


class DlibTracker:
    """dlib 68 landmarks per frame, searching near the last face first (see module doc)."""

    def __init__(
        self, faces: DlibFaces | None = None, face_px: float = 110.0, full_pixels: float = 0.5e6
    ) -> None:
        self.faces = faces or shared_dlib_faces()
        self.face_px = face_px
        self.full_pixels = full_pixels
        self._box: np.ndarray | None = None

    def reset(self) -> None:
        self._box = None

    def _detect_scaled(self, image: np.ndarray, scale: float, x0: int = 0, y0: int = 0):
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=interp)
        found = self.faces.detect(small, upsample=0)
        return [f.box / scale + (x0, y0, x0, y0) for f in found]

    def _search_near(self, image: np.ndarray, box: np.ndarray) -> list[np.ndarray]:
        h, w = image.shape[:2]
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        side = max(box[2] - box[0], box[3] - box[1], 8.0)
        half = 1.2 * side
        x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
        x1, y1 = int(min(w, cx + half)), int(min(h, cy + half))
        if x1 - x0 < 16 or y1 - y0 < 16:
            return []
        return self._detect_scaled(image[y0:y1, x0:x1], self.face_px / side, x0, y0)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """(68, 3): x, y, confidence 1 for the largest face; NaN and 0 when none is found."""
        boxes = self._search_near(image, self._box) if self._box is not None else []
        if not boxes:
            h, w = image.shape[:2]
            boxes = self._detect_scaled(image, min(2.0, (self.full_pixels / (w * h)) ** 0.5))
        if not boxes:
            self._box = None
            return empty_group("face_dlib68")
        self._box = boxes[0]
        pts = self.faces.landmarks_in_box(image, self._box)
        out = np.empty((68, 3), dtype=np.float32)
        out[:, :2] = pts
        out[:, 2] = 1.0
        return out


class HolisticExtractor:
    """MediaPipe Holistic in video mode; one instance per video (it tracks across frames)."""

    def __init__(self, min_visibility: float = 0.5, model_complexity: int = 1) -> None:
        import mediapipe as mp

        self.min_visibility = min_visibility
        self._holistic = native.quietly(
            mp.solutions.holistic.Holistic,
            static_image_mode=False,
            model_complexity=model_complexity,
            refine_face_landmarks=True,
            smooth_landmarks=True,
        )
        self._process = native.FirstCallQuiet(self._holistic.process)

    def __call__(self, image: np.ndarray) -> dict[str, np.ndarray]:
        h, w = image.shape[:2]
        res = self._process(image)
        return {
            "body": _pose(res.pose_landmarks, w, h, self.min_visibility),
            "left_hand": _landmarks(res.left_hand_landmarks, w, h, 21),
            "right_hand": _landmarks(res.right_hand_landmarks, w, h, 21),
            "face_mesh": _landmarks(res.face_landmarks, w, h, 478),
        }

    def close(self) -> None:
        self._holistic.close()


def model_versions() -> dict:
    """Library versions and pinned model hashes, recorded in every keypoint file."""
    import dlib
    import mediapipe

    from medswap import __version__
    from medswap.models import MODELS, model_path

    files = {}
    for name in EXTRACTION_MODELS:
        model_path(name)  # refuse to run on a model file that is not the pinned one
        files[name] = MODELS[name].sha256
    return {
        "medswap": __version__,
        "mediapipe": mediapipe.__version__,
        "dlib": dlib.__version__,
        "holistic": "model_complexity=1, refine_face_landmarks=True, video mode",
        "min_visibility": 0.5,
        "models": files,
    }


def iter_keypoints(
    video_path: str | Path,
    max_frames: int | None = None,
    progress: Progress | None = None,
    min_visibility: float = 0.5,
) -> Iterator[FrameKeypoints]:
    """Yield each frame's keypoints as it is decoded; memory does not grow with length."""
    require_models(EXTRACTION_MODELS)  # every model checked before the first frame is read
    info = probe(video_path)
    total = info.n_frames if max_frames is None else min(max_frames, info.n_frames or max_frames)
    holistic = HolisticExtractor(min_visibility=min_visibility)
    expressions = BlendshapeReader()
    dlib68 = DlibTracker()
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="medswap-dlib")
    try:
        for frame in read_frames(video_path, info=info, max_frames=max_frames):
            face = pool.submit(dlib68, frame.image)
            groups = holistic(frame.image)
            # After Holistic, not beside it: MediaPipe's own threads already use both cores
            # (measured 22.7 fps in the dlib thread against 21.9 fps here).
            scores = {"face_blendshapes": expressions(frame.image, frame.time_s)}
            groups["face_dlib68"] = face.result()
            yield FrameKeypoints(frame.index, frame.time_s, groups, scores)
            if progress is not None:
                progress(frame.index + 1, total)
    finally:
        pool.shutdown(wait=True)
        holistic.close()
        expressions.close()


def extract_keypoints(
    video_path: str | Path,
    max_frames: int | None = None,
    progress: Progress | None = None,
    min_visibility: float = 0.5,
) -> KeypointSeries:
    """Every frame's whole-body keypoints (see the module doc for what "missing" means)."""
    from medswap.outputs import sha256_file

    info = probe(video_path)
    width, height = info.display_size
    index: list[int] = []
    times: list[float] = []
    per_group: dict[str, list[np.ndarray]] = {name: [] for name in KEYPOINT_GROUPS}
    per_score: dict[str, list[np.ndarray]] = {name: [] for name in SCORE_SETS}
    for fk in iter_keypoints(video_path, max_frames, progress, min_visibility):
        index.append(fk.index)
        times.append(fk.time_s)
        for name in KEYPOINT_GROUPS:
            per_group[name].append(fk.groups[name])
        for name in SCORE_SETS:
            per_score[name].append(fk.scores[name])
    groups = {
        name: np.stack(arrs) if arrs else np.zeros((0, KEYPOINT_GROUPS[name], 3), np.float32)
        for name, arrs in per_group.items()
    }
    scores = {
        name: np.stack(arrs) if arrs else np.zeros((0, SCORE_SETS[name]), np.float32)
        for name, arrs in per_score.items()
    }
    meta = {
        "video": Path(video_path).name,
        "video_sha256": sha256_file(video_path),
        "width": width,
        "height": height,
        "fps": float(info.fps),
        "n_frames_video": info.n_frames,
        "max_frames": max_frames,
        "versions": model_versions(),
    }
    log.debug("%s: keypoints of %d frames", Path(video_path).name, len(index))
    return KeypointSeries(
        frame_index=np.asarray(index, dtype=np.int64),
        time_s=np.asarray(times, dtype=np.float64),
        groups=groups,
        width=width,
        height=height,
        fps=float(info.fps),
        meta=meta,
        scores=scores,
    )
