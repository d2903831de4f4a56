"""Expression ranges (Tasks face landmarker blendshapes) on the shared clips, before and after.

Run from the repository root:
    PYTHONPATH=src .venv/bin/python benchmarks/blendshapes_clips.py [--donor grace_hopper ...]

For each expression clip it swaps the face with the defaults and each given donor, reads the
52 blendshapes of the original and of the swap with the same model (the Tasks face landmarker,
which the swap does not use), and prints each expression unit's range (5th to 95th percentile)
on both, and whether they agree (within 5 % or 0.05 of the 0..1 scale, as ``agreement``
judges them). The anchor is the time to read the original's blendshapes, in the same run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from medswap.keypoints.blendshapes import blendshape_series
from medswap.measures import agreement
from medswap.measures.face import blendshape_ranges
from medswap.pipeline import deidentify

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ["expression_a.mp4", "expression_b.mp4", "expression_c.mp4"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--donor", nargs="+", default=["grace_hopper"])
    ap.add_argument("--media", default=str(ROOT.parent / "shared" / "media" / "video"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name in CLIPS:
            src = Path(args.media) / name
            if not src.is_file():
                print(f"{name}: absent, skipped")
                continue
            t0 = time.perf_counter()
            before = {"face": {"blendshapes": blendshape_ranges(blendshape_series(src)).values}}
            print(f"\n{name}: blendshapes of the original read in {time.perf_counter() - t0:.1f} s")
            for donor in args.donor:
                out = Path(tmp) / f"{donor}_{name}"
                t1 = time.perf_counter()
                deidentify(src, out, donors=[donor])
                t2 = time.perf_counter()
                after = blendshape_ranges(blendshape_series(out)).values
                rows = agreement(before, {"face": {"blendshapes": after}})
                ok = sum(r["status"] == "ok" for r in rows)
                print(f"  donor {donor}: swap {t2 - t1:.1f} s; {ok}/{len(rows)} ranges agree")
                for r in rows:
                    unit = r["measure"].rsplit(".", 1)[-1].removesuffix("_range")
                    print(
                        f"    {unit:18s} {r['original']:.2f} -> {r['deidentified']:.2f}"
                        f"  {r['status']}"
                    )


if __name__ == "__main__":
    main()
