"""Speed and peak memory of medswap's methods on a 720p clip, beside deface 1.5.0.

    benchmarks/setup_deface.sh                  # once: deface in its own venv (.bench/)
    .venv/bin/python benchmarks/bench_deidentify.py [--seconds 30] [--long-minutes 10]

The first line is the anchor, measured in the same run on the same clip: deface 1.5.0
(CenterFace + blur, its defaults). Each method runs as its own process (the real CLI, decode to
encode), so its peak RSS is its own. With ``--long-minutes`` the swap also runs on a clip made
by looping the 720p clip to that length, to show that peak memory does not grow with length.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from medswap import video  # noqa: E402

SOURCE = ROOT.parent / "shared" / "media" / "video" / "speech_a.mp4"
DEFACE = ROOT / ".bench" / "deface-venv" / "bin" / "deface"


def make_720p(out: Path, seconds: float) -> Path:
    """speech_a scaled to 720 px high and centred on a 1280x720 canvas, looped to length."""
    frames = []
    for f in video.read_frames(SOURCE):
        face = cv2.resize(f.image, (720, 720), interpolation=cv2.INTER_AREA)
        side = cv2.resize(cv2.GaussianBlur(face, (0, 0), 25), (280, 720))
        frames.append(np.concatenate([side, face, side[:, ::-1]], axis=1))
    n = int(seconds * 30)
    loop = frames + frames[::-1]  # ping-pong, so the loop has no jump
    return video.write_video(
        out, (loop[i % len(loop)] for i in range(n)), Fraction(30), (1280, 720)
    )


def make_clip_in_child(out: Path, seconds: float) -> Path:
    """Build the clip in a child process, so that this process stays small.

    A forked child's peak RSS starts at its parent's size; building the clip here (every frame
    in memory) once made every measured process report the same 588 MiB.
    """
    subprocess.run(
        [sys.executable, __file__, "--make-clip", str(out), "--seconds", str(seconds)], check=True
    )
    return out


def medswap_cmd(src: Path, out: Path, *extra: str) -> list[str]:
    """The real CLI, decode to encode, without the audit (timed on its own elsewhere)."""
    return [
        sys.executable,
        "-m",
        "medswap.cli",
        "-q",
        "deidentify",
        str(src),
        "-o",
        str(out),
        "--no-audit",
        *extra,
    ]


def run(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="length of the 720p clip")
    ap.add_argument(
        "--long-minutes",
        type=float,
        default=0.0,
        help="also run swap on a looped clip this long (memory check)",
    )
    ap.add_argument("--methods", default="swap,blur,pixelate,mask")
    ap.add_argument("--make-clip", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.make_clip:
        make_720p(args.make_clip, args.seconds)
        return
    if not SOURCE.is_file():
        raise SystemExit(f"{SOURCE} is absent: the benchmark needs ../shared/media")
    tmp = Path(tempfile.mkdtemp(prefix="medswap-bench-"))
    try:
        clip = make_clip_in_child(tmp / "clip720.mp4", args.seconds)
        n = video.count_frames(clip)
        print(f"clip: 1280x720, {n} frames, {os.cpu_count()} cores", flush=True)
        if DEFACE.is_file():
            wall, rss = run([str(DEFACE), str(clip), "-o", str(tmp / "deface.mp4")])
            print(
                f"anchor deface 1.5.0: {n / wall:6.1f} fps  {wall:6.1f} s  peak {rss:6.0f} MiB",
                flush=True,
            )
        else:
            print("anchor deface 1.5.0: not installed (run benchmarks/setup_deface.sh)")
        for method in args.methods.split(","):
            out = tmp / f"{method}.mp4"
            wall, rss = run(medswap_cmd(clip, out, "--method", method))
            print(
                f"medswap {method:9s}: {n / wall:6.1f} fps  {wall:6.1f} s  peak {rss:6.0f} MiB",
                flush=True,
            )
        if args.long_minutes:
            for minutes in (args.long_minutes / 10, args.long_minutes):
                long_clip = make_clip_in_child(tmp / "long.mp4", minutes * 60)
                m = video.count_frames(long_clip)
                wall, rss = run(medswap_cmd(long_clip, tmp / "long_out.mp4", "--overwrite"))
                print(
                    f"medswap swap, {minutes:4.1f} min ({m} frames): {m / wall:6.1f} fps  "
                    f"peak {rss:6.0f} MiB",
                    flush=True,
                )
                long_clip.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
