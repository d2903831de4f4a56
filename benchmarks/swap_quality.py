"""The swap on every shared face clip, judged by models it does not use (dlib, SFace).

    .venv/bin/python benchmarks/swap_quality.py [--stride 3] [--clips a.mp4,b.mp4] [--shape S]
                                                [--donor NAME]

Prints one row per clip: frames, fps of the whole run (decode to encode), dlib 68 detection
ratio and median NME (mean point error / inter-ocular distance), and identity distances to the
original frame: dlib ResNet (same person below 0.6) and SFace cosine (same person above 0.363),
with the share of frames that would be judged the same person. The last column is the median
dlib distance of the patient's original face to the donor portrait itself: the distance a
perfect swap to that donor would reach, which bounds the swap's own.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from conftest import FACE_CLIPS, VIDEOS  # noqa: E402
from quality import measure, portrait_descriptor  # noqa: E402

from medswap.pipeline import deidentify  # noqa: E402
from medswap.swap.donors import DEFAULT_DONOR, load_donor  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stride", type=int, default=3)
    ap.add_argument("--clips", default=",".join(FACE_CLIPS))
    ap.add_argument("--shape", type=float, default=None)
    ap.add_argument("--donor", action="append", help="donor image or built-in name (default)")
    args = ap.parse_args()
    print(
        "clip | frames | fps | swapped | obscured | dlib found | NME median | "
        "dlib dist median (min) | dlib re-id | SFace cos median (max) | SFace re-id | "
        "patient to donor portrait, dlib median"
    )
    donor = load_donor(args.donor[0] if args.donor else DEFAULT_DONOR)
    to_donor = portrait_descriptor(donor.image)
    with tempfile.TemporaryDirectory() as tmp:
        for clip in args.clips.split(","):
            src = VIDEOS / clip
            out = Path(tmp) / (src.stem + ".mp4")
            t0 = time.perf_counter()
            r = deidentify(src, out, shape=args.shape, donors=args.donor)
            fps = r.totals.frames / (time.perf_counter() - t0)
            q = measure(src, out, stride=args.stride, donor_descriptor=to_donor)
            t = r.totals
            ceiling = "n/a" if to_donor is None else f"{np.median(q.dlib_to_donor):.3f}"
            print(
                f"{clip} | {t.frames} | {fps:.1f} | {t.frames_swapped} | "
                f"{t.frames_obscured} | {q.detection_ratio:.3f} | {np.median(q.nme):.4f} | "
                f"{np.median(q.dlib_distance):.3f} ({q.dlib_distance.min():.3f}) | "
                f"{np.mean(q.dlib_distance < 0.6):.1%} | {np.median(q.sface_cosine):.3f} "
                f"({q.sface_cosine.max():.3f}) | {np.mean(q.sface_cosine > 0.363):.1%} | "
                f"{ceiling}",
                flush=True,
            )


if __name__ == "__main__":
    main()
