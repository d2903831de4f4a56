"""The lineup bar per shared clip: rank-1 without the donor, re-identification, face motion.

    PYTHONPATH=src .venv/bin/python benchmarks/lineup.py [--clips a.mp4,b.mp4] [--donor NAME ...]
        [--audited] [--shape S] [--stride 3] [--id-frames 0] [--measures] [--max-frames N]
        [--set FIELD=VALUE ...] [--keep DIR]

Each clip is de-identified with ``deidentify`` (no audit; ``--donor`` as on the command line,
several donors let :func:`medswap.swap.donors.choose_donor` pick; ``--audited``: the command
line's default run, audited and gated, with its own choice of donor unless ``--donor`` is
given), then judged by models the swap does not use:

- identity: with ``--id-frames 0`` (default) the product's audit
  (``medswap.evaluate.privacy.audit``: SFace and the leak scan on every frame, dlib on every
  ``--stride``-th) against its default gallery, the patient enrolled from 8 frames of the
  original. rank-1 is the share of frames in which the patient is the nearest identity without
  the donor (the gallery's 30 other identities and the patient: chance 1/31); re-id counts the
  frames either recogniser judges the same person as the same original frame; leak frames are
  the audit's. ``--id-frames N`` judges N evenly spread frames only (a quick sample, as
  ``identity_ablation.py`` does);
- motion, on dlib's 68 points (the face model the swap does not use) every ``--stride``-th
  frame where dlib finds the face in both videos: each point's displacement from the clip's own
  neutral (its per-point median position), original against output; ``disp NME`` is the median
  over frames of the mean point distance between the two displacements over the original's
  inter-ocular distance (outer eye corners), ``corr`` the median over points of the Pearson
  correlation of the two displacement trajectories (x and y together), ``corr expr`` the same
  with the head's pose removed first (each frame similarity-aligned onto the neutral by the eye
  corners and nose), i.e. expression alone; ``abs NME`` the absolute landmark error, for
  reference (``tests/quality.py``'s ``motion``);
- with ``--measures``: blink counts (face mesh and dlib 68) and mouth-opening peaks
  (``medswap.measures.face``), original -> output, on the clip's keypoints from
  ``tests/quick_keypoints.py``; a peak is matched when the output has one within 0.2 s.
  Beside them, ``openings dlib68``: the mouth openings of ``medswap evaluate`` (dlib 68, the
  model the swap does not use, :func:`medswap.evaluate.motion_events.mouth_peaks`), matched
  one to one within 100 ms. After the clips, a line sums evaluate's matched events over them:
  those openings, and blink onsets on dlib 68 and on the face mesh (a clip too short for blinks
  counts for neither side).

With ``--audited``, ``gate rank-1`` is the release gate's own lineup figure for the published
file (the in-stream audit: SFace on every frame, dlib on its stride), with the number of frames
each judged and the bound it must stay at or under: how near the bar each clip is.

``--set`` overrides ``SwapSettings`` fields (numbers; 0/1 for switches); ``--keep`` keeps the
outputs for a closer look.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from conftest import FACE_CLIPS, VIDEOS  # noqa: E402
from quality import motion  # noqa: E402

from medswap import video  # noqa: E402
from medswap.faces.independent import DlibFaces  # noqa: E402
from medswap.faces.track import iou  # noqa: E402
from medswap.pipeline import deidentify  # noqa: E402
from medswap.swap.donors import BUILTIN_DONORS, DEFAULT_DONOR  # noqa: E402
from medswap.swap.engine import SwapSettings  # noqa: E402


def dlib_pairs(original: Path, output: Path, stride: int, max_frames: int | None):
    """dlib 68 points of the original's most confident face and the output face in its place."""
    dlib = DlibFaces(upsample=1)
    a_pts, b_pts = [], []
    pairs = zip(
        video.read_frames(original, max_frames=max_frames),
        video.read_frames(output, max_frames=max_frames),
    )
    for fa, fb in pairs:
        if fa.index % stride:
            continue
        a, b = dlib.detect(fa.image), dlib.detect(fb.image)
        if not a or not b:
            continue
        face = max(a, key=lambda f: f.score)
        overlap = iou(face.box, np.array([f.box for f in b]))[0]
        if overlap.max() <= 0.3:
            continue
        a_pts.append(face.landmarks[:, :2])
        b_pts.append(b[int(np.argmax(overlap))].landmarks[:, :2])
    return np.array(a_pts, float), np.array(b_pts, float)


