"""Speed, CPU time and peak memory of medswap deidentify at 720p, beside deface and I/O.

    benchmarks/setup_deface.sh                  # once: deface in its own venv (.bench/)
    .venv/bin/python benchmarks/bench_deidentify.py [--seconds 20] [--long-minutes 10]

One run measures, on the same 1280x720 clip (speech_a resized and padded, ping-pong looped to
``--seconds``; cached under ``.bench/``): the I/O floor (decode + libx264 veryfast, medswap's
own reader and writer), the default command (swap plus the in-stream audit of every frame and
the release gate), ``--no-audit`` (the swap alone), ``--method blur --no-audit``, and deface
1.5.0 (CenterFace + blur, its defaults) as the anchor. Each is its own process (the real CLI,
decode to encode), so its peak memory and CPU time are its own, its children included (the
audit's dlib process): CPU is user + system, memory the resident memory of all its processes
summed, sampled every 0.2 s. The machine's load average is printed before and after:
the figures scale with it, so rerun them on an idle machine. With ``--long-minutes`` the
default command also runs on a clip looped to that length, to show that peak memory does not
grow with length.
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
    """The real CLI, decode to encode (with the audit unless ``extra`` says --no-audit)."""
    return [
        sys.executable,
        "-m",
        "medswap.cli",
        "-q",
        "deidentify",
        str(src),
        "-o",
        str(out),
        "--overwrite",
        *extra,
    ]


def io_floor(src: Path, out: Path) -> None:
    """Decode every frame and encode it again with medswap's writer (libx264 veryfast)."""
    info = video.probe(src)
    with video.VideoWriter(out, info) as writer:
        for f in video.read_frames(src, info):
            writer.write(f.image, f.pts)


def run(cmd: list[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system, descendants included), and peak memory (MiB):
    the resident memory of the process and all its descendants (the audit's dlib process)
    summed, sampled every 0.2 s. ``ru_maxrss`` alone would give the largest single process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0.0
    while True:  # wait4, not Popen.poll, which would reap the child and lose its rusage
        done, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if done:
            break
        peak = max(peak, tree_rss_mib(proc.pid))
        time.sleep(0.2)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr.read().decode()[-2000:]}")
    # The dlib process the audit spawns is reaped by the child, so its CPU is in here too.
    return wall, usage.ru_utime + usage.ru_stime, max(peak, usage.ru_maxrss / 1024)


def tree_rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants, summed (Linux ``/proc``; 0 elsewhere)."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                total += next((int(x.split()[1]) for x in f if x.startswith("VmRSS:")), 0) / 1024
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (OSError, ValueError):
            continue  # the process ended between two reads
    return total


def line(label: str, n: int, wall: float, cpu: float, rss: float) -> str:
    return (
        f"{label:34s} {n / wall:6.1f} fps  {wall:6.1f} s wall  {cpu:6.1f} s CPU "
        f"({cpu / wall:4.2f} cores)  peak {rss:5.0f} MiB (all its processes)"
    )


def cached_clip(seconds: float) -> Path:
    """The 720p clip of this length, built once into .bench/ (in a child: see below)."""
    path = ROOT / ".bench" / f"speech_a_720p_{seconds:g}s.mp4"
    if not path.is_file():
        path.parent.mkdir(exist_ok=True)
        make_clip_in_child(path, seconds)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="length of the 720p clip")
    ap.add_argument(
        "--long-minutes",
        type=float,
        default=0.0,
        help="also run the default command on a looped clip this long (memory check)",
    )
    ap.add_argument("--make-clip", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--io-floor", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.make_clip:
        make_720p(args.make_clip, args.seconds)
        return
    if args.io_floor:
        io_floor(*args.io_floor)
        return
    if not SOURCE.is_file():
        raise SystemExit(f"{SOURCE} is absent: the benchmark needs ../shared/media")
    tmp = Path(tempfile.mkdtemp(prefix="medswap-bench-"))
    try:
        clip = cached_clip(args.seconds)
        n = video.count_frames(clip)
        print(
            f"clip: 1280x720, {n} frames, {os.cpu_count()} cores, "
            f"load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        wall, cpu, rss = run(
            [sys.executable, __file__, "--io-floor", str(clip), str(tmp / "io.mp4")]
        )
        print(line("I/O floor (decode + x264 veryfast)", n, wall, cpu, rss), flush=True)
        if DEFACE.is_file():
            wall, cpu, rss = run([str(DEFACE), str(clip), "-o", str(tmp / "deface.mp4")])
            print(line("deface 1.5.0 (anchor)", n, wall, cpu, rss), flush=True)
        else:
            print("deface 1.5.0: not installed (run benchmarks/setup_deface.sh)", flush=True)
        runs = [
            ("medswap default (swap + audit)", ()),
            ("medswap --no-audit (swap)", ("--no-audit",)),
            ("medswap --method blur --no-audit", ("--method", "blur", "--no-audit")),
        ]
        for label, extra in runs:
            wall, cpu, rss = run(medswap_cmd(clip, tmp / "out.mp4", *extra))
            print(line(label, n, wall, cpu, rss), flush=True)
        if args.long_minutes:
            long_clip = cached_clip(args.long_minutes * 60)
            m = video.count_frames(long_clip)
            wall, cpu, rss = run(medswap_cmd(long_clip, tmp / "long_out.mp4"))
            print(line(f"medswap default, {m} frames", m, wall, cpu, rss), flush=True)
        print(f"load average at the end {os.getloadavg()[0]:.1f}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
