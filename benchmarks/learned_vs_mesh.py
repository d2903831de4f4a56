"""Learned engine vs mesh engine on shared clips, with the same training budget per clip.

For each clip: the mesh engine's output, then a model trained for ``--steps`` steps (size 64,
CPU, one thread) on the clip itself with the chosen donor material, then the learned engine's
output; both judged by the independent models in tests/quality.py (dlib 68-point NME against
the original, dlib distance and SFace cosine to the original). Wall times are this machine's,
measured in the same run (the machine may be shared: see the load average printed).

    PYTHONPATH=src .venv/bin/python benchmarks/learned_vs_mesh.py \\
        --clips speech_a expression_b webcam_single --steps 500 --out /tmp/learned_bench
    # donor material on one clip:
    PYTHONPATH=src .venv/bin/python benchmarks/learned_vs_mesh.py --clips speech_a \\
        --materials rendered direct video:speech_b --steps 500 --out /tmp/learned_bench
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
VIDEOS = ROOT.parent / "shared" / "media" / "video"


def _summary(q) -> dict:
    return {
        "frames_measured": q.frames,
        "dlib_found": f"{q.dlib_found_output}/{q.dlib_found_original}",
        "nme_median": round(float(np.median(q.nme)), 4) if len(q.nme) else None,
        "dlib_distance_min": round(float(q.dlib_distance.min()), 3)
        if len(q.dlib_distance)
        else None,
        "dlib_same_person": round(float(np.mean(q.dlib_distance < 0.6)), 3)
        if len(q.dlib_distance)
        else None,
        "sface_cosine_max": round(float(q.sface_cosine.max()), 3) if len(q.sface_cosine) else None,
        "sface_same_person": round(float(np.mean(q.sface_cosine >= 0.363)), 3)
        if len(q.sface_cosine)
        else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", nargs="+", default=["speech_a", "expression_b", "webcam_single"])
    ap.add_argument("--materials", nargs="+", default=["rendered"])
    ap.add_argument("--donor", default="average")
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--stride", type=int, default=3)
    ap.add_argument("--no-mesh", action="store_true")
    ap.add_argument("--out", default="/tmp/learned_bench")
    args = ap.parse_args()

    from quality import measure

    from medswap.learned.train import TrainConfig, prepare_material, train
    from medswap.pipeline import deidentify

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for clip in args.clips:
        src = VIDEOS / f"{clip}.mp4"
        if not args.no_mesh:
            t = time.perf_counter()
            deidentify(src, out / f"{clip}_mesh.mp4", donors=[args.donor])
            wall = time.perf_counter() - t
            row = {"clip": clip, "engine": "mesh", "deidentify_s": round(wall, 1)}
            row.update(_summary(measure(src, out / f"{clip}_mesh.mp4", args.stride)))
            rows.append(row)
            print(json.dumps(row), flush=True)
        for material in args.materials:
            donors = [args.donor]
            kind = material
            if material.startswith("video:"):
                donors, kind = [str(VIDEOS / f"{material.split(':', 1)[1]}.mp4")], "rendered"
            cfg = TrainConfig(
                size=args.size, steps=args.steps, material=kind, checkpoint_every=10**9
            )
            load = os.getloadavg()[0]
            t = time.perf_counter()
            mat = prepare_material([src], donors, cfg)
            prep = time.perf_counter() - t
            tag = f"{clip}_{material.replace(':', '-')}"
            r = train(mat, out / f"{tag}.medswap", cfg)
            t = time.perf_counter()
            deidentify(src, out / f"{tag}.mp4", engine="learned", model=out / f"{tag}.medswap")
            wall = time.perf_counter() - t
            row = {
                "clip": clip,
                "engine": f"learned/{material}",
                "steps": args.steps,
                "prepare_s": round(prep, 1),
                "train_s": round(r.seconds, 1),
                "load_avg_at_start": round(load, 1),
                "final_loss": [round(v, 4) for v in r.final_loss],
                "deidentify_s": round(wall, 1),
            }
            row.update(_summary(measure(src, out / f"{tag}.mp4", args.stride)))
            rows.append(row)
            print(json.dumps(row), flush=True)
    (out / "results.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
