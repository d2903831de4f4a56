"""Batch throughput: videos per minute and frames per second with 1 and 2 local Dask workers.

Builds one dataset of short slices of the shared clips, then runs ``run_batch`` on it with
``workers=1`` and ``workers=2`` (a fresh output folder each time, same key), and prints both
beside the anchor of the same run: the 1-worker figure. Cluster start-up is included, as a
user pays it. Run from the repository root:

    PYTHONPATH=src python benchmarks/bench_batch.py [--frames 30] [--method blur]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from medswap.batch import run_batch
from medswap.video import probe, read_frames, write_video

VIDEOS = Path(__file__).resolve().parents[1].parent / "shared" / "media" / "video"
CLIPS = [
    "speech_a.mp4",
    "speech_b.mp4",
    "speech_c.mp4",
    "webcam_single.mp4",
    "expression_b.mp4",
    "expression_c.mp4",
]


def build(root: Path, frames: int) -> int:
    total = 0
    for i, clip in enumerate(CLIPS):
        info = probe(VIDEOS / clip)
        images = [f.image for f in read_frames(VIDEOS / clip, info, max_frames=frames)]
        out = root / f"S{i % 3}" / "task" / f"{clip}"
        out.parent.mkdir(parents=True, exist_ok=True)
        write_video(out, iter(images), info.fps, info.display_size)
        total += len(images)
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=30, help="frames per video")
    ap.add_argument("--method", default="blur")
    args = ap.parse_args()
    if not VIDEOS.is_dir():
        raise SystemExit(f"shared media {VIDEOS} absent")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        frames = build(tmp / "data", args.frames)
        print(
            f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        print(f"dataset: {len(CLIPS)} videos, {frames} frames; method {args.method}")
        anchor = None
        for workers in (1, 2):
            t = time.perf_counter()
            r = run_batch(
                tmp / "data",
                tmp / f"out{workers}",
                method=args.method,
                workers=workers,
                key_file=tmp / "key",
            )
            wall = time.perf_counter() - t
            assert r.count("done") == len(CLIPS), r.summary()
            fps = frames / wall
            anchor = anchor or fps
            print(
                f"{workers} worker(s): {wall:6.1f} s  {len(CLIPS) / wall * 60:6.1f} videos/min  "
                f"{fps:6.2f} fps  ({fps / anchor:.2f}x the 1-worker anchor)"
            )


if __name__ == "__main__":
    main()
