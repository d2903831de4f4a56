"""A test-only stand-in for keypoint extraction, so the measures can be checked on real clips.

``medswap.keypoints.extract_keypoints`` is the product's extractor. This helper only exists so
that the measures' tests and benchmark do not depend on it: it runs MediaPipe's legacy hands and
face mesh (refined, 478 points) directly, plus dlib's 68 landmarks inside the mesh's box, and
fills a :class:`~medswap.types.KeypointSeries`. Handedness follows MediaPipe's label on the
un-mirrored frame, swapped to the person's own side, as ``types.KEYPOINT_GROUPS`` states.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medswap.types import KeypointSeries
from medswap.video import probe, read_frames


def quick_series(
    video: str | Path, max_frames: int | None = None, dlib68: bool = True
) -> KeypointSeries:
    """Hands, face mesh and (optionally) dlib68 keypoints of a clip, frame by frame."""
    import mediapipe as mp

    info = probe(video)
    idx, times = [], []
    hands_l, hands_r, mesh, d68 = [], [], [], []
    dlib_faces = None
    if dlib68:
        from medswap.faces.independent import DlibFaces

        dlib_faces = DlibFaces()
    nan21 = np.full((21, 3), np.nan)
    with (
        mp.solutions.hands.Hands(
            static_image_mode=False, max_num_hands=2, min_detection_confidence=0.5
        ) as hands,
        mp.solutions.face_mesh.FaceMesh(
            static_image_mode=False, max_num_faces=1, refine_landmarks=True
        ) as face_mesh,
    ):
        width = height = 0
        for frame in read_frames(video, info=info, max_frames=max_frames):
            img = frame.image
            height, width = img.shape[:2]
            idx.append(frame.index)
            times.append(frame.time_s)
            left, right = nan21.copy(), nan21.copy()
            res = hands.process(img)
            if res.multi_hand_landmarks:
                for lms, handed in zip(res.multi_hand_landmarks, res.multi_handedness):
                    cls = handed.classification[0]
                    pts = np.array([(p.x * width, p.y * height, cls.score) for p in lms.landmark])
                    # MediaPipe labels assume a mirrored (selfie) image: on an un-mirrored
                    # video its "Left" is the person's right hand.
                    if cls.label == "Left":
                        right = pts
                    else:
                        left = pts
            hands_l.append(left)
            hands_r.append(right)
            fm = np.full((478, 3), np.nan)
            dl = np.full((68, 3), np.nan)
            res = face_mesh.process(img)
            if res.multi_face_landmarks:
                lm = res.multi_face_landmarks[0].landmark
                fm = np.array([(p.x * width, p.y * height, 1.0) for p in lm])
                if dlib_faces is not None:
                    x0, y0 = fm[:, :2].min(axis=0)
                    x1, y1 = fm[:, :2].max(axis=0)
                    pts = dlib_faces.landmarks_in_box(img, np.array([x0, y0, x1, y1]))
                    dl = np.column_stack([pts, np.ones(68)])
            mesh.append(fm)
            d68.append(dl)
    groups = {
        "left_hand": np.array(hands_l).reshape(-1, 21, 3),
        "right_hand": np.array(hands_r).reshape(-1, 21, 3),
        "face_mesh": np.array(mesh).reshape(-1, 478, 3),
    }
    if dlib68:
        groups["face_dlib68"] = np.array(d68).reshape(-1, 68, 3)
    return KeypointSeries(
        frame_index=np.array(idx, dtype=int),
        time_s=np.array(times, dtype=float),
        groups=groups,
        width=width,
        height=height,
        fps=float(info.fps),
        meta={"source": str(video), "extractor": "tests/quick_keypoints.py"},
    )


def save_npz(series: KeypointSeries, path: str | Path) -> None:
    """Cache a series (for exploration only)."""
    np.savez_compressed(
        path,
        frame_index=series.frame_index,
        time_s=series.time_s,
        width=series.width,
        height=series.height,
        fps=series.fps,
        **{f"g_{k}": v for k, v in series.groups.items()},
    )


def load_npz(path: str | Path) -> KeypointSeries:
    z = np.load(path)
    return KeypointSeries(
        frame_index=z["frame_index"],
        time_s=z["time_s"],
        groups={k[2:]: z[k] for k in z.files if k.startswith("g_")},
        width=int(z["width"]),
        height=int(z["height"]),
        fps=float(z["fps"]),
    )
