"""Dense face landmarks (MediaPipe face mesh, 478 points with irises) and a safety-net detector.

The mesh drives the swap: every donor triangle is warped onto these points, so the patient's
expression, head pose, blinks and mouth motion carry over. The full-range face detector is a
second, independent opinion on where faces are: any face it sees that the mesh did not cover is
obscured, never passed through (fail closed).

MediaPipe's legacy solutions load their own ``.tflite`` files from inside the ``mediapipe``
package; :func:`medswap.models.model_path` checks those files' SHA-256 before the graph starts.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from medswap import native
from medswap.models import model_path

log = logging.getLogger(__name__)

#: Indices into the 478-point mesh that the swap and the measures need, kept as data.
FACE_OVAL = [
    10,
    338,
    297,
    332,
    284,
    251,
    389,
    356,
    454,
    323,
    361,
    288,
    397,
    365,
    379,
    378,
    400,
    377,
    152,
    148,
    176,
    149,
    150,
    136,
    172,
    58,
    132,
    93,
    234,
    127,
    162,
    21,
    54,
    103,
    67,
    109,
]
#: Outer lip contour, in order around the mouth.
OUTER_LIPS = [
    61,
    146,
    91,
    181,
    84,
    17,
    314,
    405,
    321,
    375,
    291,
    409,
    270,
    269,
    267,
    0,
    37,
    39,
    40,
    185,
]
#: Inner lip contour, in order around the mouth opening.
INNER_LIPS = [
    78,
    191,
    80,
    81,
    82,
    13,
    312,
    311,
    310,
    415,
    308,
    324,
    318,
    402,
    317,
    14,
    87,
    178,
    88,
    95,
]
#: Eyelid margins (the visible eye opening), in order.
RIGHT_EYE = [33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7]
LEFT_EYE = [263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249]
#: Points that move with the head, not with expression (eye corners, nose bridge and tip, the
#: top and sides of the face outline): what a similarity fit of the head's pose uses.
RIGID_POINTS = [33, 133, 362, 263, 168, 6, 197, 195, 5, 4, 1, 10, 151, 9, 234, 454, 127, 356]
#: Outer eye corners (the inter-ocular normaliser) and the nose tip.
RIGHT_EYE_OUTER, LEFT_EYE_OUTER, NOSE_TIP = 33, 263, 1
#: For each of dlib's 68 points, in dlib's order, the mesh point at the same place on the face,
#: so the two models' readings of one video can be compared point by point. The two models draw
#: the jaw line and the brows' ends differently, so there the points are near, not the same.
DLIB68_ON_MESH = (
    *(162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389),
    *(71, 63, 105, 66, 107, 336, 296, 334, 293, 301),
    *(168, 197, 5, 4, 75, 97, 2, 326, 305),
    *(33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380),
    *(61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181, 78, 82, 13, 312, 308, 317, 14, 87),
)
N_MESH = 478


def _check_models(names: list[str]) -> None:
    for name in names:
        model_path(name)


class FaceMesher:
    """Up to ``max_faces`` face meshes per frame, in pixel coordinates, tracked across frames.

    ``video=True`` lets MediaPipe follow faces from frame to frame (faster, steadier); use
    ``video=False`` for unrelated still images such as donor portraits.
    """

    def __init__(self, max_faces: int = 4, video: bool = True, min_confidence: float = 0.5):
        _check_models(["mp_face_landmark", "mp_face_detection_short"])
        import mediapipe as mp

        self._mesh = native.quietly(
            mp.solutions.face_mesh.FaceMesh,
            static_image_mode=not video,
            max_num_faces=max_faces,
            refine_landmarks=True,
            min_detection_confidence=min_confidence,
            min_tracking_confidence=min_confidence,
        )
        self._process = native.FirstCallQuiet(self._mesh.process)

    def __call__(self, image: np.ndarray) -> list[np.ndarray]:
        """(478, 3) landmark arrays (x, y, z in pixels) for each face in an RGB image."""
        h, w = image.shape[:2]
        result = self._process(image)
        faces = []
        for lms in result.multi_face_landmarks or []:
            arr = np.array([(p.x, p.y, p.z) for p in lms.landmark], dtype=np.float64)
            arr *= (w, h, w)
            faces.append(arr)
        return faces

    def close(self) -> None:
        self._mesh.close()


class FaceDetector:
    """MediaPipe full-range face detector: boxes (x0, y0, x1, y1) and scores."""

    def __init__(self, min_confidence: float = 0.4) -> None:
        _check_models(["mp_face_detection_full"])
        import mediapipe as mp

        self._det = native.quietly(
            mp.solutions.face_detection.FaceDetection,
            model_selection=1,
            min_detection_confidence=min_confidence,
        )
        self._process = native.FirstCallQuiet(self._det.process)

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h, w = image.shape[:2]
        result = self._process(image)
        boxes, scores = [], []
        for det in result.detections or []:
            bb = det.location_data.relative_bounding_box
            boxes.append(
                (bb.xmin * w, bb.ymin * h, (bb.xmin + bb.width) * w, (bb.ymin + bb.height) * h)
            )
            scores.append(det.score[0])
        return np.array(boxes, dtype=np.float64).reshape(-1, 4), np.array(scores, np.float64)

    def close(self) -> None:
        self._det.close()


#: Once no hand has been seen for ``HAND_QUIET_FRAMES`` frames, MediaPipe Hands looks for one
#: on every ``HAND_SEARCH_EVERY``-th frame only. Its palm detector runs on every frame it gets
#: until a hand is found (most of the model's cost on a frame without hands; README). A
#: hand that comes into a quiet scene is seen one frame late at most; on that frame, if it is
#: already in front of the face, the donor's face is drawn over it (the fail-closed side).
#: Near a hand seen lately every frame is searched: the model loses a raised hand for a few
#: frames at a time (hand_open_close), and each frame it finds it again counts.
HAND_SEARCH_EVERY = 2
HAND_QUIET_FRAMES = 30


class HandFinder:
    """MediaPipe hands, used only to keep hands in front of the swapped face.

    Called on the frames of one video in order (the tracker follows hands between them).
    """

    def __init__(self, max_hands: int = 2, search_every: int = HAND_SEARCH_EVERY) -> None:
        _check_models(["mp_hand_landmark_full", "mp_palm_detection_full"])
        import mediapipe as mp

        self._hands = native.quietly(
            mp.solutions.hands.Hands,
            static_image_mode=False,
            max_num_hands=max_hands,
            model_complexity=0,
            min_detection_confidence=0.5,
        )
        self._process = native.FirstCallQuiet(self._hands.process)
        self.search_every = max(1, search_every)
        # Frames since a hand was last seen; a video starts quiet.
        self._frames_without = HAND_QUIET_FRAMES

    def __call__(self, image: np.ndarray) -> list[np.ndarray]:
        """(21, 2) pixel landmarks for each hand in this frame (the next of the video)."""
        quiet = self._frames_without - HAND_QUIET_FRAMES
        if quiet >= 0 and quiet % self.search_every:
            self._frames_without += 1
            return []
        h, w = image.shape[:2]
        result = self._process(image)
        hands = [
            np.array([(p.x * w, p.y * h) for p in hand.landmark], dtype=np.float64)
            for hand in result.multi_hand_landmarks or []
        ]
        self._frames_without = 0 if hands else self._frames_without + 1
        return hands

    def close(self) -> None:
        self._hands.close()


#: A "hand" with at least this share of its 21 points inside a face's outline is taken for a
#: misdetection of that face, not for a hand in front of it (see :func:`occluding_hands`).
HAND_INSIDE_FACE = 0.8


def occluding_hands(hands: list[np.ndarray], face: np.ndarray) -> list[np.ndarray]:
    """The hands that may be drawn in front of ``face`` (its mesh landmarks, pixels).

    Where a hand covers the face, the swap leaves the frame's own pixels, so a hand the model
    imagines on the face would show the patient's face through the swap. MediaPipe Hands does
    imagine them: on expression_a.mp4, where no hand appears, it found 34 with handedness
    scores up to 0.95, every one with 95-100% of its points inside the face outline; the swap
    kept her own pixels under each, and SFace matched frame 60 to her (cosine 0.363).
    Real hands in front of a face come in from outside it, attached to a wrist and arm: on the
    shared clips at most 43% of a real hand's points were inside the outline. A hand that lies
    almost wholly inside is swapped over instead (fail closed: a real one that does is hidden
    under the donor's face, never the face under a false one).
    """
    oval = face[FACE_OVAL, :2].astype(np.float32)
    keep = []
    for hand in hands:
        inside = np.mean(
            [cv2.pointPolygonTest(oval, (float(x), float(y)), False) >= 0 for x, y in hand[:, :2]]
        )
        if inside < HAND_INSIDE_FACE:
            keep.append(hand)
    return keep


def landmarks_box(landmarks: np.ndarray) -> np.ndarray:
    """The tight (x0, y0, x1, y1) box around a face's landmarks."""
    xy = landmarks[:, :2]
    return np.array([*xy.min(axis=0), *xy.max(axis=0)], dtype=np.float64)


def inter_ocular_mesh(landmarks: np.ndarray) -> float:
    """Outer-eye-corner distance on the mesh, in pixels."""
    return float(np.linalg.norm(landmarks[RIGHT_EYE_OUTER, :2] - landmarks[LEFT_EYE_OUTER, :2]))


def head_yaw_ratio(landmarks: np.ndarray) -> float:
    """How far the head is turned: 0 facing the camera, towards 1 in full profile.

    The nose tip's horizontal position between the two cheek edges (points 234 and 454); cheap,
    and enough to stop the swap at poses where the warp would fold.
    """
    left, right, nose = landmarks[234, 0], landmarks[454, 0], landmarks[NOSE_TIP, 0]
    width = abs(right - left)
    if width < 1e-6:
        return 1.0
    centre = (left + right) / 2
    return float(min(1.0, abs(nose - centre) / (width / 2)))


#: Face-mesh indices of YuNet's five points: eye centres (irises), nose tip, mouth corners.
_MESH_EYES = (468, 473)
_MESH_NOSE = 1
_MESH_MOUTH = (61, 291)


def five_points_from_mesh(landmarks: np.ndarray) -> np.ndarray:
    """YuNet's five points (eyes, nose tip, mouth corners; image-left first) from the mesh."""
    lm = np.asarray(landmarks, dtype=np.float64)[:, :2]
    eyes = sorted((lm[i] for i in _MESH_EYES), key=lambda p: p[0])
    mouth = sorted((lm[i] for i in _MESH_MOUTH), key=lambda p: p[0])
    return np.stack([eyes[0], eyes[1], lm[_MESH_NOSE], mouth[0], mouth[1]])
