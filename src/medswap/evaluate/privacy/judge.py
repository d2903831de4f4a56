"""Judging the descriptors (pure numpy): leaks, verification, the lineup, donor dominance.

Shared by the after-the-fact audit (``medswap audit``) and the in-stream audit of
``deidentify`` (:mod:`medswap.evaluate.stream`), so both judge with exactly the same rule.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from medswap.evaluate.privacy.gallery import Gallery
from medswap.evaluate.privacy.recognisers import (
    RECOGNISERS,
    THRESHOLDS,
    FaceRecord,
    distance,
    distances,
    overlap,
    same_person,
)
from medswap.evaluate.privacy.result import LeakHit, distribution
from medswap.evaluate.privacy.scanning import FrameScan


def matched_output(scan_: FrameScan, min_overlap: float = 0.3) -> FaceRecord | None:
    """The output face in the place of the patient's original face (the swap keeps geometry)."""
    if scan_.original is None:
        return None
    best, best_face = min_overlap, None
    for face in scan_.outputs:
        if (o := overlap(scan_.original.box, face.box)) >= best:
            best, best_face = o, face
    return best_face


def leaks_in(
    scan_: FrameScan, template: dict[str, np.ndarray], margin: float = 0.0
) -> list[LeakHit]:
    """The output faces of one frame that either recogniser judges to be the patient.

    Each face is compared with the enrolled template and with the original face of the same
    frame; the closer of the two is reported. Pure, so that the in-stream gate judges one
    frame with exactly the rule the after-the-fact audit applies to all of them. ``margin``,
    added to each recogniser's threshold, is the gate's allowance for the encoded file that an
    after-the-fact audit decodes reading differently (``medswap.evaluate.stream.JUDGE_MARGIN``).
    """
    hits = []
    for face in scan_.outputs:
        for r in RECOGNISERS:
            desc = getattr(face, r)
            if desc is None:
                continue
            refs = [("enrolled", template[r])]
            orig = scan_.original
            same = None if orig is None else getattr(orig, r)
            # The stream puts the template in where it did not describe the original face.
            if same is not None and same is not template[r]:
                refs.append(("same_frame", same))
            d, ref = min((distance(r, desc, v), name) for name, v in refs)
            if same_person(r, d - margin):
                hits.append(
                    LeakHit(scan_.index, scan_.time_s, face.box.tolist(), r, d, ref, face.detectors)
                )
    return hits


def find_leaks(scans: Sequence[FrameScan], template: dict[str, np.ndarray]) -> list[LeakHit]:
    """Every output face of every frame that either recogniser judges to be the patient."""
    return [h for s in scans for h in leaks_in(s, template)]


def _median_of_counts(counts: Counter) -> float:
    """The median of values held as a Counter (value -> count), as ``np.median`` gives it."""
    values = sorted(counts)
    n = sum(counts.values())
    cum, lo, hi = 0, None, None
    for v in values:
        cum += counts[v]
        if lo is None and cum >= (n + 1) // 2:
            lo = v
        if cum >= n // 2 + 1:
            hi = v
            break
    return float((lo + hi) / 2) if n % 2 == 0 else float(lo)


