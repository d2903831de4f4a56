"""Studies: run the product on videos, evaluate the outputs, write what a person reads.

``medswap evaluate``, ``compare`` and ``sweep`` (and batch's ``--evaluate``) de-identify,
extract keypoints, measure and write tables and ``report.html``. They sit above
``pipeline``, ``evaluate`` and ``report``, which is what lets those three point one way:
``evaluate`` imports neither of the others (issue 21).
"""

from __future__ import annotations

import tempfile
from pathlib import Path


def evaluate_pair(original: str | Path, deidentified: str | Path, audit_stride: int = 5) -> dict:
    """Keypoint invariance and privacy of one de-identified video, as flat numbers.

    What ``medswap batch --evaluate`` stores per video and averages over a dataset: per
    keypoint group the median NME and the detection rate, and per recogniser the re-id rate,
    plus the number of leak frames. Heavy modules load only when this is called.
    """
    from medswap.evaluate.privacy import audit
    from medswap.studies.invariance import evaluate

    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="medswap-eval-") as tmp:
        result = evaluate(original, [deidentified], tmp, labels=["deid"], write_report=False)
    for group, values in result.table("nme_median").items():
        out[f"nme_median.{group}"] = values["deid"]
    for group, values in result.table("detection_rate").items():
        out[f"detection_rate.{group}"] = values["deid"]
    privacy = audit(original, deidentified, stride=audit_stride)
    for recogniser in ("dlib", "sface"):
        out[f"reid_rate.{recogniser}"] = privacy.reid_rate(recogniser)
    out["leak_frames"] = len(privacy.leak_frames)
    return out
