"""The privacy audit inside ``deidentify``: every output frame judged before it is encoded.

The after-the-fact audit (:func:`medswap.evaluate.privacy.audit`) decodes both videos again and
finds every face from scratch. Inside the pipeline most of that is known already: the original
frame is in memory, and the tracker says where each face is. So each output frame is judged
as it leaves the renderer:

- **Where to look**: the pipeline's own face tracks, plus YuNet on the output frame (shrunk to
  :data:`DETECT_SIDE`; :meth:`StreamAuditor.find`, on a thread beside the judging one), so
  that a face the tracker missed is still judged. A tracked face YuNet
  does not find is judged anyway, aligned by five points taken from the face mesh.
- **Who the patient is**: enrolled from the original frames as they pass (the first frames
  with a face, then one every :data:`ENROL_SPREAD` frames), a running mean of descriptors, so
  memory stays flat; each frame is judged against the template of its time.
- **The judgement**: :func:`medswap.evaluate.privacy.leaks_in` and
  :class:`medswap.evaluate.privacy.Judge`, the same pure code as ``medswap audit``.

dlib's shape model and chip hold Python's lock, and so did its compiled ResNet (a thread beside
it got a tenth of its share), so dlib runs in a child process, fed small crops
(:mod:`medswap.evaluate.audit_process`, which also builds the gallery at start-up); YuNet and
SFace release the lock and run on the auditing thread.
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from medswap.evaluate.audit_process import AuditProcess, dlib_descriptor, gallery_and_donors
from medswap.evaluate.privacy import (
    SFACE_SUSPECT_DISTANCE,
    AuditResult,
    FaceAnalyser,
    FaceRecord,
    FrameScan,
    Gallery,
    Judge,
    LeakHit,
    _hog_like_box,
    distance,
    fill_result,
    leaks_in,
)
from medswap.faces.independent import (
    IndependentFace,
    SFaceRecogniser,
    overlap_of_smaller,
)
from medswap.faces.mesh import five_points_from_mesh

#: Output frames are searched by YuNet shrunk to this longest side: a quarter of the cost of
#: 1280x720. Halving the side again would lose the smaller faces of a 720p frame that it finds
#: here (the tracker covers smaller ones).
DETECT_SIDE = 640
#: The first frames with a face that enrol the patient, and the gap between them (frames).
ENROL_FIRST = 8
ENROL_GAP = 5
#: After the first ones, one more original face is described every this many frames.
ENROL_SPREAD = 60
#: dlib's descriptor runs on every ``dlib_stride``-th frame (:func:`dlib_stride_for`), and on
#: any frame where SFace finds an output face within :data:`SFACE_SUSPECT_DISTANCE` of the
#: patient or there is no template. The stride is set by how many probes the lineup needs:
#: at least :data:`DLIB_PROBES` over the video, dlib never sparser than every
#: :data:`DLIB_STRIDE_MAX`-th frame, never denser than every :data:`DLIB_STRIDE_MIN`-th.
DLIB_PROBES = 60
DLIB_STRIDE_MIN = 2
DLIB_STRIDE_MAX = 10
#: The stride when the video's length is not known.
DLIB_STRIDE = 5
#: Margin around a face box (x its size) in the crop sent to the dlib process: room for the
#: aligned chip's padding and a tilted head.
CROP_MARGIN = 0.6
#: A YuNet face belongs to a tracked place when this much of the smaller box overlaps.
PLACE_OVERLAP = 0.3

#: The gate flags a face within this distance above a recogniser's threshold too: it judges
#: the rendered frame, while an audit of the encoded file reads a small face closer to the
#: patient (README, the release gate: the gap measured; the file is then audited too).
JUDGE_MARGIN = 0.05
#: A track whose last dlib distance came under this is judged by dlib on every frame, whatever
#: the stride: SFace does not raise the alarm on such faces, and their neighbours would pass.
DLIB_SUSPECT_DISTANCE = 0.7


def dlib_stride_for(n_frames: int | None) -> int:
    """dlib's stride for a video of ``n_frames``: enough probes for its lineup, no more.

    A lineup's rank-1 figure on a handful of probes cannot tell a leak from chance, so a short
    clip is described densely; a long one has probes to spare, and each costs a full ResNet
    pass. SFace judges every frame whatever this stride.
    """
    if not n_frames or n_frames <= 0:
        return DLIB_STRIDE
    return int(np.clip(n_frames // DLIB_PROBES, DLIB_STRIDE_MIN, DLIB_STRIDE_MAX))


@dataclass
class Place:
    """Where the pipeline saw a face in this frame: a track's box and, if any, its mesh."""

    track_id: int
    box: np.ndarray  # (4,) x0, y0, x1, y1
    score: float
    landmarks: np.ndarray | None = None  # (478, 2|3) face mesh