class Judge:
    """The audit's verdict built frame by frame, in memory that does not grow with length.

    Each :class:`FrameScan` is judged once and dropped: what is kept is a leak list (only the
    hits), one float per frame and recogniser for the distance distributions, and counts for
    the lineup. :func:`verify`, :func:`find_leaks`, :func:`identify` and
    :func:`donor_dominance` are this class over a list of scans, so the after-the-fact audit
    (``medswap audit``) and the in-stream audit of ``deidentify`` judge with the same code.
    ``template`` may change between frames (the stream enrols as frames pass); each frame is
    judged against the template of its time.
    """

    def __init__(
        self,
        template: dict[str, np.ndarray] | None = None,
        gallery: Gallery | None = None,
        donors: Mapping[str, FaceRecord] | None = None,
        donor_names: Sequence[str] = (),
    ) -> None:
        self.template = template
        self.gallery = gallery
        self.donors = dict(donors or {})
        self.donor_names = tuple(donor_names)
        self.frames = 0
        self.frames_with_original_face = 0
        self.leaks: list[LeakHit] = []
        self.no_face: array = array("q")
        self._dists = {r: array("d") for r in RECOGNISERS}
        self._checked = dict.fromkeys(RECOGNISERS, 0)
        self._ranks = {r: Counter() for r in RECOGNISERS}
        self._ranks_nd = {r: Counter() for r in RECOGNISERS}
        self._named = dict.fromkeys(RECOGNISERS, 0)
        self._top = {r: Counter() for r in RECOGNISERS}
        self._donor = {(n, r): (array("d"), array("d")) for n in self.donors for r in RECOGNISERS}
        self.n_probes = 0
        self._not_donor = np.zeros(0, dtype=bool)
        if gallery is not None:
            donor_set = set(self.donor_names)
            self._not_donor = np.array(
                [
                    g.name not in donor_set and not self._resembles_a_donor(g)
                    for g in gallery.identities
                ],
                dtype=bool,
            )
            self._gallery = {
                r: np.stack([getattr(g, r) for g in gallery.identities])
                if gallery.identities
                else np.zeros((0, 128))
                for r in RECOGNISERS
            }

    def _resembles_a_donor(self, identity) -> bool:
        """Whether either recogniser takes a gallery identity for one of the donors.

        The lineup without the donor leaves the donor out, because an attacker's list of
        patients does not hold the face the output now wears. An identity the donor resembles
        (a custom donor's photo of someone in the gallery, or a variant of a built-in
        portrait under another name) would stay in as a decoy that the output resembles, and
        take rank-1 from the patient: it is left out too.
        """
        for record in self.donors.values():
            for r in RECOGNISERS:
                theirs = getattr(record, r)
                if theirs is not None and same_person(r, distance(r, getattr(identity, r), theirs)):
                    return True
        return False

    @property
    def without_donors(self) -> bool:
        """A lineup without the donor exists: donors were named and others remain."""
        return bool(self.donor_names) and bool(np.any(self._not_donor))

    def rank_of_patient(
        self, recogniser: str, desc: np.ndarray
    ) -> tuple[int, int, float, int, float]:
        """Rank of the patient among the gallery (and among non-donors), the patient's
        distance, and the nearest gallery identity's index and distance."""
        d_patient = distance(recogniser, desc, self.template[recogniser])
        d_gallery = distances(recogniser, desc, self._gallery[recogniser])
        closer = d_gallery < d_patient
        rank = 1 + int(closer.sum())
        rank_nd = 1 + int((closer & self._not_donor).sum())
        best = int(np.argmin(d_gallery))
        return rank, rank_nd, d_patient, best, float(d_gallery[best])

    def add(self, scan_: FrameScan, leaks: list[LeakHit] | None = None) -> None:
        """Judge one frame (``leaks`` when the caller already found them with this template)."""
        self.frames += 1
        if self.template is not None:  # also frames with no face in the original
            self.leaks.extend(leaks if leaks is not None else leaks_in(scan_, self.template))
        if scan_.original is None:
            return
        self.frames_with_original_face += 1
        face = matched_output(scan_)
        for r in RECOGNISERS:
            self._checked[r] += getattr(scan_.original, r) is not None
        if face is None:
            self.no_face.append(scan_.index)
            return
        for r in RECOGNISERS:
            a, b = getattr(scan_.original, r), getattr(face, r)
            if a is not None and b is not None:
                self._dists[r].append(distance(r, a, b))
        if self.template is None:
            return
        self.n_probes += 1
        for r in RECOGNISERS:
            desc = getattr(face, r)
            if desc is None:
                continue
            for name, donor in self.donors.items():
                to_donor, to_patient = self._donor[(name, r)]
                to_donor.append(distance(r, desc, getattr(donor, r)))
                to_patient.append(distance(r, desc, self.template[r]))
            if self.gallery is None or not self.gallery.identities:
                continue
            rank, rank_nd, d_patient, best, d_best = self.rank_of_patient(r, desc)
            self._ranks[r][rank] += 1
            self._ranks_nd[r][rank_nd] += 1
            self._named[r] += rank == 1 and same_person(r, d_patient)
            self._top[r][
                "(patient)" if d_patient <= d_best else self.gallery.identities[best].name
            ] += 1

    def verification(self) -> tuple[dict, list[int]]:
        """Per-frame original-vs-output distances: rates, distributions, frames with no face."""
        out = {}
        for r in RECOGNISERS:
            dists = self._dists[r]
            same = sum(same_person(r, d) for d in dists)
            n = self._checked[r]
            out[r] = {
                "frames_checked": n,
                "frames_compared": len(dists),
                "frames_reidentified": int(same),
                # A face not found in the output is not a re-identification: it counts as hidden.
                "reid_rate": round(same / n, 4) if n else None,
                "reid_rate_where_face_found": round(same / len(dists), 4) if dists else None,
                "distance": distribution(r, dists),
            }
        return out, list(self.no_face)

    def identification(self) -> dict:
        """Rank-1 and rank-5 rates of the patient among the gallery; see :func:`identify`."""
        gallery = self.gallery or Gallery("none")
        n_id = len(gallery.identities) + 1  # the gallery plus the enrolled patient
        result = {
            "n_identities": n_id,
            "n_probes": self.n_probes,
            "chance_rank1": round(1 / n_id, 4),
            "chance_rank5": round(min(5, n_id) / n_id, 4),
            "recognisers": {},
        }
        if not gallery.identities or not self.n_probes:
            result["note"] = (
                "no gallery identity could be used"
                if not gallery.identities
                else "no output face to identify"
            )
            return result
        if self.without_donors:
            result["chance_rank1_without_donors"] = round(1 / (int(self._not_donor.sum()) + 1), 4)
        for r in RECOGNISERS:
            ranks = self._ranks[r]
            n = sum(ranks.values())
            if not n:
                continue
            result["recognisers"][r] = {
                "n_probes": n,
                "rank1_rate": round(ranks[1] / n, 4),
                "rank5_rate": round(sum(c for k, c in ranks.items() if k <= 5) / n, 4),
                "rank1_within_threshold_rate": round(self._named[r] / n, 4),
                "median_patient_rank": _median_of_counts(ranks),
                "top1_identities": dict(self._top[r].most_common(5)),
            }
            if "chance_rank1_without_donors" in result:
                result["recognisers"][r]["rank1_rate_without_donors"] = round(
                    self._ranks_nd[r][1] / n, 4
                )
        return result

    def donor_dominance(self) -> dict:
        """How close the output faces are to each donor, and how often closer than to the
        patient."""
        out = {}
        for name in self.donors:
            per = {}
            for r in RECOGNISERS:
                to_donor, to_patient = (np.asarray(a) for a in self._donor[(name, r)])
                if not to_donor.size:
                    continue
                per[r] = {
                    "median_distance_to_donor": round(float(np.median(to_donor)), 4),
                    "median_distance_to_patient": round(float(np.median(to_patient)), 4),
                    "same_as_donor_rate": round(float(np.mean(to_donor < THRESHOLDS[r])), 4),
                    "closer_to_donor_rate": round(float(np.mean(to_donor < to_patient)), 4),
                }
            out[name] = per
        return out