def identity(src: Path, out: Path, donors: list[str], stride: int, id_frames: int, max_frames):
    """rank-1 without the donor and re-identified frames, per recogniser."""
    if id_frames:
        from identity_ablation import ablate_clip

        from medswap.evaluate.privacy import FaceAnalyser, default_gallery

        row = ablate_clip(
            src.name,
            {"x": out},
            ["none"],
            id_frames,
            FaceAnalyser(),
            default_gallery(),
            donors,
            max_frames,
        )[0]
        return row.rank1, row.reid, None
    from medswap.evaluate.privacy import audit

    res = audit(src, out, donors=donors, stride=stride, max_frames=max_frames)
    rank1 = {
        r: v.get("rank1_rate_without_donors")
        for r, v in (res.identification or {}).get("recognisers", {}).items()
    }
    reid = {r: v["frames_reidentified"] for r, v in (res.verification or {}).items()}
    return rank1, reid, len(res.leak_frames)


#: The matched events summed over the clips (``--measures``): the product's own matching.
EVENTS = (
    ("openings dlib68", "mouth_peaks"),
    ("blinks dlib68", "blinks"),
    ("blinks mesh", "blinks_mesh"),
)


def event_counts(ev) -> Counter:
    """Each kind's (matched, original) counts from evaluate's motion events; none where a side
    could not be measured (a clip too short for blinks)."""
    out: Counter = Counter()
    for label, name in EVENTS:
        match = getattr(ev, name)
        if match.matched is not None:
            out[(label, "matched")] += match.matched
            out[(label, "original")] += match.n_original
    return out


def measures(src: Path, out: Path, max_frames, totals: Counter) -> str:
    from quick_keypoints import quick_series
    from scipy.signal import find_peaks

    from medswap.evaluate.motion import compare_motion
    from medswap.measures.face import blinks, mouth

    parts = []
    s_o, s_s = quick_series(src, max_frames), quick_series(out, max_frames)
    for source in ("face_mesh", "face_dlib68"):
        try:
            n = [blinks(s, source).values["blink_count"] for s in (s_o, s_s)]
            parts.append(f"blinks {source.split('_')[-1]} {n[0]}->{n[1]}")
        except Exception as exc:  # a benchmark reports, it does not stop
            parts.append(f"blinks {source}: {exc}")
    peaks = []
    for s in (s_o, s_s):
        sig = mouth(s).signals[0]
        y = np.nan_to_num(sig.columns["mouth_open_norm"], nan=0.0)
        idx, _ = find_peaks(y, prominence=0.05, distance=max(1, int(0.2 / np.diff(sig.time_s)[0])))
        peaks.append(sig.time_s[idx])
    matched = sum(np.any(np.abs(peaks[1] - t) <= 0.2) for t in peaks[0])
    parts.append(f"mouth peaks {len(peaks[0])}->{len(peaks[1])} ({matched} matched)")
    # The product's own figure (medswap evaluate): openings on dlib 68, matched within 100 ms.
    events = compare_motion(s_o, s_s)
    ev = events.mouth_peaks
    parts.append(f"openings dlib68 {ev.n_original}->{ev.n_deidentified} ({ev.matched} matched)")
    totals.update(event_counts(events))
    return ", ".join(parts)


def gate_rank1(audit) -> str:
    """The release gate's own lineup figure (the in-stream audit of the published file): how
    near the bar the run was, not only whether it passed."""
    lineup = audit.lineup() if audit is not None else {}
    if not lineup:
        return "-"
    rates, probes = lineup["rank1"], lineup["n_probes"]
    return (
        ", ".join(f"{_pct(rates.get(r))} of {probes.get(r, 0)}" for r in ("dlib", "sface"))
        + f" (bound {_pct(lineup['bound'])})"
    )


