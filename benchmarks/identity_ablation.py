"""What keeps a swapped patient identifiable in a lineup: paste the original back, region by region.

    PYTHONPATH=src .venv/bin/python benchmarks/identity_ablation.py [--clips a.mp4,b.mp4]
        [--frames 10] [--donor grace_hopper] [--swap default|shape0|shape1 ...]
        [--regions none,outline,...]

For each clip, each swap variant (``--swap``: the current defaults, ``--shape 0`` = the
patient's geometry, ``--shape 1`` = the donor's, ``legacy`` = the inner-only shape offset of
before the lineup work) is rendered once with ``deidentify`` (no audit). Then, on ``--frames``
frames spread evenly over the clip, the original's pixels are pasted back into one region of the
swapped frame at a time (regions from the original's own face mesh, feathered 2 px), and both
recognisers of the audit (:mod:`medswap.evaluate.privacy`) judge the result:

- ``rank-1``: the patient (enrolled from 8 frames of the original, as the audit does) is the
  nearest of the audit's default gallery *without the donor* (29 usable LFW crops, the other
  built-in portrait, and the patient: chance 1/31), the lineup an attacker with a list of
  patients holds;
- ``re-id``: the output face is within the recogniser's threshold of the same original frame.

Regions: ``none`` (the swap as it is), ``outline`` (a ring from 0.85 to 1.15 of the face outline
around its centre: jaw, cheeks, temples), ``jaw`` (the lower half of that ring), ``mouth`` (the
inner-lip opening: teeth, tongue), ``lips`` (outer lips and a margin), ``eyes`` (the eye
openings with a margin), ``brows``, ``nose``, ``fringe`` (from 0.85 to 1.3 of the upper face
outline: forehead top and hairline), ``inner`` (everything inside 0.85 of the outline: the
inner face as a whole), ``no_context`` (the reverse: the swap with everything outside 1.15 of
the face outline made grey, so hair, ears, neck and background cannot help).

Prints one table row per clip, swap variant and region, then the mean over the clips.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from conftest import FACE_CLIPS, VIDEOS  # noqa: E402

from medswap import video  # noqa: E402
from medswap.evaluate.privacy import (  # noqa: E402
    RECOGNISERS,
    FaceAnalyser,
    FrameScan,
    _patient_face,
    default_gallery,
    enrol,
    identify,
    load_donors,
    mean_descriptor,
    overlap,
    verify,
)
from medswap.faces.mesh import (  # noqa: E402
    FACE_OVAL,
    INNER_LIPS,
    LEFT_EYE,
    OUTER_LIPS,
    RIGHT_EYE,
    FaceMesher,
)
from medswap.pipeline import deidentify  # noqa: E402

#: Mesh points of the regions (MediaPipe face mesh indices).
BROWS = (
    [70, 63, 105, 66, 107, 55, 65, 52, 53, 46],
    [336, 296, 334, 293, 300, 276, 283, 282, 295, 285],
)
NOSE = [168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 98, 327, 49, 279, 48, 278, 64, 294, 129, 358]
#: The upper face outline, ear to ear over the forehead.
UPPER_OVAL = FACE_OVAL[-8:] + FACE_OVAL[:9]
REGIONS = (
    "none",
    "outline",
    "jaw",
    "mouth",
    "lips",
    "eyes",
    "brows",
    "nose",
    "fringe",
    "inner",
    "no_context",
)
SWAPS = {
    "default": {},
    "shape0": {"shape": 0.0},
    "shape1": {"shape": 1.0},
}


def _scaled(pts: np.ndarray, factor: float, centre: np.ndarray) -> np.ndarray:
    return centre + (pts - centre) * factor


def _poly(mask: np.ndarray, pts: np.ndarray, value: int = 255) -> None:
    cv2.fillPoly(mask, [np.round(pts * 4).astype(np.int32)], value, cv2.LINE_AA, shift=2)


def _hull(mask: np.ndarray, pts: np.ndarray, grow: float) -> None:
    c = pts.mean(0)
    hull = cv2.convexHull(_scaled(pts, grow, c).astype(np.float32)).reshape(-1, 2)
    _poly(mask, hull)


def region_mask(region: str, lm: np.ndarray, shape_hw: tuple[int, int]) -> np.ndarray:
    """A 0..1 float mask of ``region`` on a frame of ``shape_hw``, from its mesh ``lm``."""
    p = lm[:, :2]
    oval = p[FACE_OVAL]
    c = oval.mean(0)
    m = np.zeros(shape_hw, np.uint8)
    if region == "outline" or region == "jaw":
        _poly(m, _scaled(oval, 1.15, c))
        _poly(m, _scaled(oval, 0.85, c), 0)
        if region == "jaw":
            m[: int(round(c[1]))] = 0
    elif region == "mouth":
        _poly(m, p[INNER_LIPS])
    elif region == "lips":
        _hull(m, p[OUTER_LIPS], 1.2)
    elif region == "eyes":
        for eye in (RIGHT_EYE, LEFT_EYE):
            _hull(m, p[eye], 1.4)
    elif region == "brows":
        for brow in BROWS:
            _hull(m, p[brow], 1.25)
    elif region == "nose":
        _hull(m, p[NOSE], 1.1)
    elif region == "fringe":
        upper = p[UPPER_OVAL]
        _poly(m, np.concatenate([_scaled(upper, 1.3, c), _scaled(upper, 0.85, c)[::-1]]))
    elif region == "inner":
        _poly(m, _scaled(oval, 0.85, c))
    elif region == "no_context":
        _poly(m, _scaled(oval, 1.15, c))
        m = 255 - m  # everything but the face
    elif region != "none":
        raise ValueError(region)
    return cv2.GaussianBlur(m.astype(np.float32) / 255.0, (0, 0), 2.0)


def compose(region: str, original: np.ndarray, swapped: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """The swapped frame with the original pasted into ``region`` (grey for ``no_context``)."""
    if region == "none":
        return swapped
    a = region_mask(region, lm, original.shape[:2])[..., None]
    src = np.full_like(original, 128) if region == "no_context" else original
    return (swapped * (1 - a) + src * a).round().astype(np.uint8)


@dataclass
class Row:
    clip: str
    swap: str
    region: str
    rank1: dict
    reid: dict


def _output_record(analyser: FaceAnalyser, image: np.ndarray, original):
    """The output face in the patient's place, with both descriptors (hidden if none)."""
    pairs = analyser.detect(image)
    best, best_pair = 0.3, None
    for pair in pairs:
        box = np.asarray((pair[0] if pair[0] is not None else pair[1]).box, float)
        if (o := overlap(original.box, box)) >= best:
            best, best_pair = o, pair
    return [] if best_pair is None else [analyser.describe(image, best_pair)]