@dataclass
class JudgedFace:
    """One output face with its descriptors and the recognisers' hits (empty: not the patient)."""

    record: FaceRecord
    hits: list[LeakHit]
    track_id: int | None  # the tracked place it belongs to, None for a face only YuNet saw
    face: IndependentFace = field(repr=False)


@dataclass
class FrameJudgement:
    """One frame as judged: the scan the audit keeps, and each face's verdict.

    From :meth:`StreamAuditor.judge` it may still wait for dlib (``settled`` False: no hits
    yet); :meth:`StreamAuditor.settle` completes it.
    """

    scan: FrameScan
    faces: list[JudgedFace]
    settled: bool = True
    places: list[Place] = field(default_factory=list, repr=False)
    enrolled: FaceRecord | None = field(default=None, repr=False)
    dlib_jobs: list[Future | None] = field(default_factory=list, repr=False)

    @property
    def flagged(self) -> list[JudgedFace]:
        return [f for f in self.faces if f.hits]

    def ready(self) -> bool:
        """True when settling it will not wait for dlib."""
        return all(j is None or j.done() for j in self.dlib_jobs)


def _crop_for(image: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The face and a margin around it, and the box in the crop's coordinates."""
    h, w = image.shape[:2]
    m = CROP_MARGIN * max(box[2] - box[0], box[3] - box[1])
    x0, y0 = int(max(0, box[0] - m)), int(max(0, box[1] - m))
    x1, y1 = int(min(w, box[2] + m)), int(min(h, box[3] + m))
    crop = np.ascontiguousarray(image[y0:y1, x0:x1])
    return crop, np.asarray(box, dtype=np.float64) - (x0, y0, x0, y0)


# --------------------------------------------------------------------------------------------
# The auditor
# --------------------------------------------------------------------------------------------


class StreamAuditor:
    """Judges output frames one by one as ``deidentify`` makes them; see the module docstring.

    Use as a context manager (it owns a child process). ``judge`` one frame, ``rejudge`` one
    face after the gate changed it, ``commit`` the frame as written, ``result`` at the end.
    """

    def __init__(
        self,
        original: str | Path,
        deidentified: str | Path,
        donors: list[tuple[str, np.ndarray]] | None = None,
        gallery: str | Path | None = None,
        dlib_stride: int = DLIB_STRIDE,
        margin: float = JUDGE_MARGIN,
        process: AuditProcess | None = None,
    ) -> None:
        self.original, self.deidentified = str(original), str(deidentified)
        # dlib's side: a process the caller started (and will close), else one of its own.
        self._process, self._own_process = process, None
        self.dlib_stride = dlib_stride
        self.margin = margin
        self._dlib_suspects: set[int] = set()  # tracks judged by dlib on every frame
        self.near_readings = 0  # dlib readings under DLIB_SUSPECT_DISTANCE: the file is audited
        self.sface = FaceAnalyser().sface
        # YuNet of its own for :meth:`find`, which runs on another thread than :meth:`judge`.
        self._finder = SFaceRecogniser(self.sface.score_threshold)
        self.judge_ = Judge()
        self._donors = donors or []
        self._gallery_arg = None if gallery is None else str(gallery)
        self._pool: ProcessPoolExecutor | ThreadPoolExecutor | None = None
        self._gallery_job: Future | None = None
        self._pending: list[FrameScan] = []  # scans judged before the gallery was ready
        self._sum: dict[str, np.ndarray] | None = None
        self._n_enrolled = 0
        self._n_dlib = 0  # enrolments whose dlib descriptor has arrived
        # Enrolments whose dlib descriptor is still being computed: (frame, record, job).
        self._enrolling: deque[tuple[int, FaceRecord, Future]] = deque()
        self._last_enrol = -(10**9)
        self.enrolled_frames: list[int] = []
        self.gallery: Gallery | None = None
        self.busy_s = 0.0
        self.find_s = 0.0
        self.dlib_wait_s = 0.0  # of busy_s: waiting for the dlib process's answers
        self.dlib_calls = 0
        self.dlib_cpu_s = 0.0
        self.gallery_cpu_s = 0.0

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> StreamAuditor:
        if self._process is None:
            self._own_process = AuditProcess()
            self._process = self._own_process.__enter__()
        self._pool = self._process.pool
        self._gallery_job = self._pool.submit(
            gallery_and_donors, self._gallery_arg, list(self._donors)
        )
        return self

    def __exit__(self, *exc) -> None:
        if self._own_process is not None:
            self._own_process.__exit__(*exc)
            self._own_process = None
        self._pool = None

    # -- the patient -----------------------------------------------------------------------
    @property
    def template(self) -> dict[str, np.ndarray] | None:
        """The patient's mean descriptors, from the enrolments whose dlib part has arrived."""
        if self._sum is None or self._n_dlib == 0:
            return None
        return {"dlib": self._sum["dlib"] / self._n_dlib, "sface": self._sface_template()}

    @property
    def dlib_enrolments(self) -> int:
        """How many of the patient's original faces the template holds dlib's descriptor of."""
        return self._n_dlib

    def donor_descriptors(self) -> dict[str, dict[str, np.ndarray]]:
        """Each donor's descriptors by name, as the audit's lineup holds them."""
        _, donors, _ = self._gallery_job.result()
        return {n: {"dlib": r.dlib, "sface": r.sface} for n, r in donors.items()}

    def _sface_template(self) -> np.ndarray | None:
        """SFace's part of the template, which is known as soon as a face is enrolled."""
        if self._sum is None:
            return None
        return self._sum["sface"] / (np.linalg.norm(self._sum["sface"]) + 1e-12)

    def _wants_enrolment(self, index: int) -> bool:
        if self._sum is None:
            return True
        gap = ENROL_GAP if self._n_enrolled < ENROL_FIRST else ENROL_SPREAD
        return index - self._last_enrol >= gap

    def _enrol(self, index: int, original: np.ndarray, places: list[Place]) -> FaceRecord | None:
        """The patient's face in this original frame, described and added to the template.

        YuNet's most confident face, as the after-the-fact audit takes it (not the largest: a
        raised hand can be taken for a large face); the mesh's place when YuNet finds none.
        """
        faces = self._detect(original)
        face = max(faces, key=lambda f: f.score) if faces else None
        if face is None:
            mesh = [p for p in places if p.landmarks is not None]
            if not mesh:
                return None
            best = max(mesh, key=lambda p: p.score)
            face = IndependentFace(best.box, best.score, five_points_from_mesh(best.landmarks))
        job = self._submit_dlib(original, face)
        record = FaceRecord(np.asarray(face.box, float), ("yunet",))
        record.sface = self.sface.descriptor(original, face)
        if self._sum is None:
            self._sum = {"dlib": np.zeros(128), "sface": np.zeros_like(record.sface)}
        self._sum["sface"] += record.sface
        self._enrolling.append((index, record, job))  # dlib's part: in :meth:`_enrolled_up_to`
        self._n_enrolled += 1
        self._last_enrol = index
        self.enrolled_frames.append(index)
        return record

    def _enrolled_up_to(self, index: int) -> None:
        """Add the dlib descriptors of every enrolment from frames up to ``index``."""
        while self._enrolling and self._enrolling[0][0] <= index:
            _, record, job = self._enrolling.popleft()
            record.dlib = self._dlib_result(job)
            self._sum["dlib"] += record.dlib
            self._n_dlib += 1
        self.judge_.template = self.template

    # -- faces -----------------------------------------------------------------------------
    def find(self, output: np.ndarray) -> list[IndependentFace]:
        """YuNet's faces on one output frame, for :meth:`judge` (its ``found``).

        Safe to call on a thread beside the one that judges (it has its own detector): the
        search of frame N then overlaps the description of frame N-1, so neither the renderer
        nor the encoder waits for the two in a row.
        """
        t0 = time.perf_counter()
        try:
            return self._detect(output, self._finder)
        finally:
            self.find_s += time.perf_counter() - t0

    def _detect(
        self, image: np.ndarray, detector: SFaceRecogniser | None = None
    ) -> list[IndependentFace]:
        """YuNet's faces on the image shrunk to :data:`DETECT_SIDE`, in full-size pixels."""
        h, w = image.shape[:2]
        scale = min(1.0, DETECT_SIDE / max(h, w))
        small = (
            image
            if scale == 1.0
            else cv2.resize(
                image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA
            )
        )
        faces = (detector or self.sface)._detect_at(small)
        if scale == 1.0:
            return faces
        return [IndependentFace(f.box / scale, f.score, f.landmarks / scale) for f in faces]

    def _submit_dlib(self, image: np.ndarray, face: IndependentFace) -> Future:
        crop, box = _crop_for(image, _hog_like_box(face))
        return self._pool.submit(dlib_descriptor, crop, box)

    def _dlib_result(self, job: Future) -> np.ndarray:
        t0 = time.perf_counter()
        desc, cpu = job.result()
        self.dlib_wait_s += time.perf_counter() - t0
        self.dlib_calls += 1
        self.dlib_cpu_s += cpu
        return desc

    def _faces_at(
        self,
        image: np.ndarray,
        places: list[Place],
        found: list[IndependentFace] | None = None,
    ) -> list[tuple[IndependentFace, tuple[str, ...], int | None]]:
        """Every face to judge: YuNet's (``found``, else searched now; with the place each
        belongs to) and tracked places YuNet did not find, aligned by the mesh."""
        out: list[tuple[IndependentFace, tuple[str, ...], int | None]] = []
        claimed: set[int] = set()
        for f in self._detect(image) if found is None else found:
            owner = None
            for p in places:
                if p.track_id not in claimed and overlap_of_smaller(f.box, p.box) >= PLACE_OVERLAP:
                    owner = p.track_id
                    claimed.add(owner)
                    break
            out.append((f, ("yunet",), owner))
        for p in places:
            if p.track_id not in claimed and p.landmarks is not None:
                five = five_points_from_mesh(p.landmarks)
                out.append((IndependentFace(p.box, p.score, five), ("track",), p.track_id))
        return out

    def _describe(
        self, image: np.ndarray, index: int, found: list
    ) -> tuple[list[tuple[FaceRecord, IndependentFace, int | None]], list[Future | None]]:
        """SFace's descriptor of each face, and dlib's job where it is wanted: every
        ``dlib_stride``-th frame, any face SFace finds close to the patient, and every face
        while there is no template yet."""
        template = self._sface_template()
        records, jobs = [], []
        for face, detectors, owner in found:
            rec = FaceRecord(np.asarray(face.box, float), detectors)
            rec.sface = self.sface.descriptor(image, face)
            want = (
                template is None
                or index % self.dlib_stride == 0
                or distance("sface", rec.sface, template) < SFACE_SUSPECT_DISTANCE
                or owner in self._dlib_suspects
            )
            jobs.append(self._submit_dlib(image, face) if want else None)
            records.append((rec, face, owner))
        return records, jobs

    # -- the frame -------------------------------------------------------------------------
    def judge(
        self,
        index: int,
        time_s: float,
        original: np.ndarray,
        output: np.ndarray,
        places: list[Place],
        found: list[IndependentFace] | None = None,
    ) -> FrameJudgement:
        """Start judging one output frame (enrolling from ``original`` first): its faces found
        (``found``: :meth:`find`'s answer for ``output``, else searched now) and described by
        SFace now, dlib's descriptors on their way. :meth:`settle` it.

        Frames are judged in order; dlib works in its process meanwhile, so the caller can
        judge the next frames before settling this one.
        """
        t0 = time.perf_counter()
        found = self._faces_at(output, places, found)
        same_frame = None
        if (places or found) and self._wants_enrolment(index):
            same_frame = self._enrol(index, original, places)
        described, jobs = self._describe(output, index, found)
        judged = [JudgedFace(rec, [], owner, face) for rec, face, owner in described]
        scan = FrameScan(index, time_s, True, None, [j.record for j in judged])
        self.busy_s += time.perf_counter() - t0
        return FrameJudgement(scan, judged, False, places, same_frame, jobs)

    def _note_suspects(self, faces: list[JudgedFace], patient: np.ndarray) -> None:
        """Keep the tracks whose last dlib reading was near the patient (every frame judged)."""
        for f in (f for f in faces if f.track_id is not None and f.record.dlib is not None):
            near = distance("dlib", f.record.dlib, patient) < DLIB_SUSPECT_DISTANCE
            (self._dlib_suspects.add if near else self._dlib_suspects.discard)(f.track_id)
            self.near_readings += near

    def settle(self, judgement: FrameJudgement) -> FrameJudgement:
        """Complete a judgement from :meth:`judge`: dlib's descriptors in, each face's hits
        found against the template (which now holds every enrolment up to this frame)."""
        if judgement.settled:
            return judgement
        t0 = time.perf_counter()
        index, time_s = judgement.scan.index, judgement.scan.time_s
        self._enrolled_up_to(index)
        for face, job in zip(judgement.faces, judgement.dlib_jobs, strict=True):
            if job is not None:
                face.record.dlib = self._dlib_result(job)
        orig = self._original_record(judgement.places, judgement.enrolled)
        template = self.template
        if template is not None:
            self._note_suspects(judgement.faces, template["dlib"])
        for face in judgement.faces:
            if template is not None:
                scan = FrameScan(index, time_s, True, orig, [face.record])
                face.hits = leaks_in(scan, template, self.margin)
        scan = FrameScan(index, time_s, True, orig, [f.record for f in judgement.faces])
        self.busy_s += time.perf_counter() - t0
        return FrameJudgement(scan, judgement.faces)

    def rejudge(
        self, judgement: FrameJudgement, output: np.ndarray, place: Place
    ) -> JudgedFace | None:
        """Judge one face again after the gate changed it (same place, new pixels).

        dlib runs whatever the stride: the face was flagged once, so both recognisers must
        clear it. None when no face is found there any more (YuNet, or the mesh if any).
        """
        t0 = time.perf_counter()
        scan = judgement.scan
        found = [
            f
            for f in self._faces_at(output, [place])
            if f[2] == place.track_id and overlap_of_smaller(f[0].box, place.box) > 0
        ]
        if not found and place.landmarks is not None:
            five = five_points_from_mesh(place.landmarks)
            found = [(IndependentFace(place.box, place.score, five), ("track",), place.track_id)]
        if not found:
            self.busy_s += time.perf_counter() - t0
            return None
        face, detectors, owner = found[0]
        rec = FaceRecord(np.asarray(face.box, float), detectors)
        rec.sface = self.sface.descriptor(output, face)
        rec.dlib = self._dlib_result(self._submit_dlib(output, face))
        probe = FrameScan(scan.index, scan.time_s, True, scan.original, [rec])
        hits = leaks_in(probe, self.template, self.margin)
        self.busy_s += time.perf_counter() - t0
        return JudgedFace(rec, hits, owner, face)

    def _original_record(
        self, places: list[Place], same_frame: FaceRecord | None
    ) -> FaceRecord | None:
        """The patient's place in the original: the described face, else the most confident
        track with the template as its descriptors (so verification reads "as the patient")."""
        if same_frame is not None:
            return same_frame
        if not places or self.template is None:
            return None
        best = max(places, key=lambda p: (p.landmarks is not None, p.score))
        t = self.judge_.template
        rec = FaceRecord(np.asarray(best.box, float), ("track",))
        rec.dlib, rec.sface = t["dlib"], t["sface"]
        return rec

    def commit(self, judgement: FrameJudgement, faces: list[JudgedFace]) -> None:
        """Record the frame as written (``faces``: the verdicts after the gate)."""
        scan = FrameScan(
            judgement.scan.index,
            judgement.scan.time_s,
            True,
            judgement.scan.original,
            [f.record for f in faces],
        )
        hits = [h for f in faces for h in f.hits]
        if self.gallery is None:
            if self._gallery_job is not None and self._gallery_job.done():
                self._take_gallery()
            else:
                # Early frames wait for the lineup (built in the child at start-up); each
                # scan is a few descriptors, and the wait is a few seconds at most.
                self._pending.append((scan, hits, self.judge_.template))
                return
        self.judge_.add(scan, hits)

    def _take_gallery(self) -> None:
        gal, donors, cpu = self._gallery_job.result()
        self.gallery_cpu_s = cpu
        self.gallery = gal
        template = self.judge_.template
        judge = Judge(template, gal, donors, list(donors))
        for scan, hits, t in self._pending:
            judge.template = t
            judge.add(scan, hits)
        judge.template = template
        self._pending.clear()
        self.judge_ = judge

    def result(self, frames: int) -> AuditResult:
        """The audit of every committed frame, as :func:`medswap.evaluate.privacy.audit` gives."""
        if self.gallery is None:
            self._take_gallery()
        j = self.judge_
        result = AuditResult(
            original=self.original,
            deidentified=self.deidentified,
            frames=frames,
            stride=1,
            frames_with_original_face=j.frames_with_original_face,
            nothing_to_protect=not j.frames_with_original_face and not j.leaks,
        )
        if not result.nothing_to_protect:
            result.enrolment = {
                "frames": self.enrolled_frames[:ENROL_FIRST],
                "n_frames": len(self.enrolled_frames),
                "recogniser_template": "running mean descriptor of the original faces so far",
            }
            fill_result(result, j, self.gallery)
        result.seconds = self.busy_s
        return result

    def stats(self) -> dict:
        """What the audit cost, for the report's per-stage times."""
        return {
            "busy_s": round(self.busy_s, 3),
            "find_busy_s": round(self.find_s, 3),
            "dlib_wait_s": round(self.dlib_wait_s, 3),
            "dlib_descriptors": self.dlib_calls,
            "dlib_cpu_s": round(self.dlib_cpu_s, 3),
            "dlib_stride": self.dlib_stride,
            # dlib readings under DLIB_SUSPECT_DISTANCE: when any, the written file is audited too
            "near_readings": self.near_readings,
            "gallery_cpu_s": round(self.gallery_cpu_s, 3),
            "detect_side": DETECT_SIDE,
        }