def _pct(v) -> str:
    return "n/a" if v is None else f"{v:.1%}"


def _f(v, pct=False) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "n/a"
    return f"{v:.0%}" if pct else f"{v:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", default=",".join(FACE_CLIPS))
    ap.add_argument("--donor", nargs="+", default=None)
    ap.add_argument("--audited", action="store_true", help="audit and gate, as the CLI does")
    ap.add_argument("--shape", type=float, default=None)
    ap.add_argument("--stride", type=int, default=3)
    ap.add_argument("--id-frames", type=int, default=0)
    ap.add_argument("--measures", action="store_true")
    ap.add_argument("--max-frames", type=int, default=None)
    ap.add_argument("--set", nargs="*", default=[], help="SwapSettings fields, e.g. relight=0.5")
    ap.add_argument("--no-motion", action="store_true", help="identity only")
    ap.add_argument("--keep", type=Path, default=None, help="keep the outputs in this folder")
    args = ap.parse_args()
    if args.donor is None and not args.audited:
        args.donor = [DEFAULT_DONOR]
    fields = {f.name: f.type for f in dataclasses.fields(SwapSettings)}
    overrides = {k: float(v) for k, v in (kv.split("=") for kv in args.set) if k in fields}
    settings = SwapSettings(**overrides)
    print(
        "clip | donor | swapped | obscured | rank-1 dlib | rank-1 SFace | re-id dlib | "
        "re-id SFace | leak frames | disp NME | corr | corr expr | abs NME | s"
        + (" | gate rank-1 dlib, SFace" if args.audited else "")
        + (" | measures" if args.measures else ""),
        flush=True,
    )
    totals: Counter = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
        for clip in args.clips.split(","):
            src = VIDEOS / clip
            out = Path(args.keep or tmp) / (src.stem + ".mp4")
            t0 = time.perf_counter()
            r = deidentify(
                src,
                out,
                donors=args.donor,
                audit=args.audited,
                shape=args.shape,
                max_frames=args.max_frames,
                swap_settings=settings,
            )
            used = sorted({f.donor for o in r.frames for f in o.faces if f.donor})
            tried = [x["audit"] for x in r.donor_retries]
            margins = (r.gate or {}).get("donor_margin", {})
            # The donors as given (a path stays a path, so its descriptors can be read), and
            # any built-in portrait the gate moved to.
            given = list(args.donor or [])
            judged = given + [u for u in used if u in BUILTIN_DONORS and u not in given]
            rank1, reid, leaks = identity(
                src, out, judged, args.stride, args.id_frames, args.max_frames
            )
            used = [f"{u} ({margins[u]:.2f})" if u in margins else u for u in used]
            m = (
                {}
                if args.no_motion
                else motion(*dlib_pairs(src, out, args.stride, args.max_frames))
            )
            t = r.totals
            row = (
                f"{clip} | {','.join(used)}{''.join(f'; first: {x}' for x in tried)} | "
                f"{t.faces_swapped} | {t.faces_obscured} | "
                f"{_f(rank1.get('dlib'), True)} | {_f(rank1.get('sface'), True)} | "
                f"{reid.get('dlib')} | {reid.get('sface')} | {leaks if leaks is not None else '-'}"
                f" | {_f(m.get('disp_nme'))} | {_f(m.get('corr'))} | {_f(m.get('corr_expr'))} | "
                f"{_f(m.get('abs_nme'))} | {time.perf_counter() - t0:.0f}"
            )
            if args.audited:
                row += " | " + gate_rank1(r.audit)
            if args.measures:
                row += " | " + measures(src, out, args.max_frames, totals)
            print(row, flush=True)
    if args.measures:
        print(
            "matched over the clips (evaluate's events: openings within 0.1 s, blink onsets): "
            + ", ".join(
                f"{label} {totals[(label, 'matched')]} of {totals[(label, 'original')]}"
                for label, _ in EVENTS
            )
        )


if __name__ == "__main__":
    main()
