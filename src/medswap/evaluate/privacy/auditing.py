"""The public entry point: :func:`audit` of one de-identified video against its original.

It checks the arguments, scans both videos (:mod:`.scanning`), enrols the patient, and hands
the scans to the judge (:mod:`.judge`) and returns the result; it writes no file (the
command line does, before ``--strict`` fails, so a failed audit still leaves its evidence).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from medswap.errors import PrivacyError, UsageError
from medswap.evaluate.privacy.gallery import (
    Gallery,
    _identity,
    default_gallery,
    load_donors,
    load_gallery,
)
from medswap.evaluate.privacy.judge import Judge
from medswap.evaluate.privacy.recognisers import (
    RECOGNISERS,
    FaceAnalyser,
    FaceRecord,
    mean_descriptor,
)
from medswap.evaluate.privacy.result import AuditResult
from medswap.evaluate.privacy.scanning import (
    FrameScan,
    OriginalFaces,
    check_alignment,
    enrol,
    scan,
    scan_parallel,
)
from medswap.models import AUDIT_MODELS
from medswap.models import require as require_models
from medswap.video import VideoInfo, count_frames, probe

log = logging.getLogger(__name__)


def audit(
    original: str | Path,
    deidentified: str | Path,
    gallery: str | Path | Gallery | None = None,
    strict: bool = False,
    max_frames: int | None = None,
    donors: Sequence[object] | None = None,
    stride: int = 1,
    enrol_frames: int = 8,
    workers: int = 1,
    original_faces: OriginalFaces | None = None,
    grid_only: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> AuditResult:
    """Audit a de-identified video against its original; see the module docstring.

    ``stride`` > 1 verifies (and runs dlib on) every ``stride``-th frame only; the leak audit
    still detects faces and runs SFace on every output frame. It writes nothing: the caller
    keeps the evidence (``medswap audit -o`` writes the JSON before ``--strict`` fails). ``strict``
    raises :class:`PrivacyError` when any output frame shows the patient. ``workers`` > 1 splits
    the pass over that many spawned processes (each starts in a few seconds and loads its own
    models; worth it only on idle cores, so one by default). ``original_faces`` (from
    :func:`scan_original` with the same ``stride`` and ``max_frames``) skips the analysis of
    the original, for audits of many outputs of one original. ``grid_only`` analyses only
    every ``stride``-th frame (no leak scan in between): a sample, for comparisons and sweeps.
    ``progress(done, total)`` is called as frames are scanned (the audit is most of a default
    ``deidentify`` run's time, so the CLI shows it).
    """
    t0 = time.perf_counter()
    _checked_arguments(stride, workers, max_frames)
    require_models(AUDIT_MODELS)  # a bad model file stops the audit before its first frame
    orig_info, out_info = probe(original), probe(deidentified)
    check_alignment(orig_info, out_info, max_frames)
    log.debug("audit: enrolling the patient from up to %d frames of the original", enrol_frames)
    analyser = FaceAnalyser()
    donor_records = load_donors(donors, analyser)
    n_hint = _frames_expected(orig_info, original, max_frames)
    enrolled, template, scans = _enrol_and_scan(
        analyser,
        orig_info,
        out_info,
        n_hint,
        original_faces,
        enrol_frames=enrol_frames,
        stride=stride,
        max_frames=max_frames,
        workers=workers,
        grid_only=grid_only,
        progress=progress,
    )

    with_face = [s for s in scans if s.original is not None]
    result = AuditResult(
        original=str(original),
        deidentified=str(deidentified),
        frames=len(scans),
        stride=stride,
        frames_with_original_face=len(with_face),
        nothing_to_protect=not with_face,
    )
    if with_face:
        if template is None:
            enrolled = _enrol_from_pass(with_face, enrol_frames)
            template = _template(list(enrolled.values()))
        result.enrolment = {"frames": sorted(enrolled), "recogniser_template": "mean descriptor"}
        lineup = _lineup_gallery(gallery, analyser, donor_records)
        judge = Judge(template, lineup, donor_records, list(donor_records))
        for s in scans:
            judge.add(s)
        fill_result(result, judge, lineup)
    result.seconds = time.perf_counter() - t0
    log.debug("%s", result.summary())
    if strict and not result.clean:
        err = PrivacyError(result.failure_message(), deidentified)
        err.audit = result
        raise err
    return result


#: A frame count too large to be real: the original's length is not known before the pass.
_UNKNOWN_LENGTH = 10**9


def _checked_arguments(stride: int, workers: int, max_frames: int | None) -> None:
    """Refuse unusable settings before any model is loaded."""
    if stride < 1:
        raise UsageError(f"--stride must be 1 or more, got {stride}")
    if workers < 1:
        raise UsageError(f"--workers must be 1 or more, got {workers}")
    if max_frames is not None and max_frames < 1:
        raise UsageError(f"--max-frames must be 1 or more, got {max_frames}")


def _frames_expected(info: VideoInfo, original: str | Path, max_frames: int | None) -> int:
    """How many frames the audit will see, or :data:`_UNKNOWN_LENGTH` when it cannot tell.

    A header without a frame count (Matroska, WebM) would leave enrolment to the pass;
    counting by decoding is cheap beside the audit, and gives every container one path.
    """
    n_hint = info.n_frames or (count_frames(original) if max_frames is None else 0)
    n_hint = n_hint or _UNKNOWN_LENGTH
    if max_frames is not None:
        n_hint = min(n_hint, max_frames)
    return n_hint


def _enrol_and_scan(
    analyser: FaceAnalyser,
    orig_info: VideoInfo,
    out_info: VideoInfo,
    n_hint: int,
    original_faces: OriginalFaces | None,
    *,
    enrol_frames: int,
    stride: int,
    max_frames: int | None,
    workers: int,
    grid_only: bool,
    progress: Callable[[int, int], None] | None,
) -> tuple[dict[int, FaceRecord], dict[str, np.ndarray] | None, list[FrameScan]]:
    """The patient enrolled from the original, its template, and both videos scanned once.

    With ``original_faces`` the original's faces (and enrolment) found earlier are reused and
    the pass runs here; otherwise the patient is enrolled from ``enrol_frames`` frames first,
    and the pass runs over ``workers`` processes when there are several and the length is
    known (the template is None when no face was found: the caller enrols from the pass).
    """
    if original_faces is not None:
        _check_made_alike(original_faces, stride, max_frames, grid_only)
        enrolled = dict(original_faces.enrolled)
        known = original_faces.faces
    else:
        enrolled = (
            enrol(analyser, orig_info, n_hint, enrol_frames, stride)
            if n_hint < _UNKNOWN_LENGTH
            else {}
        )
        known = enrolled
    template = _template(list(enrolled.values()))
    parallel = original_faces is None and workers > 1 and not grid_only
    if parallel and n_hint < _UNKNOWN_LENGTH:
        scans = scan_parallel(
            orig_info, out_info, template, n_hint, workers, stride, max_frames, known
        )
        if progress is not None:  # the workers report nothing on the way
            progress(len(scans), len(scans))
    else:
        scans = scan(
            analyser,
            orig_info,
            out_info,
            template,
            stride,
            max_frames,
            known,
            grid_only=grid_only,
            progress=progress,
            total=n_hint if n_hint < _UNKNOWN_LENGTH else 0,
        )
    return enrolled, template, scans


def _check_made_alike(
    original_faces: OriginalFaces, stride: int, max_frames: int | None, grid_only: bool
) -> None:
    """Refuse faces of the original found with other settings than this audit's."""
    made = (original_faces.stride, original_faces.max_frames, original_faces.grid_only)
    if made != (stride, max_frames, grid_only):
        raise UsageError(
            f"original_faces were found with (stride, max_frames, grid_only) {made}, "
            f"not {(stride, max_frames, grid_only)}"
        )


def _enrol_from_pass(with_face: list[FrameScan], enrol_frames: int) -> dict[int, FaceRecord]:
    """The patient enrolled from the pass itself, up to ``enrol_frames`` faces spread over it.

    For when the sampled frames missed the face, or the header gave no frame count
    (Matroska, WebM). Faces that got both descriptors (on the stride grid) are preferred.
    """
    both = [s for s in with_face if s.original.dlib is not None] or with_face
    picks = np.linspace(0, len(both) - 1, min(enrol_frames, len(both)))
    return {both[i].index: both[i].original for i in picks.round().astype(int)}


def _lineup_gallery(
    gallery: str | Path | Gallery | None,
    analyser: FaceAnalyser,
    donor_records: dict[str, FaceRecord],
) -> Gallery:
    """The people the patient is ranked among: the gallery, with each donor added to it."""
    lineup = _resolve_gallery(gallery, analyser)
    for name, rec in donor_records.items():
        lineup = lineup.with_identity(_identity(name, [rec]))
    return lineup


def fill_result(result: AuditResult, judge: Judge, gallery: Gallery) -> None:
    """Put a judge's verdict into an audit result (both audit paths end here)."""
    result.verification, result.frames_no_face_in_output = judge.verification()
    result.leaks = judge.leaks
    result.gallery = gallery.to_json()
    result.identification = judge.identification()
    result.donors = judge.donor_dominance()


def _template(records: list[FaceRecord]) -> dict[str, np.ndarray] | None:
    if not records:
        return None
    return {r: mean_descriptor(r, [getattr(x, r) for x in records]) for r in RECOGNISERS}


def _resolve_gallery(gallery: str | Path | Gallery | None, analyser: FaceAnalyser) -> Gallery:
    if isinstance(gallery, Gallery):
        return gallery
    if gallery is None:
        return default_gallery()
    return load_gallery(gallery, analyser)
