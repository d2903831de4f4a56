"""Which donor each face track gets: from names, files and folders, and by distance to the patient.

With several donors, a track gets the one its patient is farthest from for both of the audit's
recognisers: a swapped face can be no farther from the patient than its donor is.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medswap import video
from medswap.errors import DonorError
from medswap.faces.mesh import FaceDetector, FaceMesher
from medswap.faces.track import MAX_GAP, FaceTracker
from medswap.swap.donors import (
    DEFAULT_DONOR,
    ENOUGH_MARGIN,
    FALLBACK_DONORS,
    Donor,
    assign_donor,
    builtin_donor,
    choose_donor,
    donor_margin,
    load_donor,
)

if TYPE_CHECKING:
    from medswap.config import DeidentifyConfig

#: Image files taken from a ``--donor`` folder.
DONOR_SUFFIXES = (".jpg", ".jpeg", ".png")


def resolve_donors(
    donors: Sequence[str | Path | Donor] | None, audited: bool = False
) -> list[Donor]:
    """Donor objects from names, image paths and folders of images (sorted by file name).

    None given: the first of :data:`~medswap.swap.donors.FALLBACK_DONORS` for an ``audited``
    run (the gate measures it against the patient and the run falls back to the next if it is
    too near), else :data:`~medswap.swap.donors.DEFAULT_DONOR`, which is far from every
    patient measured: without the audit nothing checks the donor.
    """
    if not donors:
        return [builtin_donor(FALLBACK_DONORS[0] if audited else DEFAULT_DONOR)]
    out: list[Donor] = []
    for d in donors:
        if isinstance(d, Donor):
            out.append(d)
        elif Path(d).is_dir():
            images = sorted(p for p in Path(d).iterdir() if p.suffix.lower() in DONOR_SUFFIXES)
            if not images:
                raise DonorError("no donor image (.jpg, .jpeg, .png) in the folder", d)
            out.extend(load_donor(p) for p in images)
        else:
            out.append(load_donor(d))
    return out


def _next_builtins(cfg: DeidentifyConfig, used: Sequence[Donor], learned: bool) -> tuple[str, ...]:
    """The names of :data:`~medswap.swap.donors.FALLBACK_DONORS` after the run's donor; none
    when the user chose the donors, the engine is learned (its donor is in the model) or
    nothing is audited: then no donor is replaced."""
    if cfg.donors or not cfg.audit or cfg.method != "swap" or learned or not used:
        return ()
    name = used[0].name
    return (
        FALLBACK_DONORS[FALLBACK_DONORS.index(name) + 1 :]
        if name in FALLBACK_DONORS
        else FALLBACK_DONORS
    )


def fallback_donors(cfg: DeidentifyConfig, used: Sequence[Donor], learned: bool) -> Iterator[Donor]:
    """The built-in donors a run with the default donor may try next (:func:`_next_builtins`),
    if its first donor is too near the patient or its audit is not clean. Each is loaded only
    when asked for: most runs never need one, and each costs a face mesh of its portrait
    before the first frame."""
    for name in _next_builtins(cfg, used, learned):
        yield builtin_donor(name)


def near_donor_margin(cfg: DeidentifyConfig, used: Sequence[Donor], learned: bool) -> float | None:
    """The margin under which the run's donor is given up for the next one at once
    (:data:`~medswap.swap.donors.ENOUGH_MARGIN`), or None where there is no next one to try."""
    in_order = len(used) == 1 and used[0].name in FALLBACK_DONORS
    return ENOUGH_MARGIN if in_order and _next_builtins(cfg, used, learned) else None


#: The patient's face is measured on this many frames spread over the first seconds of the
#: video (a pre-pass through the same mesh, detector and tracker, so track ids agree)...
DONOR_PROBE_FRAMES, DONOR_PROBE_SECONDS = 5, 2.0


class DonorChooser:
    """Which donor each face track gets, and why (for the report).

    With one donor there is nothing to choose. With several, the patient of each track is
    measured by the audit's two recognisers (dlib ResNet, SFace; models the swap does not use)
    on :data:`DONOR_PROBE_FRAMES` frames of the video's first :data:`DONOR_PROBE_SECONDS`
    seconds (:meth:`probe`), or on its first frame for a track that starts later, and gets the
    donor farthest from them for both (:func:`medswap.swap.donors.choose_donor`): the swap's
    face can be no farther from the patient than its donor is. The choice depends on the faces
    alone (same input, same choice); a track whose face the audit's detector cannot find gets
    the donor of ``seed`` (:func:`medswap.swap.donors.assign_donor`), and the report says so.
    """

    def __init__(self, donors: list[Donor], seed: int = 0) -> None:
        self.donors, self.seed = donors, seed
        self.measures = len(donors) > 1
        self._chosen: dict[int, Donor] = {}
        self._why: dict[int, dict] = {}
        self._samples: dict[int, list[tuple[int, np.ndarray, np.ndarray]]] = {}
        self._analyser = None
        self._donor_desc: dict[str, dict[str, np.ndarray]] = {}

    def probe(self, src: Path, info: video.VideoInfo, max_frames: int | None) -> None:
        """Sample each track's face over the video's first seconds, before the swap starts."""
        n = max(1, round(DONOR_PROBE_SECONDS * float(info.fps or 25)))
        n = min(n, *(m for m in (max_frames, info.n_frames) if m))
        want = set(np.linspace(0, n - 1, min(DONOR_PROBE_FRAMES, n)).round().astype(int).tolist())
        mesher, detector = FaceMesher(max_faces=4, video=True), FaceDetector(min_confidence=0.4)
        tracker = FaceTracker(max_gap=MAX_GAP)
        try:
            for frame in video.read_frames(src, info, max_frames=n):
                states = tracker.update(
                    frame.index, frame.time_s, mesher(frame.image), *detector(frame.image)
                )
                if frame.index in want:
                    for st in states:
                        if st.landmarks is not None:
                            sample = (frame.index, frame.image, st.box.copy())
                            self._samples.setdefault(st.track_id, []).append(sample)
        finally:
            mesher.close()
            detector.close()

    def see(self, frame_index: int, image: np.ndarray, states) -> None:
        """Choose a donor for every track that has a face mesh in this frame and none yet."""
        if not self.donors:  # a baseline method, or a learned model with its donor baked in
            return
        for st in states:
            if st.landmarks is not None and st.track_id not in self._chosen:
                samples = self._samples.pop(st.track_id, None) or [(frame_index, image, st.box)]
                self._choose(st.track_id, samples)

    def donor(self, track_id: int) -> Donor:
        if track_id not in self._chosen:  # not seen with a mesh (cannot happen in the loop)
            self._chosen[track_id] = assign_donor(self.donors, track_id, self.seed)
        return self._chosen[track_id]

    def report(self) -> list[dict]:
        return [{"track_id": t, **self._why[t]} for t in sorted(self._why)]

    def _choose(self, track_id: int, samples) -> None:
        if not self.measures:
            self._chosen[track_id] = self.donors[0]
            return
        from medswap.evaluate.privacy import (
            RECOGNISERS,
            THRESHOLDS,
            FaceAnalyser,
            describe_still,
            distance,
            mean_descriptor,
        )
        from medswap.faces.independent import overlap_of_smaller

        if self._analyser is None:
            self._analyser = FaceAnalyser()
        records, frames = [], []
        for index, image, box in samples:
            pairs = self._analyser.detect(image, hog=False)
            boxes = [(p[0] if p[0] is not None else p[1]).box for p in pairs]
            best = max(
                range(len(pairs)), key=lambda i: overlap_of_smaller(box, boxes[i]), default=None
            )
            if best is not None and overlap_of_smaller(box, boxes[best]) >= 0.3:
                records.append(self._analyser.describe(image, pairs[best]))
                frames.append(int(index))
        if not records:
            self._chosen[track_id] = assign_donor(self.donors, track_id, self.seed)
            self._why[track_id] = {
                "donor": self._chosen[track_id].name,
                "how": "from the seed: the patient's face was not found to measure",
            }
            return
        patient = {r: mean_descriptor(r, [getattr(x, r) for x in records]) for r in RECOGNISERS}
        distances: dict[str, dict[str, float]] = {}
        by_key: dict[str, Donor] = {}
        for i, d in enumerate(self.donors):
            key = d.name if d.name not in by_key else f"{d.name}#{i}"
            by_key[key] = d
            if d.fingerprint not in self._donor_desc:
                rec = describe_still(self._analyser, d.image)
                self._donor_desc[d.fingerprint] = (
                    {r: getattr(rec, r) for r in RECOGNISERS} if rec is not None else {}
                )
            desc = self._donor_desc[d.fingerprint]
            if desc:
                distances[key] = {
                    r: round(distance(r, patient[r], desc[r]), 4) for r in RECOGNISERS
                }
        name = choose_donor(distances, THRESHOLDS) if distances else None
        self._chosen[track_id] = by_key[name] if name else self.donors[0]
        self._why[track_id] = {
            "donor": self._chosen[track_id].name,
            "how": "farthest from the patient for both recognisers",
            "frames_measured": frames,
            "distances": distances,
            "margin": {k: round(donor_margin(v, THRESHOLDS), 4) for k, v in distances.items()},
        }
