"""Expression detail (ratio images, issue 23): face measures of the swap at several strengths.

Run from the repository root:
    PYTHONPATH=src .venv/bin/python benchmarks/expression_detail.py [--detail 0 1 2] \
        [--donor grace_hopper] [--clips expression_a.mp4,...] [--max-frames N]

For each clip, the original is read once (the anchor: its keypoints and blendshapes, timed in
the same run); then for each ``--detail`` value the clip is swapped with the defaults and that
``SwapSettings.detail``, and the swap is read the same way. Printed per strength:
- blendshape ranges that agree with the original's (Tasks face landmarker, which the swap does
  not use; within 5 % or 0.05, as ``agreement`` judges), and browInnerUp / jawOpen ranges;
- the clinical face measures within their tolerances (``measure_set`` on face mesh and dlib 68),
  with blink counts on both;
- the brow signal read by dlib 68 (brow height above the upper lids, and above the eye corners,
  which blinks do not move; in inter-ocular distances): its range ratio and its frame-by-frame
  correlation with the original's.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from quick_keypoints import quick_series  # noqa: E402

from medswap.keypoints.blendshapes import blendshape_series  # noqa: E402
from medswap.measures import agreement, measure_set  # noqa: E402
from medswap.measures.face import blendshape_ranges  # noqa: E402
from medswap.pipeline import deidentify  # noqa: E402
from medswap.swap.engine import SwapSettings  # noqa: E402

CLIPS = "expression_a.mp4,expression_b.mp4,expression_c.mp4"
#: dlib 68: brows, the eyes' upper lids, and the eye corners.
BROWS, LIDS, CORNERS = list(range(17, 27)), [37, 38, 43, 44], [36, 39, 42, 45]


def brow_signals(series) -> dict[str, np.ndarray]:
    """Brow height per frame, in inter-ocular distances (dlib 68), above the upper lids
    (``lids``) and above the eye corners (``corners``: a blink does not move it)."""
    p = series.groups["face_dlib68"][:, :, :2]
    iod = np.linalg.norm(p[:, 36] - p[:, 45], axis=1)
    brows = p[:, BROWS, 1].mean(1)
    return {
        "lids": (p[:, LIDS, 1].mean(1) - brows) / iod,
        "corners": (p[:, CORNERS, 1].mean(1) - brows) / iod,
    }


def compare_signals(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Range ratio (5th to 95th percentile) and correlation of ``y`` against ``x``."""
    n = min(len(x), len(y))
    good = np.isfinite(x[:n]) & np.isfinite(y[:n])
    x, y = x[:n][good], y[:n][good]
    spread = np.ptp(np.percentile(y, [5, 95])) / max(np.ptp(np.percentile(x, [5, 95])), 1e-9)
    corr = float(np.corrcoef(x, y)[0, 1]) if len(x) > 2 else float("nan")
    return float(spread), corr


def read(path: Path) -> tuple[dict, dict, dict[str, np.ndarray]]:
    series = quick_series(path, dlib68=True)
    shapes = {"face": {"blendshapes": blendshape_ranges(blendshape_series(path)).values}}
    return measure_set(series).values, shapes, brow_signals(series)


def blinks(values: dict) -> str:
    face = values["face"]
    return "/".join(str(face[k].get("blink_count", "-")) for k in ("blinks", "blinks_dlib68"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--detail", nargs="+", type=float, default=[0.0, 1.0, 2.0])
    ap.add_argument("--donor", default="grace_hopper")
    ap.add_argument("--clips", default=CLIPS)
    ap.add_argument("--max-frames", type=int, default=None)
    ap.add_argument("--media", default=str(ROOT.parent / "shared" / "media" / "video"))
    args = ap.parse_args()
    print(
        "clip | detail | blendshape ranges agree | browInnerUp | jawOpen | measures ok | "
        "blinks mesh/dlib | brow range x | brow corr | over eye corners: range x, corr | swap s"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.clips.split(","):
            src = Path(args.media) / name
            if args.max_frames:
                from medswap import video

                info = video.probe(src)
                frames = (f.image for f in video.read_frames(src, info, max_frames=args.max_frames))
                cut = Path(tmp) / f"cut_{name}"
                video.write_video(cut, frames, info.fps, info.display_size)
                src = cut
            t0 = time.perf_counter()
            values, shapes, brow = read(src)
            anchor = time.perf_counter() - t0
            b = shapes["face"]["blendshapes"]
            print(
                f"{name} | original | - | {b['browInnerUp_range']:.2f} | "
                f"{b['jawOpen_range']:.2f} | - | {blinks(values)} | - | - | - | "
                f"read {anchor:.0f} s",
                flush=True,
            )
            for d in args.detail:
                out = Path(tmp) / f"{d}_{name}"
                settings = dataclasses.replace(SwapSettings(), detail=d)
                t1 = time.perf_counter()
                deidentify(src, out, donors=[args.donor], swap_settings=settings)
                took = time.perf_counter() - t1
                v2, s2, brow2 = read(out)
                rows = agreement(shapes, s2)
                ok = sum(r["status"] == "ok" for r in rows)
                held = [r for r in agreement(values, v2) if r["status"] in ("ok", "differs")]
                m_ok = sum(r["status"] == "ok" for r in held)
                rng, corr = compare_signals(brow["lids"], brow2["lids"])
                c_rng, c_corr = compare_signals(brow["corners"], brow2["corners"])
                a = s2["face"]["blendshapes"]
                print(
                    f"{name} | {d:g} | {ok}/{len(rows)} | {a['browInnerUp_range']:.2f} | "
                    f"{a['jawOpen_range']:.2f} | {m_ok}/{len(held)} | {blinks(v2)} | "
                    f"{rng:.2f} | {corr:.2f} | {c_rng:.2f}, {c_corr:.2f} | {took:.0f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
