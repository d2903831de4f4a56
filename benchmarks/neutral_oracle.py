"""What the online resting-shape estimate costs the face's expression (issues 19 and 23).

Run from the repository root:
    PYTHONPATH=src .venv/bin/python benchmarks/neutral_oracle.py [--donor astronaut] \
        [--clips expression_a.mp4,...] [--relaxed jaw|jaw+brows] [--lineup [--id-frames 16]]

The swap draws the donor's resting shape plus the patient's deformation from *their* resting
shape, which is estimated while the video streams (``medswap.swap.neutral``: the median of the
track's pose-normalised meshes so far). Early in a track that median rests on few frames, so an
expression held then (raised brows, a smile) is taken into the resting shape for a while and
drawn as rest: the output's expression fades in and out with the estimate. This benchmark
measures by how much, against an oracle: each clip is swapped twice with the same donor,

- ``online``: the product as it is, recording every shape the estimate is given;
- ``whole-clip``: the resting shape fixed from the first frame to the median of all those
  shapes (what the online estimate converges to at the end; not streamable as it stands),
- with ``--relaxed jaw`` or ``--relaxed jaw+brows`` instead: streamable like ``online``, but
  the median of only the samples in which the face is relaxed, the jaw no more open (and the
  brows no higher above the eye corners) than their medians over the samples: a resting face
  has its jaw closed and its brows down, and an expression held for most of a clip (raised
  brows, an open mouth) would otherwise be taken for rest,

and the original and both swaps are read by models the swap does not use, as in
``benchmarks/expression_detail.py``: blendshape ranges that agree, browInnerUp and jawOpen
ranges, face measures within tolerance, blinks (mesh / dlib 68), and the brow signal of dlib 68
(brow height above the upper lids, and above the eye corners, which blinks do not move): its
range ratio and correlation with the original's. ``drift`` is how far the online estimate's
brows wandered from their final place, at most, in inter-ocular distances.

With ``--lineup`` (default clips: every shared clip with a face) each pair of swaps is judged
for privacy instead, as ``benchmarks/lineup.py --id-frames N`` judges one: rank-1 without the
donor and re-identified frames, dlib / SFace, on ``--id-frames`` frames spread over the clip.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

from expression_detail import blinks, compare_signals, read  # noqa: E402

import medswap.swap.neutral as neutral_module  # noqa: E402
from medswap.faces.mesh import inter_ocular_mesh  # noqa: E402
from medswap.measures import agreement  # noqa: E402
from medswap.pipeline import deidentify  # noqa: E402
from medswap.swap.donors import BROW_POINTS, load_donor  # noqa: E402

CLIPS = "expression_a.mp4,expression_b.mp4,expression_c.mp4"


def compare(x: np.ndarray, y: np.ndarray) -> str:
    """Range ratio and correlation of ``y`` against ``x``, as printed."""
    return "{:.2f}, {:.2f}".format(*compare_signals(x, y))


#: Mesh points: the eye corners (rigid: a blink does not move them) and the chin.
EYE_CORNERS = [33, 133, 362, 263]
CHIN = 152


def relaxed(samples: list[np.ndarray], brows: bool) -> np.ndarray:
    """The median of the pose-normalised ``samples`` in which the jaw is no more open (the
    chin no lower) than its median, and with ``brows`` the brows no higher above the eye
    corners than theirs; all samples when fewer than 3 are left."""
    s = np.stack(samples)
    keep = s[:, CHIN, 1] <= np.median(s[:, CHIN, 1])  # image y grows downwards
    if brows:
        height = s[:, EYE_CORNERS, 1].mean(1) - s[:, BROW_POINTS, 1].mean(1)
        keep &= height <= np.median(height)
    return np.median(s[keep] if keep.sum() >= 3 else s, axis=0)


def swap(
    src: Path,
    out: Path,
    donor: str,
    fixed: np.ndarray | None,
    relax: str | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Swap ``src``; the shapes the resting estimate was given, and its estimates, in order.

    With ``fixed``, every track's resting shape is ``fixed`` from the first frame (one track per
    clip here). With ``relax`` ("jaw" or "jaw+brows"), each estimate is :func:`relaxed` of the
    estimate's own samples instead of their median."""
    original = neutral_module.NeutralShape.update
    given, estimates = [], []

    def update(self, shape):
        before = self.estimate
        estimate = original(self, shape)
        if fixed is not None:
            self._estimate = estimate = fixed
        elif relax is not None and estimate is not before:  # a sample was taken
            self._estimate = estimate = relaxed(self._samples, brows=relax == "jaw+brows")
        given.append(np.array(shape))
        estimates.append(np.array(estimate))
        return estimate

    neutral_module.NeutralShape.update = update
    try:
        deidentify(src, out, donors=[donor])
    finally:
        neutral_module.NeutralShape.update = original
    return given, estimates


