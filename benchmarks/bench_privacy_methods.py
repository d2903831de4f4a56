"""Privacy of each de-identification method on shared face clips, with the controls.

    PYTHONPATH=src python benchmarks/bench_privacy_methods.py [--frames 30] [--clips a.mp4 ...]
        [--methods swap,blur,pixelate,mask]

For each clip a slice of ``--frames`` frames is the "original". Controls: the original
audited against itself and against a re-encode (CRF 28); they must be re-identified in
nearly every frame, which proves the recognisers work on the clip. Then swap (default donor),
blur, pixelate and mask from :func:`medswap.pipeline.deidentify`. The gallery is the shared
one (7 people) plus the donor, and the patient: 9 identities. Prints a markdown table and
writes the HTML privacy section to ``--html``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from fractions import Fraction
from pathlib import Path

from medswap.evaluate.privacy import audit, load_gallery, privacy_section
from medswap.pipeline import deidentify
from medswap.swap.donors import DEFAULT_DONOR
from medswap.video import VideoWriter, probe, read_frames, write_video

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT.parent / "shared" / "media"
METHODS = ("swap", "blur", "pixelate", "mask")


def _without_donor(ident: dict) -> str:
    """Rank-1 of the patient when the donor is left out of the gallery (an attacker's list)."""
    if "chance_rank1_without_donors" not in ident:
        return "-"
    recs = ident["recognisers"]
    r1 = " / ".join(
        f"{recs.get(r, {}).get('rank1_rate_without_donors', float('nan')):.3f}"
        for r in ("dlib", "sface")
    )
    return f"{r1} (chance {ident['chance_rank1_without_donors']:.3f})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--clips", nargs="+", default=["speech_a.mp4", "expression_b.mp4"])
    ap.add_argument("--html", default="/tmp/privacy_methods.html")
    ap.add_argument("--methods", default=",".join(METHODS))
    args = ap.parse_args()
    gallery = load_gallery(MEDIA / "faces" / "gallery")
    rows, results = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for clip in args.clips:
            frames = list(read_frames(MEDIA / "video" / clip, max_frames=args.frames))
            h, w = frames[0].image.shape[:2]
            fps = probe(MEDIA / "video" / clip).fps
            orig = write_video(
                tmp / f"{clip}.orig.mp4", (f.image for f in frames), Fraction(fps), (w, h)
            )
            outs = {"original": orig, "reencode": tmp / f"{clip}.reencode.mp4"}
            with VideoWriter(outs["reencode"], probe(orig), crf=28) as wr:
                for f in read_frames(orig):
                    wr.write(f.image, f.pts)
            for m in args.methods.split(","):
                outs[m] = tmp / f"{clip}.{m}.mp4"
                t = time.perf_counter()
                deidentify(orig, outs[m], method=m)
                print(f"{clip} {m}: deidentify {time.perf_counter() - t:.1f} s", flush=True)
            for label, out in outs.items():
                donors = [DEFAULT_DONOR] if label == "swap" else None
                t = time.perf_counter()
                r = audit(orig, out, gallery=gallery, donors=donors, workers=1)
                results[f"{clip} {label}"] = r
                v, ident = r.verification, r.identification.get("recognisers", {})
                dd = r.donors.get(DEFAULT_DONOR, {}).get("dlib", {})
                rows.append(
                    f"| {clip} | {label} | {v['dlib']['reid_rate']:.3f} | "
                    f"{v['sface']['reid_rate']:.3f} | "
                    f"{v['dlib']['distance'].get('median', float('nan')):.3f} | "
                    f"{v['sface']['distance'].get('median', float('nan')):.3f} | "
                    f"{ident.get('dlib', {}).get('rank1_rate', float('nan')):.3f} / "
                    f"{ident.get('sface', {}).get('rank1_rate', float('nan')):.3f} "
                    f"(chance {r.identification['chance_rank1']:.3f}) | "
                    f"{_without_donor(r.identification)} | {len(r.leak_frames)} | "
                    f"{len(r.frames_no_face_in_output)} | "
                    f"{dd.get('closer_to_donor_rate', float('nan')):.3f} | "
                    f"{time.perf_counter() - t:.0f} s |"
                )
                print(rows[-1], flush=True)
    print(
        "\n| clip | output | re-id dlib | re-id SFace | median dlib dist | median SFace dist "
        "| rank-1 dlib / SFace | rank-1 without the donor | leak frames | no face in output "
        "| closer to donor (dlib) | audit time |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    title, body = privacy_section(results)
    Path(args.html).write_text(f"<h2>{title}</h2>{body}")


if __name__ == "__main__":
    main()
