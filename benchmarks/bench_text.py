"""What burned-in text redaction costs at 720p: the same run with ``--text redact`` and ``keep``.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_text.py [--seconds 10] [--rounds 2]

The clip is speech_a scaled to 720 px high on a 1280x720 canvas with a camera stamp whose
seconds tick drawn in its top-left corner. Both settings run the default swap without the
audit, alternating round by round in one process so that the machine's load hits both alike;
the best round of each is reported (wall time from decode to encoded file, model start-up
included), with the text share of the redacting run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from medswap import video  # noqa: E402
from medswap.pipeline import deidentify  # noqa: E402

SOURCE = ROOT.parent / "shared" / "media" / "video" / "speech_a.mp4"


def make_720p(out: Path, seconds: float) -> Path:
    """speech_a at 720 px high, blurred sides, a ticking date stamp; ping-pong looped."""
    frames = []
    for f in video.read_frames(SOURCE):
        face = cv2.resize(f.image, (720, 720), interpolation=cv2.INTER_AREA)
        side = cv2.resize(cv2.GaussianBlur(face, (0, 0), 25), (280, 720))
        frames.append(np.concatenate([side, face, side[:, ::-1]], axis=1))
    loop = frames + frames[::-1]
    n = int(seconds * 30)

    def frame(i: int) -> np.ndarray:
        image = loop[i % len(loop)].copy()
        stamp = f"2018-04-07 17:14:{i // 30:02d}"
        cv2.putText(image, stamp, (24, 48), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 0), 5)
        cv2.putText(image, stamp, (24, 48), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2)
        return image

    return video.write_video(out, (frame(i) for i in range(n)), Fraction(30), (1280, 720))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_720p(Path(tmp) / "clip720.mp4", args.seconds)
        n = video.count_frames(clip)
        best: dict[str, float] = {}
        print(f"{n} frames at 1280x720, load average {os.getloadavg()[0]:.1f} at the start")
        for r in range(args.rounds):
            for text in ("redact", "keep"):
                t0 = time.perf_counter()
                result = deidentify(clip, Path(tmp) / f"out_{text}.mp4", text=text)
                dt = time.perf_counter() - t0
                best[text] = min(best.get(text, dt), dt)
                tt = result.totals.text
                print(
                    f"round {r + 1} --text {text}: {dt:.1f} s, {n / dt:.1f} fps, "
                    f"{tt.frames_redacted} frames with text redacted",
                    flush=True,
                )
        share = (best["redact"] - best["keep"]) / best["redact"]
        print(
            f"best: redact {n / best['redact']:.1f} fps, keep {n / best['keep']:.1f} fps; "
            f"text detection is {100 * share:.1f}% of the redacting run "
            f"({100 * (best['redact'] / best['keep'] - 1):.1f}% over keep); "
            f"load average {os.getloadavg()[0]:.1f} at the end"
        )


if __name__ == "__main__":
    main()
