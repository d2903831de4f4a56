"""Keypoint extraction speed at 720p, beside decode-only speed, and memory on short vs long input.

Usage (from the repository root, with the shared test media in ../shared/media):

    python benchmarks/bench_keypoints.py [--frames 135]

It builds a 1280x720 clip from ``speech_a.mp4`` (the 700x700 frames scaled to 720 px high and
centred), then measures in the same run:

- decode only (PyAV, upright RGB frames): the anchor;
- MediaPipe Holistic alone, dlib 68 alone, the Tasks face landmarker's blendshapes alone (on
  frames already in memory);
- full extraction (``iter_keypoints``: decode + Holistic + dlib + blendshapes), per frame
  after the first and including start-up;
- peak RSS of a child process extracting a short input and a 4x looped long input: streaming
  means the long one needs no more memory than the short one.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "media" / "video" / "speech_a.mp4"


def make_720p(dst: Path, frames: int, loops: int = 1) -> Path:
    from medswap.video import read_frames, write_video

    def gen():
        for _ in range(loops):
            for f in read_frames(SOURCE, max_frames=frames):
                canvas = np.zeros((720, 1280, 3), np.uint8)
                img = cv2.resize(f.image, (720, 720), interpolation=cv2.INTER_LINEAR)
                canvas[:, 280:1000] = img
                yield canvas

    return write_video(dst, gen(), Fraction(30), (1280, 720))


def child_rss(video: Path) -> None:
    """Run in a child: stream the keypoints of ``video``, print frames and peak RSS (MiB)."""
    from medswap.keypoints import iter_keypoints

    n = sum(1 for _ in iter_keypoints(video))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{n} {rss:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=135)
    parser.add_argument("--rss-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        child_rss(Path(args.rss_child))
        return
    if not SOURCE.is_file():
        sys.exit(f"needs the shared test media: {SOURCE} is absent")
    from medswap.keypoints import iter_keypoints
    from medswap.keypoints.blendshapes import BlendshapeReader
    from medswap.keypoints.extract import DlibTracker, HolisticExtractor
    from medswap.video import read_frames

    with tempfile.TemporaryDirectory() as tmp:
        clip = make_720p(Path(tmp) / "clip720.mp4", args.frames)
        long_clip = make_720p(Path(tmp) / "long720.mp4", args.frames, loops=4)
        short_clip = make_720p(Path(tmp) / "short720.mp4", min(30, args.frames))

        t = time.perf_counter()
        images = [f.image for f in read_frames(clip)]
        n = len(images)
        decode = n / (time.perf_counter() - t)

        holistic, dlib68 = HolisticExtractor(), DlibTracker()
        holistic(images[0])
        dlib68(images[0])
        t = time.perf_counter()
        for im in images[1:]:
            holistic(im)
        t_hol = (time.perf_counter() - t) / (n - 1)
        t = time.perf_counter()
        for im in images[1:]:
            dlib68(im)
        t_dlib = (time.perf_counter() - t) / (n - 1)
        expressions = BlendshapeReader()
        expressions(images[0], 0.0)
        t = time.perf_counter()
        for i, im in enumerate(images[1:], start=1):
            expressions(im, i / 30.0)
        t_bs = (time.perf_counter() - t) / (n - 1)
        expressions.close()
        holistic.close()
        del images

        t0 = time.perf_counter()
        t_first = None
        count = 0
        for _ in iter_keypoints(clip):
            count += 1
            if t_first is None:
                t_first = time.perf_counter()
        t_end = time.perf_counter()
        steady = (count - 1) / (t_end - t_first)
        total = count / (t_end - t0)

        rss = {}
        for name, path in (("short", short_clip), ("long (4x loop)", long_clip)):
            out = subprocess.run(
                [sys.executable, __file__, "--rss-child", str(path)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            rss[name] = (int(out[-2]), float(out[-1]))

    print(f"720p clip (1280x720, {n} frames, built from {SOURCE.name}); 2-core machine")
    print(f"  decode only (anchor)          {decode:7.1f} fps")
    print(f"  MediaPipe Holistic alone      {1 / t_hol:7.1f} fps  ({t_hol * 1000:.0f} ms/frame)")
    print(f"  dlib 68 (tracked) alone       {1 / t_dlib:7.1f} fps  ({t_dlib * 1000:.0f} ms/frame)")
    print(f"  blendshapes (Tasks) alone     {1 / t_bs:7.1f} fps  ({t_bs * 1000:.0f} ms/frame)")
    print(f"  full extraction, steady       {steady:7.1f} fps  ({steady / decode:.1%} of decode)")
    print(f"  full extraction, with start-up {total:6.1f} fps")
    for name, (frames, mib) in rss.items():
        print(f"  peak RSS, {name:15s} {frames:5d} frames  {mib:7.0f} MiB")


if __name__ == "__main__":
    main()
