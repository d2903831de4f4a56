"""How long the privacy audit takes on a 512 px clip, beside an anchor measured in the same run.

    PYTHONPATH=src python benchmarks/bench_audit.py [--frames 300]

Builds a slice of ../shared/media/video/expression_a.mp4 (512x512, 30 fps) and a re-encode
of it (the worst case: a face in every output frame, so every descriptor runs), then times
the audit at several settings. Anchor: decoding both videos frame by frame, no analysis.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from fractions import Fraction
from pathlib import Path

from medswap.evaluate.privacy import FaceAnalyser, audit, load_gallery, paired_frames
from medswap.video import VideoWriter, probe, read_frames, write_video

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT.parent / "shared" / "media"


def per_call_ms(fn, frames, repeat=1):
    t = time.perf_counter()
    for _ in range(repeat):
        for f in frames:
            fn(f)
    return 1000 * (time.perf_counter() - t) / (len(frames) * repeat)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--runs", default="1x1,1x2,3x2,5x2", help="stride x workers, comma-separated")
    args = ap.parse_args()
    runs = [tuple(int(v) for v in r.split("x")) for r in args.runs.split(",")]
    print("load average at start: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    src = MEDIA / "video" / "expression_a.mp4"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        frames = [f.image for f in read_frames(src, max_frames=args.frames)]
        h, w = frames[0].shape[:2]
        orig = write_video(tmp / "orig.mp4", iter(frames), Fraction(30), (w, h))
        out = tmp / "reencoded.mp4"
        with VideoWriter(out, probe(orig), crf=28) as wr:
            for f in read_frames(orig):
                wr.write(f.image, f.pts)
        print(f"clip: {len(frames)} frames, {w}x{h}")

        t = time.perf_counter()
        n = sum(1 for _ in paired_frames(probe(orig), probe(out)))
        anchor = time.perf_counter() - t
        print(f"anchor: decode both videos ({n} frame pairs): {anchor:.2f} s")

        an = FaceAnalyser()
        sample = frames[:: max(1, len(frames) // 10)][:10]
        pairs = [an.detect(f) for f in sample]
        print("per call, ms (10 frames):")
        print(f"  YuNet detect        {per_call_ms(an.sface.detect, sample):7.1f}")
        print(f"  HOG detect, up 0    {per_call_ms(lambda f: an.dlib.detect(f, 0), sample):7.1f}")
        print(f"  HOG detect, up 1    {per_call_ms(lambda f: an.dlib.detect(f, 1), sample):7.1f}")
        items = list(zip(sample, [p[0] for p in pairs]))
        sf = per_call_ms(lambda fp: an.describe(fp[0], fp[1], want_dlib=False), items)
        both = per_call_ms(lambda fp: an.describe(fp[0], fp[1], want_dlib=True), items)
        print(f"  SFace descriptor    {sf:7.1f}")
        print(f"  dlib descriptor     {both - sf:7.1f}")

        t = time.perf_counter()
        gallery = load_gallery(MEDIA / "faces" / "gallery")
        print(
            f"gallery: {len(gallery.identities)} identities, built in "
            f"{time.perf_counter() - t:.1f} s (once per process)"
        )

        for stride, workers in runs:
            t = time.perf_counter()
            r = audit(orig, out, gallery=gallery, stride=stride, workers=workers)
            dt = time.perf_counter() - t
            print(
                f"audit stride={stride} workers={workers}: {dt:6.1f} s "
                f"({dt / anchor:5.1f}x anchor, {r.frames / dt:4.1f} fps); "
                f"re-id dlib {r.reid_rate('dlib'):.3f} sface {r.reid_rate('sface'):.3f}, "
                f"leak frames {len(r.leak_frames)}"
            )


if __name__ == "__main__":
    main()
