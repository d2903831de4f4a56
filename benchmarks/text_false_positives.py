"""False positives of the burned-in text redaction on the shared clips that show no text.

    PYTHONPATH=src .venv/bin/python benchmarks/text_false_positives.py [--max-frames 90]

Each clip is de-identified with the defaults (swap, ``--text redact``, no audit) and the report
is read back: per clip, the frames with a text region redacted, the regions, and the area they
covered (mean and largest share of the frame). Nothing on these clips is text, so every region
is a false positive. face_then_title.mov and no_face.mp4 (both show the animated title
"Caminandes") are the positive controls, listed last.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from medswap.pipeline import deidentify  # noqa: E402

VIDEOS = ROOT.parent / "shared" / "media" / "video"
NO_TEXT = [
    "speech_a.mp4",
    "speech_b.mp4",
    "speech_c.mp4",
    "hand_open_close.mp4",
    "signer_small_face.mp4",
    "hands_in_front.mp4",
    "expression_a.mp4",
    "expression_b.mp4",
    "expression_c.mp4",
    "webcam_single.mp4",
]
CONTROLS = ["no_face.mp4", "face_then_title.mov"]


def measure(clip: Path, max_frames: int | None, out_dir: Path) -> dict:
    t0 = time.perf_counter()
    result = deidentify(clip, out_dir / (clip.stem + ".mp4"), max_frames=max_frames)
    area = result.info.display_size[0] * result.info.display_size[1]
    shares = []
    for frame in result.frames:
        mask_area = sum(
            (t.box[2] - t.box[0]) * (t.box[3] - t.box[1])
            for t in frame.text
            if t.status == "redacted"
        )
        shares.append(min(1.0, mask_area / area))
    redacted = [s for s in shares if s > 0]
    return {
        "clip": clip.name,
        "frames": len(shares),
        "frames_redacted": len(redacted),
        "regions": result.totals.text.regions_redacted,
        "mean_area": sum(shares) / max(len(shares), 1),
        "max_area": max(shares, default=0.0),
        "seconds": time.perf_counter() - t0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-frames", type=int, default=90, help="frames per clip (0: all)")
    parser.add_argument("--clips", nargs="*", default=[*NO_TEXT, *CONTROLS])
    args = parser.parse_args()
    if not VIDEOS.is_dir():
        sys.exit(f"shared test media {VIDEOS} are absent")
    print("| clip | frames | frames redacted | regions | mean area | largest area |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.clips:
            r = measure(VIDEOS / name, args.max_frames or None, Path(tmp))
            print(
                f"| {r['clip']} | {r['frames']} | {r['frames_redacted']} | {r['regions']} | "
                f"{100 * r['mean_area']:.2f}% | {100 * r['max_area']:.2f}% |",
                flush=True,
            )


if __name__ == "__main__":
    main()
