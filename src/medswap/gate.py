"""The release gate: every rendered frame is judged before it is encoded, and fixed if it fails.

A frame leaves ``deidentify`` for the encoder only after the in-stream audit
(:mod:`medswap.evaluate.stream`) has judged each face in it. The per-frame rule is the
recognisers' own: a face that dlib or SFace judges to be the patient (below its published
threshold, against the enrolled template or the same frame's original face) is flagged. Being
*nearest* of the lineup in one frame is not flagged per frame: a face that is nobody's is still
nearest to someone, and the patient in about one frame in N of a gallery of N by chance alone,
so flagging single frames would obscure frames at random with no evidence against them. The
lineup is judged over the run instead (:attr:`medswap.evaluate.privacy.AuditResult.clean`).

A flagged tracked face is rendered again with stronger settings, one step at a time (the
donor's whole geometry, ``shape=1.0``; then each other donor at ``shape=1.0``), and judged
again; the first that clears is kept. What still fails, and a face only the audit's detector
found, is obscured (:func:`medswap.swap.obscure.obscure`) and the reason recorded. The gate
runs on its own thread with its own swappers, so the renderer's per-track state is untouched.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from medswap.evaluate.privacy import THRESHOLDS, AuditResult, distance
from medswap.evaluate.stream import (
    ENROL_FIRST,
    FrameJudgement,
    JudgedFace,
    Place,
    StreamAuditor,
)
from medswap.faces.mesh import occluding_hands
from medswap.swap import obscure as obs
from medswap.swap.donors import BUILTIN_DONORS, Donor, builtin_donor, donor_margin
from medswap.swap.engine import MeshSwapper, SwapSettings
from medswap.types import FaceOutcome, FaceStatus, FaceTrackState, FrameOutcome, Reason

#: Frames judged but not yet finished (waiting for dlib) at most; each holds its original and
#: its rendering, so memory stays flat.
GATE_LAG = 8
#: Reasons recorded in the report for faces the gate changed.
REASON_OBSCURED = Reason.REIDENTIFIED
REASON_UNTRACKED = Reason.UNTRACKED


@dataclass
class Rendered:
    """One frame as the renderer left it, with what the gate needs to judge and redo it."""

    index: int
    pts: int | None
    time_s: float
    original: np.ndarray
    image: np.ndarray
    states: list[FaceTrackState]
    hands: list[np.ndarray]
    outcome: FrameOutcome
    #: The audit's face search on ``image`` (:meth:`StreamAuditor.find`), started beside the
    #: renderer; None: the gate searches itself.
    found: Future | None = None


class DonorTooClose(Exception):
    """The run's donor is nearer the patient than the run asked for: start again behind the
    next donor (raised by the gate once the audit has enrolled the patient's first faces)."""

    def __init__(self, donor: str, margin: float, faces: int, enough: float) -> None:
        self.donor, self.margin, self.faces, self.enough = donor, margin, faces, enough
        super().__init__(
            f"{donor} is at a margin of {margin:.2f} from the patient's first {faces} faces, "
            f"under {enough}"
        )


@dataclass
class _Step:
    name: str
    swapper: MeshSwapper
    donor: Donor


class ReleaseGate:
    """Judges, fixes and hands on each rendered frame; see the module docstring."""

    def __init__(
        self,
        auditor: StreamAuditor,
        method: str,
        settings: SwapSettings,
        donors: Sequence[Donor],
        track_donor: Callable[[int], Donor],
        can_rerender: bool,
        enough: float | None = None,
    ) -> None:
        self.auditor = auditor
        #: With a margin, :class:`DonorTooClose` is raised once the patient is enrolled and
        #: a donor of the run is nearer than it (the run has another donor to try).
        self.enough = enough
        #: Each donor's margin from the patient's template (:meth:`_measure_donors`).
        self.donor_margins: dict[str, float] = {}
        self._donors_measured = False
        self.method = method
        self.donors = list(donors)
        self.track_donor = track_donor  # the donor each track was drawn with
        self.can_rerender = can_rerender and method == "swap" and bool(donors)
        self.strong = replace(settings, shape=1.0)
        self._swappers: dict[str, MeshSwapper] = {}
        self.counts: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.rerender_s = 0.0
        self._started: deque[tuple[Rendered, FrameJudgement]] = deque()

    def _steps(self, track_id: int) -> list[_Step]:
        """The stronger renderings to try, in order (the assigned donor first)."""
        first = self.track_donor(track_id)
        others = [d for d in self.donors if d.name != first.name]
        if not others:  # one donor given: the built-in portraits are the other donors
            others = [builtin_donor(n) for n in BUILTIN_DONORS if n not in (first.name, "average")]
        steps = []
        for donor in [first, *others]:
            if donor.name not in self._swappers:
                self._swappers[donor.name] = MeshSwapper(self.strong)
            steps.append(_Step(f"shape 1.0, donor {donor.name}", self._swappers[donor.name], donor))
        return steps

    def push(self, item: Rendered) -> list[Rendered]:
        """Start judging ``item``; the frames that are finished come back, in order.

        dlib's descriptor of a frame is computed in the auditor's process while the next
        frames are judged, so a frame is finished once its descriptors are in, or when
        :data:`GATE_LAG` frames wait behind it. Each returned frame's ``image`` is final.
        """
        self._started.append((item, self._judge(item)))
        done = []
        while self._started and (len(self._started) > GATE_LAG or self._started[0][1].ready()):
            done.append(self._finish(*self._started.popleft()))
        self._measure_donors(final=False)
        return done

    def flush(self) -> list[Rendered]:
        """Finish every frame still waiting, in order."""
        done = []
        while self._started:
            done.append(self._finish(*self._started.popleft()))
        self._measure_donors(final=True)
        return done

    def _measure_donors(self, final: bool) -> None:
        """How far each donor of the run is from the patient, once the audit's template holds
        :data:`~medswap.evaluate.stream.ENROL_FIRST` faces (or at the end, with fewer): a mean
        of several frames, as steady as the recognisers allow, and already paid for. A donor
        that either recogniser takes for the patient (a margin under 1) is given up at once."""
        if self._donors_measured or self.method != "swap" or not self.donors:
            return
        enrolled = self.auditor.dlib_enrolments
        settled = final or enrolled >= ENROL_FIRST
        if not settled and self.enough is None:  # nothing to decide before the template settles
            return
        template = self.auditor.template
        if template is None:  # no patient's face described (yet): nothing to measure against
            self._donors_measured = final
            return
        described = self.auditor.donor_descriptors()
        margins = {}
        for donor in self.donors:
            if (desc := described.get(donor.name)) is not None:
                dist = {r: distance(r, template[r], desc[r]) for r in THRESHOLDS}
                margins[donor.name] = round(donor_margin(dist, THRESHOLDS), 4)
        if settled:
            self._donors_measured, self.donor_margins = True, margins
        if self.enough is None:
            return
        for name, margin in margins.items():
            if margin < (self.enough if settled else 1.0):
                raise DonorTooClose(name, margin, enrolled, self.enough)

    def _judge(self, item: Rendered) -> FrameJudgement:
        """Start the auditor's judgement of ``item`` at the places its faces were tracked."""
        places = [Place(st.track_id, st.box, st.score, st.landmarks) for st in item.states]
        found = None if item.found is None else item.found.result()
        return self.auditor.judge(item.index, item.time_s, item.original, item.image, places, found)

    def _finish(self, item: Rendered, started: FrameJudgement) -> Rendered:
        """Settle ``item``'s judgement, fix what fails (in ``item.image``) and record it."""
        by_id = {p.track_id: p for p in started.places}
        judgement = self.auditor.settle(started)
        states = {st.track_id: st for st in item.states}
        final: list[JudgedFace] = []
        for face in judgement.faces:
            if not face.hits:
                final.append(face)
                continue
            self.counts["faces_flagged"] += 1
            place = by_id.get(face.track_id)
            fixed = self._rerender(item, judgement, place, states) if place is not None else None
            if fixed is not None:
                final.append(fixed)
                continue
            reason = REASON_OBSCURED if place is not None else REASON_UNTRACKED
            if place is None:  # a face only the audit's detector saw: its place is its box
                place = Place(-1, face.record.box, face.face.score, None)
            obs.obscure(item.image, np.asarray(place.box, dtype=np.float64))
            self.counts["faces_obscured"] += 1
            self.reasons[reason] += 1
            self._mark(item.outcome, face, reason)
            # Judged again: one still recognised under the mosaic stays a leak (exit 20).
            again = self.auditor.rejudge(judgement, item.image, place)
            if again is not None:
                final.append(again)
        self.auditor.commit(judgement, final)
        return item

    def _rerender(
        self,
        item: Rendered,
        judgement: FrameJudgement,
        place: Place,
        states: dict[int, FaceTrackState],
    ) -> JudgedFace | None:
        """The first stronger rendering of this face that both recognisers clear, or None."""
        if not self.can_rerender or place.landmarks is None:
            return None
        t0 = time.perf_counter()
        try:
            in_front = occluding_hands(item.hands, place.landmarks) if item.hands else []
            for step in self._steps(place.track_id):
                candidate = item.image.copy()
                try:
                    step.swapper.swap(
                        candidate, place.track_id, place.landmarks, step.donor, in_front
                    )
                except (ValueError, np.linalg.LinAlgError):
                    continue
                again = self.auditor.rejudge(judgement, candidate, place)
                if not again.hits:
                    item.image[...] = candidate
                    self.counts[f"re-rendered: {step.name}"] += 1
                    for f in item.outcome.faces:
                        if f.track_id == place.track_id:
                            f.donor = step.donor.name
                            f.reason = f"re-rendered by the gate ({step.name})"
                    return again
            return None
        finally:
            self.rerender_s += time.perf_counter() - t0

    @staticmethod
    def _mark(outcome: FrameOutcome, face: JudgedFace, reason: str) -> None:
        """Record an obscured face in the frame's outcome (a face the tracker missed is added)."""
        for f in outcome.faces:
            if f.track_id == face.track_id:
                f.status, f.reason, f.donor = FaceStatus.OBSCURED, reason, None
                return
        outcome.faces.append(
            FaceOutcome(-1, face.record.box.tolist(), face.face.score, FaceStatus.OBSCURED, reason)
        )

    def to_json(self) -> dict:
        return {
            "rule": "a face either recogniser judges to be the patient is re-rendered "
            "(shape 1.0, then each other donor), judged again, and obscured if it still fails",
            **dict(self.counts),
            "donor_margin": self.donor_margins,
            "obscured_reasons": dict(self.reasons),
            "rerender_s": round(self.rerender_s, 3),
        }


def audit_of_the_file(
    original: Path,
    written: Path,
    donors: Sequence[Donor],
    max_frames: int | None,
    in_stream: AuditResult,
) -> AuditResult:
    """The audit to release on: the after-the-fact audit (``medswap audit``, every frame) of
    the file as encoded where it is not clean, else ``in_stream``.

    Run when the gate read a face near the patient (under
    :data:`~medswap.evaluate.stream.DLIB_SUSPECT_DISTANCE`): on such a face the encoded file can
    read closer to the patient than the frame the gate judged (README, the release gate), so
    the release is judged on the file itself too.
    """
    from medswap.evaluate.privacy import audit

    of_the_file = audit(original, written, donors=list(donors), max_frames=max_frames)
    return in_stream if of_the_file.clean else of_the_file