def ablate_clip(
    clip: str,
    swapped: dict[str, Path],
    regions,
    n_frames: int,
    analyser,
    gallery,
    donors: list[str],
    max_frames: int | None = None,
) -> list[Row]:
    src = VIDEOS / clip
    info = video.probe(src)
    n_total = min(info.n_frames, max_frames or info.n_frames)
    enrolled = enrol(analyser, info, n_total, 8, 1)
    template = {
        r: mean_descriptor(r, [getattr(x, r) for x in enrolled.values()]) for r in RECOGNISERS
    }
    want = set(np.linspace(0, n_total - 1, n_frames).round().astype(int).tolist())
    mesher = FaceMesher(max_faces=1, video=False, min_confidence=0.3)
    readers = {k: video.read_frames(p) for k, p in swapped.items()}
    scans: dict[tuple[str, str], list[FrameScan]] = {}
    try:
        for frame in video.read_frames(src, info, max_frames=n_total):
            outs = {k: next(r).image for k, r in readers.items()}
            if frame.index not in want:
                continue
            faces = mesher(frame.image)
            original = _patient_face(analyser, frame.image)
            if not faces or original is None:
                continue
            for k, out in outs.items():
                for region in regions:
                    image = compose(region, frame.image, out, faces[0])
                    rec = _output_record(analyser, image, original)
                    scan = FrameScan(frame.index, frame.time_s, True, original, rec)
                    scans.setdefault((k, region), []).append(scan)
    finally:
        mesher.close()
    rows = []
    # The donors' descriptors too, so that the lineup also leaves out every gallery identity a
    # recogniser takes for a donor (a morph of gallery faces, a variant under another name).
    records = load_donors(donors, analyser)
    for (k, region), s in scans.items():
        ident = identify(s, template, gallery, donors, records)
        ver, _ = verify(s)
        rank1 = {r: v.get("rank1_rate_without_donors") for r, v in ident["recognisers"].items()}
        reid = {r: ver[r]["frames_reidentified"] for r in RECOGNISERS}
        rows.append(Row(clip, k, region, rank1, reid))
    return rows


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", default=",".join(FACE_CLIPS))
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--donor", default="grace_hopper")
    ap.add_argument("--swap", nargs="+", default=["default"], choices=sorted(SWAPS))
    ap.add_argument("--regions", default=",".join(REGIONS))
    args = ap.parse_args()
    regions = args.regions.split(",")
    analyser = FaceAnalyser()
    gallery = default_gallery()
    print(
        f"gallery without the donor: {sum(g.name != args.donor for g in gallery.identities)}"
        " identities + the patient; rank-1 = share of frames the patient is nearest; "
        "re-id = frames within the threshold of the same original frame",
        flush=True,
    )
    print("clip | swap | region pasted | rank-1 dlib | rank-1 SFace | re-id dlib | re-id SFace")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        for clip in args.clips.split(","):
            swapped = {}
            for k in args.swap:
                out = Path(tmp) / f"{Path(clip).stem}_{k}.mp4"
                deidentify(VIDEOS / clip, out, donors=[args.donor], **SWAPS[k])
                swapped[k] = out
            for row in ablate_clip(
                clip, swapped, regions, args.frames, analyser, gallery, [args.donor]
            ):
                rows.append(row)
                print(
                    f"{clip} | {row.swap} | {row.region} | {_fmt(row.rank1.get('dlib'))} | "
                    f"{_fmt(row.rank1.get('sface'))} | {row.reid['dlib']} | {row.reid['sface']}",
                    flush=True,
                )
    print("\nmean over clips: swap | region | rank-1 dlib | rank-1 SFace | re-id dlib | SFace")
    for k in args.swap:
        for region in regions:
            sel = [r for r in rows if r.swap == k and r.region == region]
            if not sel:
                continue
            mean = {
                rec: np.mean([r.rank1[rec] for r in sel if r.rank1.get(rec) is not None])
                for rec in RECOGNISERS
            }
            reid = {rec: sum(r.reid[rec] for r in sel) for rec in RECOGNISERS}
            print(
                f"{k} | {region} | {mean['dlib']:.2f} | {mean['sface']:.2f} | "
                f"{reid['dlib']} | {reid['sface']}",
                flush=True,
            )


if __name__ == "__main__":
    main()
