"""Before/after stills of de-identified shared clips, for docs/ and for looking at.

    .venv/bin/python benchmarks/make_stills.py OUT_DIR [--methods swap,blur,pixelate,mask]
        [--clips speech_a.mp4,...] [--frame 0.5]

For each clip it de-identifies the first seconds with each method and saves one PNG with the
original and every method side by side, at the given fraction of the clip.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from medswap import video  # noqa: E402
from medswap.pipeline import deidentify  # noqa: E402

VIDEOS = ROOT.parent / "shared" / "media" / "video"


def frame_at(path: Path, index: int) -> np.ndarray:
    for f in video.read_frames(path):
        if f.index == index:
            return f.image
    raise ValueError(f"{path} has no frame {index}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--methods", default="swap,blur,pixelate,mask")
    ap.add_argument(
        "--clips",
        default="speech_a.mp4,expression_a.mp4,hands_in_front.mp4,"
        "webcam_single.mp4,hand_open_close.mp4,signer_small_face.mp4",
    )
    ap.add_argument("--frame", type=float, default=0.5, help="where in the clip (0..1)")
    ap.add_argument("--max-frames", type=int, default=60)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for clip in args.clips.split(","):
        src = VIDEOS / clip
        n = min(video.count_frames(src), args.max_frames)
        index = int(args.frame * (n - 1))
        panels = [frame_at(src, index)]
        for method in args.methods.split(","):
            out = args.out / f".{Path(clip).stem}_{method}.mp4"
            deidentify(src, out, method=method, max_frames=n)
            panels.append(frame_at(out, index))
            out.unlink()
        h = 360
        row = np.concatenate(
            [cv2.resize(p, (round(p.shape[1] * h / p.shape[0]), h)) for p in panels], axis=1
        )
        name = args.out / f"{Path(clip).stem}.png"
        cv2.imwrite(str(name), cv2.cvtColor(row, cv2.COLOR_RGB2BGR))
        print(name)


if __name__ == "__main__":
    main()