def brow_drift(estimates: list[np.ndarray], final: np.ndarray) -> float:
    """How far the estimates' brows were from ``final``'s, at most (pixels of the donor)."""
    return max(abs(float((e[BROW_POINTS, 1] - final[BROW_POINTS, 1]).mean())) for e in estimates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--donor", default="astronaut")
    ap.add_argument("--clips", default=CLIPS)
    ap.add_argument("--media", default=str(ROOT.parent / "shared" / "media" / "video"))
    ap.add_argument("--lineup", action="store_true", help="privacy of both swaps instead")
    ap.add_argument("--id-frames", type=int, default=16)
    ap.add_argument(
        "--relaxed",
        choices=("jaw", "jaw+brows"),
        help="against the relaxed online estimate instead of the whole-clip oracle",
    )
    args = ap.parse_args()
    if args.lineup:
        lineup(args)
        return
    donor = load_donor(args.donor)  # a built-in name or an image file
    iod = inter_ocular_mesh(donor.landmarks)
    print(
        "clip | neutral | blendshape ranges agree | browInnerUp | jawOpen | measures ok | "
        "blinks mesh/dlib | brow over lids: range x, corr | brow over corners: range x, corr "
        "| drift"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.clips.split(","):
            src = Path(args.media) / name
            values, shapes, brow = read(src)
            b = shapes["face"]["blendshapes"]
            print(
                f"{name} | original | - | {b['browInnerUp_range']:.2f} | "
                f"{b['jawOpen_range']:.2f} | - | {blinks(values)} | - | - | -",
                flush=True,
            )
            online = Path(tmp) / f"online_{name}"
            given, estimates = swap(src, online, args.donor, None)
            final = np.median(np.stack(given), axis=0)
            other = Path(tmp) / f"other_{name}"
            if args.relaxed:
                _, relaxed_estimates = swap(src, other, args.donor, None, args.relaxed)
                other_drift = f"{brow_drift(relaxed_estimates, relaxed_estimates[-1]) / iod:.3f}"
            else:
                swap(src, other, args.donor, final)
                other_drift = "0"
            for label, out, d in (
                ("online", online, f"{brow_drift(estimates, final) / iod:.3f}"),
                (f"relaxed: {args.relaxed}" if args.relaxed else "whole-clip", other, other_drift),
            ):
                v2, s2, brow2 = read(out)
                rows = agreement(shapes, s2)
                held = [r for r in agreement(values, v2) if r["status"] in ("ok", "differs")]
                a = s2["face"]["blendshapes"]
                print(
                    f"{name} | {label} | {sum(r['status'] == 'ok' for r in rows)}/{len(rows)} | "
                    f"{a['browInnerUp_range']:.2f} | {a['jawOpen_range']:.2f} | "
                    f"{sum(r['status'] == 'ok' for r in held)}/{len(held)} | {blinks(v2)} | "
                    f"{compare(brow['lids'], brow2['lids'])} | "
                    f"{compare(brow['corners'], brow2['corners'])} | {d}",
                    flush=True,
                )


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def lineup(args: argparse.Namespace) -> None:
    """Rank-1 without the donor and re-identified frames of both swaps, clip by clip."""
    from conftest import FACE_CLIPS
    from lineup import identity

    clips = FACE_CLIPS if args.clips == CLIPS else args.clips.split(",")
    print("clip | resting shape | rank-1 dlib | rank-1 SFace | re-id dlib | re-id SFace")
    with tempfile.TemporaryDirectory() as tmp:
        for name in clips:
            src = Path(args.media) / name
            online = Path(tmp) / f"online_{Path(name).stem}.mp4"
            given, _ = swap(src, online, args.donor, None)
            other = Path(tmp) / f"other_{Path(name).stem}.mp4"
            if args.relaxed:
                swap(src, other, args.donor, None, args.relaxed)
            else:
                swap(src, other, args.donor, np.median(np.stack(given), axis=0))
            second = f"relaxed: {args.relaxed}" if args.relaxed else "whole clip"
            for label, out in (("as streamed", online), (second, other)):
                rank1, reid, _ = identity(src, out, [args.donor], 1, args.id_frames, None)
                print(
                    f"{name} | {label} | {_percent(rank1.get('dlib'))} | "
                    f"{_percent(rank1.get('sface'))} | {reid.get('dlib')} | {reid.get('sface')}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
