"""What an audit found: leak hits, distance distributions, the lineup, and AUDIT.json.

:class:`AuditResult` is what the release gate reads (``clean``) and what a user keeps
(``to_json()``); nothing here looks at a frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medswap.evaluate.privacy.lineup import rank1_bound, rank1_passes
from medswap.evaluate.privacy.recognisers import METRICS, RECOGNISERS, THRESHOLDS
from medswap.models import AUDIT_MODELS

#: Histogram edges of the reported distance distributions (values outside are clipped in).
HIST_EDGES = {
    "dlib": np.round(np.linspace(0.0, 1.2, 13), 3),
    "sface": np.round(np.linspace(0.0, 1.4, 15), 3),
}


@dataclass
class LeakHit:
    """One output face that a recogniser judges to be the patient."""

    frame_index: int
    time_s: float
    box: list[float]
    recogniser: str
    distance: float
    reference: str  # "enrolled" (the patient's template) or "same_frame" (original face)
    detectors: tuple[str, ...]

    def to_json(self) -> dict:
        return {
            "frame_index": self.frame_index,
            "time_s": round(self.time_s, 4),
            "box": [round(v, 1) for v in self.box],
            "recogniser": self.recogniser,
            "distance": round(self.distance, 4),
            "threshold": round(THRESHOLDS[self.recogniser], 4),
            "reference": self.reference,
            "detectors": list(self.detectors),
        }


def distribution(recogniser: str, values: Sequence[float]) -> dict:
    """Min, percentiles, median, max and a fixed-edge histogram of distances."""
    v = np.asarray(values, dtype=np.float64)
    edges = HIST_EDGES[recogniser]
    if v.size == 0:
        return {"n": 0}
    counts, _ = np.histogram(np.clip(v, edges[0], edges[-1]), bins=edges)
    return {
        "n": int(v.size),
        "min": round(float(v.min()), 4),
        "p5": round(float(np.percentile(v, 5)), 4),
        "median": round(float(np.median(v)), 4),
        "p95": round(float(np.percentile(v, 95)), 4),
        "max": round(float(v.max()), 4),
        "histogram": {"edges": [float(e) for e in edges], "counts": counts.tolist()},
    }


@dataclass
class AuditResult:
    """Everything the audit found; ``to_json()`` is the AUDIT.json a user keeps."""

    original: str
    deidentified: str
    frames: int
    stride: int
    frames_with_original_face: int
    nothing_to_protect: bool
    verification: dict = field(default_factory=dict)  # recogniser -> rates, distribution
    frames_no_face_in_output: list[int] = field(default_factory=list)
    identification: dict = field(default_factory=dict)
    leaks: list[LeakHit] = field(default_factory=list)
    donors: dict = field(default_factory=dict)
    enrolment: dict = field(default_factory=dict)
    gallery: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def leak_frames(self) -> list[int]:
        """Output frames in which any recogniser recognises the patient, in order."""
        return sorted({h.frame_index for h in self.leaks})

    @property
    def safe(self) -> bool:
        """No output frame shows the patient's identity to either recogniser."""
        return not self.leaks

    def reid_rate(self, recogniser: str) -> float | None:
        return self.verification.get(recogniser, {}).get("reid_rate")

    def lineup(self) -> dict:
        """The headline lineup figure: rank-1 of the patient among the gallery, both recognisers.

        Without the donor when the gallery holds one (an attacker's list of candidate patients
        does not hold the donor), else the plain rank-1 rate. ``passed`` is the release bar:
        every recogniser's rate at or below ``bound`` (:func:`rank1_bound`), or not
        significantly above chance on so few frames (:func:`rank1_passes`).
        """
        ident = self.identification or {}
        recs = ident.get("recognisers") or {}
        if not recs:
            return {}
        without = "chance_rank1_without_donors" in ident
        key = "rank1_rate_without_donors" if without else "rank1_rate"
        chance = ident["chance_rank1_without_donors" if without else "chance_rank1"]
        rates = {r: v.get(key) for r, v in recs.items()}
        probes = {r: v.get("n_probes", 0) for r, v in recs.items()}
        bound = rank1_bound(chance)
        return {
            "rank1": rates,
            "without_donor": without,
            "chance": chance,
            "n_identities": round(1 / chance),  # the lineup's people, the patient included
            "bound": round(bound, 4),
            "n_probes": probes,
            "passed": all(rank1_passes(v, probes[r], chance) for r, v in rates.items()),
        }

    @property
    def clean(self) -> bool:
        """What the release gate asks: no leak frame, and the lineup at or below its bound."""
        return self.safe and (self.nothing_to_protect or self.lineup().get("passed", True))

    def failure_message(self) -> str:
        """The one line a failed ``--strict`` audit or release gate reports."""
        if self.leaks:
            return self.leak_message()
        lu = self.lineup()
        worst = max((r for r in lu["rank1"] if lu["rank1"][r] is not None), key=lu["rank1"].get)
        return (
            f"the patient is nearest of {lu['n_identities']} identities"
            + (" (without the donor)" if lu["without_donor"] else "")
            + f" in {_pct(lu['rank1'][worst])} of frames ({worst}; chance {_pct(lu['chance'])}, "
            f"bound {_pct(lu['bound'])})"
        )

    def leak_message(self) -> str:
        """The one line ``--strict`` fails with."""
        frames = self.leak_frames
        n = len(frames)
        verb = "frame shows" if n == 1 else "frames show"
        return f"{n} {verb} the original identity (first at frame {frames[0]})"

    def summary(self) -> str:
        """One line for the terminal."""
        name = Path(self.deidentified).name
        if self.nothing_to_protect:
            return (
                f"{name}: no face found in the original ({self.frames} frames): nothing to protect"
            )
        parts = []
        lu = self.lineup()
        if lu:
            rates = ", ".join(f"{r} {_pct(v)}" for r, v in lu["rank1"].items())
            parts.append(
                f"lineup rank-1{' without the donor' if lu['without_donor'] else ''} {rates} "
                f"(chance {_pct(lu['chance'])}, {lu['n_identities']} identities, "
                f"bound {_pct(lu['bound'])}: {'passed' if lu['passed'] else 'FAILED'})"
            )
        parts += [
            f"{len(self.leak_frames)} of {self.frames} frames show the original identity"
            if self.leaks
            else f"no frame of {self.frames} shows the original identity",
            "re-id " + ", ".join(f"{r} {_pct(self.reid_rate(r))}" for r in RECOGNISERS),
        ]
        ident = self.identification
        if ident.get("recognisers"):
            recs = ident["recognisers"].items()
            r1 = ", ".join(f"{r} {_pct(v['rank1_rate'])}" for r, v in recs)
            named = ", ".join(f"{r} {_pct(v['rank1_within_threshold_rate'])}" for r, v in recs)
            parts.append(
                f"rank-1 {r1} (chance {_pct(ident['chance_rank1'])}, "
                f"{ident['n_identities']} identities; within threshold {named})"
            )
        if self.frames_no_face_in_output:
            parts.append(
                f"no face in the output in {len(self.frames_no_face_in_output)} of "
                f"{self.frames_with_original_face} frames"
            )
        return f"{name}: " + "; ".join(parts)

    def to_json(self) -> dict:
        return {
            # File names only: the original's name may be the patient's, and paths as typed
            # say where a hospital keeps its data.
            "deidentified": Path(self.deidentified).name,
            "summary": self.summary(),
            "lineup": self.lineup(),
            "safe": self.safe,
            "clean": self.clean,
            "nothing_to_protect": self.nothing_to_protect,
            "frames": self.frames,
            "stride": self.stride,
            "frames_with_original_face": self.frames_with_original_face,
            "thresholds": {
                r: {"same_person_below": round(THRESHOLDS[r], 4), "metric": METRICS[r]}
                for r in RECOGNISERS
            },
            "verification": self.verification,
            "frames_no_face_in_output": self.frames_no_face_in_output,
            "identification": self.identification,
            "leaks": {
                "frames": self.leak_frames,
                "n_frames": len(self.leak_frames),
                "hits": [h.to_json() for h in self.leaks],
            },
            "donors": self.donors,
            "enrolment": self.enrolment,
            "gallery": self.gallery,
            "models": _model_names(),
            "seconds": round(self.seconds, 2),
        }


def _pct(v: float | None) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}%"


def _model_names() -> dict:
    from medswap.models import MODELS

    return {
        n: {
            "package": f"{MODELS[n].package}=={MODELS[n].package_version}",
            **({"origin": MODELS[n].origin} if MODELS[n].origin else {}),
            "sha256": MODELS[n].sha256,
        }
        for n in AUDIT_MODELS
    }