def verify(scans: Sequence[FrameScan]) -> tuple[dict, list[int]]:
    """Per-frame original-vs-output distances: rates, distributions, frames with no face."""
    judge = Judge()
    for s in scans:
        judge.add(s)
    return judge.verification()


def identify(
    scans: Sequence[FrameScan],
    template: dict[str, np.ndarray],
    gallery: Gallery,
    donor_names: Sequence[str] = (),
    donors: Mapping[str, FaceRecord] | None = None,
) -> dict:
    """Rank-1 and rank-5 rates of the patient among gallery identities, for the output faces.

    Closed-set ranks say who is *nearest*, however far: a swapped face that is far from
    everyone is still nearest to someone, and on the shared clips that is often the patient
    (outline, hair and head shape are kept). ``rank1_within_threshold_rate`` is the open-set
    rate: the patient nearest *and* within the recogniser's same-person threshold, the
    identification an operator would act on.

    With the donor in the gallery the swapped face is nearest to the donor, which makes the
    patient's rank-1 rate look safe by construction. An attacker's short list of candidate
    patients does not contain the donor, so ``rank1_rate_without_donors`` ranks the patient
    among the gallery identities not named in ``donor_names``, against its own chance rate:
    the audit's headline lineup figure. With the ``donors``' descriptors, every gallery identity
    that either recogniser takes for a donor is left out too (a morph or variant of a gallery
    face would otherwise stay in as a decoy that the output resembles).
    """
    judge = Judge(template, gallery, donors, donor_names=donor_names)
    for s in scans:
        judge.add(s, leaks=[])
    return judge.identification()


def donor_dominance(
    scans: Sequence[FrameScan],
    template: dict[str, np.ndarray],
    donors: Mapping[str, FaceRecord],
) -> dict:
    """How close the output faces are to each donor, and how often closer than to the patient."""
    judge = Judge(template, None, donors)
    for s in scans:
        judge.add(s, leaks=[])
    return judge.donor_dominance()
