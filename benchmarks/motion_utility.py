"""Face motion kept by de-identification, on every shared face clip: the "before" column.

    PYTHONPATH=src .venv/bin/python benchmarks/motion_utility.py [--clips a.mp4,b.mp4]
        [--methods readers,reencode,swap,default,blur] [--tag before] [--prepare-only]

For each clip the original is compared with its re-encode (the floor: the same pixels through
the encoder once), the default swap without the audit (``medswap deidentify --no-audit``: behind
grace_hopper), blur (``--method blur``), and with ``default`` the command line's default run
(audited: behind astronaut, or the next donor where she is too near the patient), by
:func:`medswap.evaluate.motion.compare_motion`: the NME of landmark displacements from each
face's own neutral shape, the per-point trajectory correlation (all moving points, and the
expressive ones: eyes, brows, mouth), the amplitude ratio, and blink onsets and mouth openings
matched within 100 ms, all on dlib's 68 points (which the swap does not use); the mesh's
displacement NME and blink onsets beside them.

``readers`` (first, with ``--methods readers,...``) is not a method: it compares dlib's 68 points
on the original with the face mesh's 68 matching points (``DLIB68_ON_MESH``) on the same
original, with the same figures (the displacement figures are those of
:func:`medswap.evaluate.motion.readers`, which every evaluation now reports). Two readers of the
same pixels agree only as far as what they read is motion rather than each reader's own jitter,
and a swap is read on new pixels, with new jitter: so this row estimates what any
texture-changing method could reach on the clip against dlib on the original, where the
re-encode (the same pixels, the same jitter) cannot.
The de-identified videos and every keypoint file are cached under ``.bench/motion/<tag>/`` so a
re-run only recomputes the figures; delete the folder (or use another ``--tag``) after
changing the swap.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import FACE_CLIPS, VIDEOS  # noqa: E402

from medswap.errors import MedswapError  # noqa: E402
from medswap.faces.mesh import DLIB68_ON_MESH  # noqa: E402
from medswap.keypoints import extract_keypoints, load_keypoints, save_keypoints  # noqa: E402
from medswap.types import KeypointSeries  # noqa: E402
from medswap.video import reencode  # noqa: E402

METHODS = ("reencode", "swap", "blur")


def mesh_read_as_dlib68(series: KeypointSeries) -> KeypointSeries:
    """``series`` with dlib's 68 points replaced by the face mesh's matching points."""
    groups = dict(series.groups, face_dlib68=series.groups["face_mesh"][:, list(DLIB68_ON_MESH)])
    return replace(series, groups=groups)


def make_output(clip: Path, method: str, out: Path) -> None:
    """The de-identified (or re-encoded) clip, made once by the product's own CLI."""
    if out.is_file():
        return
    if method == "reencode":
        reencode(clip, out)
        return
    cmd = [sys.executable, "-m", "medswap.cli", "deidentify", "-q", str(clip), "-o", str(out)]
    if method == "default":  # the command line's default run: audited, its donor chosen
        cmd += ["--overwrite"]
    else:
        cmd += ["--no-audit", "--overwrite"] + (["--method", method] if method != "swap" else [])
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    subprocess.run(cmd, check=True, env=env)


def keypoints(video: Path, cache: Path) -> KeypointSeries:
    """The product's keypoints of ``video``, from the cache when made from this exact file."""
    if cache.is_file():
        try:
            return load_keypoints(cache, video=video)
        except MedswapError:  # another video under the same name: extract again
            pass
    series = extract_keypoints(video)
    save_keypoints(series, cache, fmt="parquet", overwrite=True, inputs=[video])
    return series


def fmt(v: float | None, spec: str = ".3f") -> str:
    return "n/a" if v is None or v != v else format(v, spec)


def events(e) -> str:
    """``matched/original (copy)``, or why the events were not compared."""
    if e.reason:
        return "n/a"
    return f"{e.matched}/{e.n_original} ({e.n_deidentified})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", default=",".join(FACE_CLIPS))
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--tag", default="before", help="cache folder under .bench/motion/")
    ap.add_argument("--prepare-only", action="store_true", help="make the caches, print nothing")
    args = ap.parse_args()
    cache = ROOT / ".bench" / "motion" / args.tag
    cache.mkdir(parents=True, exist_ok=True)
    methods = args.methods.split(",")
    if not args.prepare_only:
        from medswap.evaluate.motion import compare_motion

        print(
            "clip | method | displacement NME median (dlib / mesh) | correlation median "
            "(all / expressive) | amplitude ratio (expressive) | blink onsets matched/original "
            "(copy) | mouth openings matched/original (copy) | mesh blink onsets"
        )
    for name in args.clips.split(","):
        clip = VIDEOS / name
        stem = Path(name).stem
        t0 = time.perf_counter()
        orig = keypoints(clip, cache / f"{stem}.original.parquet")
        for method in methods:
            if method == "readers":
                deid = mesh_read_as_dlib68(orig)
            else:
                out = cache / f"{stem}.{method}.mp4"
                make_output(clip, method, out)
                deid = keypoints(out, cache / f"{stem}.{method}.parquet")
            if args.prepare_only:
                continue
            m = compare_motion(orig, deid)
            g, mesh = m.groups["face-dlib68"], m.groups["face-mesh"]
            print(
                f"{stem} | {method} | {fmt(g.nme_median)} / {fmt(mesh.nme_median)} | "
                f"{fmt(g.correlation_median, '.2f')} / "
                f"{fmt(g.correlation_expressive_median, '.2f')} | "
                f"{fmt(g.amplitude_ratio_expressive_median, '.2f')} | {events(m.blinks)} | "
                f"{events(m.mouth_peaks)} | {events(m.blinks_mesh)}"
                + (f" | {g.reason}" if g.reason else "")
            )
        print(f"# {stem}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
