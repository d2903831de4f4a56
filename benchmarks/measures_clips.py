"""Clinical measures on the shared clips: values, cost, and sensitivity to keypoint jitter.

Run from the repository root:
    PYTHONPATH=src python benchmarks/measures_clips.py [--jitter-px 1.0] [--swap [--shape S]]

For each clip it prints the time to extract keypoints (the anchor: MediaPipe hands + face mesh
via tests/quick_keypoints.py, measured in the same run) beside the time to compute every measure,
the headline values, and how many measures stay within tolerance (frequencies 2 %, counts exact,
others 5 %) when every keypoint is moved by Gaussian jitter of the given size. The jitter is a
stand-in for a de-identification that moves keypoints a little; it is not the swap itself.
With ``--swap`` the same agreement is measured against the real thing: each clip de-identified
with the default swap (or ``--shape S``), its keypoints extracted the same way.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from quick_keypoints import quick_series  # noqa: E402

from medswap.measures import agreement, measure_set  # noqa: E402
from medswap.pipeline import deidentify  # noqa: E402
from medswap.types import KeypointSeries  # noqa: E402

CLIPS = ["hand_open_close.mp4", "expression_a.mp4", "expression_b.mp4", "expression_c.mp4"]


def jittered(s: KeypointSeries, px: float, seed: int = 0) -> KeypointSeries:
    rng = np.random.default_rng(seed)
    groups = {}
    for k, v in s.groups.items():
        g = v.copy()
        g[:, :, :2] += rng.normal(0, px, g[:, :, :2].shape)
        groups[k] = g
    return KeypointSeries(s.frame_index, s.time_s, groups, s.width, s.height, s.fps, s.meta)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jitter-px", type=float, default=1.0)
    ap.add_argument("--swap", action="store_true", help="compare with the default swap instead")
    ap.add_argument("--shape", type=float, default=None, help="with --swap: this shape blend")
    ap.add_argument("--media", default=str(ROOT.parent / "shared" / "media" / "video"))
    args = ap.parse_args()
    for name in CLIPS:
        path = Path(args.media) / name
        if not path.is_file():
            print(f"{name}: absent, skipped")
            continue
        t0 = time.perf_counter()
        s = quick_series(path, dlib68=True)
        t1 = time.perf_counter()
        ms = measure_set(s)
        t2 = time.perf_counter()
        v = ms.values
        print(f"\n{name}: {len(s)} frames, {v['duration_s']:.2f} s, {v['frame_rate_hz']:.2f} fps")
        print(f"  keypoints (anchor) {t1 - t0:6.2f} s   all measures {t2 - t1:6.3f} s")
        hm = v["hand_movements"]["right_hand"]
        if "error" not in hm:
            print(
                f"  hand movements (right): {hm['tap_count']} cycles, "
                f"{hm['frequency_hz']:.2f} Hz, amplitude {hm['amplitude_norm']:.2f}"
            )
        for src in ("blinks", "blinks_dlib68"):
            b = v["face"][src]
            if "error" in b:
                print(f"  {src}: {b['error']}")
            else:
                print(
                    f"  {src}: {b['blink_count']} blinks at {b['blink_times_s']} s, "
                    f"durations {b['blink_durations_ms']} ms, "
                    f"{b['long_closure_count']} long closures"
                )
        m = v["face"]["mouth"]
        if "error" not in m:
            print(f"  mouth opening range {m['mouth_open_range_norm']:.3f} inter-ocular")
        if args.swap:
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / name
                deidentify(path, out, shape=args.shape)
                other = quick_series(out, dlib68=True)
                label = "default swap" if args.shape is None else f"swap, shape {args.shape:g}"
        else:
            other, label = jittered(s, args.jitter_px), f"{args.jitter_px:g} px jitter"
        rows = agreement(v, measure_set(other).values)
        held = [r for r in rows if r["status"] in ("ok", "differs")]
        ok = [r for r in held if r["status"] == "ok"]
        lost = [r["measure"] for r in rows if r["status"] == "lost"]
        print(f"  {label}: {len(ok)}/{len(held)} measures within tolerance, lost {lost or 'none'}")
        for r in held:
            if r["status"] == "differs":
                print(
                    f"    differs: {r['measure']} {r['original']:.4g} -> "
                    f"{r['deidentified']:.4g} ({100 * r['rel_diff']:.1f} %)"
                )


if __name__ == "__main__":
    main()
