"""The pass over both videos: frame pairs, the patient's face, every output face described.

This is the costly part of the audit (detection and descriptors on every frame); what it
collects (:class:`FrameScan`) is judged afterwards by pure code (:mod:`.judge`), so the
judgement can be re-run without re-detecting a face.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medswap.errors import AlignmentError, UsageError
from medswap.evaluate.privacy.recognisers import FaceAnalyser, FaceRecord, distance
from medswap.video import Frame, VideoInfo, probe, read_frames

log = logging.getLogger(__name__)

#: When dlib is not run on every frame (``stride`` > 1), an output face off the stride grid
#: still gets dlib's descriptor if SFace finds it this close to the patient: well above
#: SFace's own threshold, so that a face only dlib would recognise is rarely skipped.
SFACE_SUSPECT_DISTANCE = 0.8


@dataclass
class FrameScan:
    """What one frame pair showed: the patient's face in the original, every output face."""

    index: int
    time_s: float
    on_grid: bool  # on the stride grid: dlib ran on the original and on every output face
    original: FaceRecord | None
    outputs: list[FaceRecord]


def check_alignment(orig: VideoInfo, out: VideoInfo, max_frames: int | None = None) -> None:
    """Refuse an output that cannot be a frame-by-frame copy of the original.

    With ``max_frames`` the output may be a copy of the original's first ``max_frames`` frames
    (as ``deidentify(..., max_frames=N)`` writes).
    """
    if orig.display_size != out.display_size:
        ow, oh = orig.display_size
        dw, dh = out.display_size
        raise AlignmentError(
            f"frames are {dw}x{dh} but the original {Path(orig.path).name} has {ow}x{oh}: "
            "not derived from it",
            out.path,
        )
    expected = orig.n_frames
    if expected and max_frames is not None and out.n_frames and out.n_frames < expected:
        expected = min(expected, max_frames)
    if expected and out.n_frames and expected != out.n_frames:
        raise AlignmentError(
            f"has {out.n_frames} frames but the original {Path(orig.path).name} has "
            f"{expected}: not derived from it",
            out.path,
        )


def paired_frames(
    orig: VideoInfo, out: VideoInfo, max_frames: int | None = None
) -> Iterator[tuple[Frame, Frame]]:
    """Both videos frame by frame; :class:`AlignmentError` if one ends before the other."""
    a_it = read_frames(orig.path, orig, max_frames=max_frames)
    b_it = read_frames(out.path, out, max_frames=max_frames)
    n = 0
    while True:
        a, b = next(a_it, None), next(b_it, None)
        if a is None and b is None:
            return
        if a is None or b is None:
            rest = sum(1 for _ in (b_it if a is None else a_it)) + 1
            n_a, n_b = (n, n + rest) if a is None else (n + rest, n)
            raise AlignmentError(
                f"has {n_b} frames but the original {Path(orig.path).name} has {n_a}: "
                "not derived from it",
                out.path,
            )
        yield a, b
        n += 1


def _patient_face(
    analyser: FaceAnalyser, image: np.ndarray, want_dlib: bool = True
) -> FaceRecord | None:
    """The patient's face in an original frame: YuNet's most confident (HOG's largest if none).

    Not YuNet's largest: a hand raised toward the camera can be taken for a large, low-score
    face (hand_open_close.mp4, frame 24: a 191x384 px box). The output's hand is the
    patient's own, untouched, so it "matched" that original "face" and was listed as a leak.
    """
    pairs = analyser.detect(image, hog=False)
    if pairs:
        best = max(pairs, key=lambda p: p[0].score if p[0] is not None else -1.0)
        return analyser.describe(image, best, want_dlib)
    pairs = analyser.detect(image, hog=True)
    return analyser.describe(image, pairs[0], want_dlib) if pairs else None


def enrol(
    analyser: FaceAnalyser, info: VideoInfo, n_frames: int, k: int, stride: int
) -> dict[int, FaceRecord]:
    """The patient's face in ``k`` frames spread over the clip (on the stride grid)."""
    grid = np.arange(0, n_frames, stride)
    if grid.size == 0:
        return {}
    want = set(
        np.unique(
            grid[np.linspace(0, grid.size - 1, min(k, grid.size)).round().astype(int)]
        ).tolist()
    )
    found: dict[int, FaceRecord] = {}
    for frame in read_frames(info.path, info, max_frames=max(want) + 1):
        if frame.index in want:
            record = _patient_face(analyser, frame.image)
            if record is not None:
                found[frame.index] = record
    return found


def scan(
    analyser: FaceAnalyser,
    orig: VideoInfo,
    out: VideoInfo,
    template: dict[str, np.ndarray] | None,
    stride: int = 1,
    max_frames: int | None = None,
    known: dict[int, FaceRecord] | None = None,
    start: int = 0,
    stop: int | None = None,
    grid_only: bool = False,
    progress: Callable[[int, int], None] | None = None,
    total: int = 0,
) -> list[FrameScan]:
    """One pass over both videos: the patient's face and every output face, every frame.

    Only frames ``start <= index < stop`` are analysed (the others are decoded and skipped),
    so that worker processes can share a clip; the chunk that runs to the end also checks
    that both videos end together.

    Detection (YuNet and HOG) and SFace run on every frame. dlib's descriptor, about ten times
    dearer, runs on every ``stride``-th frame; off that grid it runs only for output faces that
    SFace already finds near the patient (:data:`SFACE_SUSPECT_DISTANCE`), or for every face
    while there is no template. ``grid_only`` skips the frames off the stride grid entirely
    (a sample, for sweeps: no leak scan between grid frames). ``progress(done, total)`` is
    called after each frame (``total`` 0 when unknown).
    """
    known = known or {}
    scans = []
    t0 = time.perf_counter()
    for a, b in paired_frames(orig, out, max_frames):
        if a.index < start:
            continue
        if stop is not None and a.index >= stop:
            break
        on_grid = a.index % stride == 0
        if grid_only and not on_grid:
            continue
        if a.index in known:  # a face (or None: no face) found by an earlier pass
            original = known[a.index]
        else:
            original = _patient_face(analyser, a.image, want_dlib=on_grid)
        outputs = []
        for pair in analyser.detect(b.image):
            want_dlib = on_grid or template is None
            record = analyser.describe(b.image, pair, want_dlib=want_dlib)
            if not want_dlib and (
                distance("sface", record.sface, template["sface"]) < SFACE_SUSPECT_DISTANCE
            ):
                analyser.add_dlib(b.image, record, pair)
            outputs.append(record)
        scans.append(FrameScan(a.index, a.time_s, on_grid, original, outputs))
        done = a.index + 1 - start
        if progress is not None:
            progress(done, total)
        if done % 50 == 0:
            log.info("audit: frame %d, %.1f fps", a.index, done / (time.perf_counter() - t0))
    return scans


def _scan_chunk(args: tuple) -> list[FrameScan]:
    """Worker-process entry: a fresh analyser scans one contiguous range of frames."""
    orig_path, out_path, template, stride, max_frames, known, start, stop = args
    orig, out = probe(orig_path), probe(out_path)
    return scan(FaceAnalyser(), orig, out, template, stride, max_frames, known, start, stop)


def scan_parallel(
    orig: VideoInfo,
    out: VideoInfo,
    template: dict[str, np.ndarray] | None,
    n_frames: int,
    workers: int,
    stride: int = 1,
    max_frames: int | None = None,
    known: dict[int, FaceRecord] | None = None,
) -> list[FrameScan]:
    """:func:`scan` split into contiguous chunks over worker processes.

    dlib's descriptor runs on one core and dominates the audit, so two processes on two cores
    nearly halve the wall time. Processes are spawned (not forked), because a fork would copy
    OpenCV's and the decoder's threads in an unusable state.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    bounds = np.linspace(0, n_frames, workers + 1).round().astype(int)
    jobs = []
    for i in range(workers):
        start, stop = int(bounds[i]), int(bounds[i + 1])
        last = i == workers - 1
        chunk_known = {k: v for k, v in (known or {}).items() if start <= k < stop}
        jobs.append(
            (
                orig.path,
                out.path,
                template,
                stride,
                max_frames,
                chunk_known,
                start,
                None if last else stop,
            )
        )
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        parts = list(pool.map(_scan_chunk, jobs))
    return [s for part in parts for s in part]


@dataclass
class OriginalFaces:
    """The patient's face in every frame of an original, and the enrolment: computed once.

    A sweep audits many outputs of one original; with this, each audit analyses only the
    output's frames. Valid for the ``stride`` and ``max_frames`` it was made with.
    """

    path: str
    stride: int
    max_frames: int | None
    enrolled: dict[int, FaceRecord]
    faces: dict[int, FaceRecord | None]  # frame index -> the patient's face (None: no face)
    grid_only: bool = False


def scan_original(
    original: str | Path,
    max_frames: int | None = None,
    stride: int = 1,
    enrol_frames: int = 8,
    analyser: FaceAnalyser | None = None,
    grid_only: bool = False,
) -> OriginalFaces:
    """Find and describe the patient's face in every frame of ``original`` (see ``audit``).

    ``grid_only``: only in the frames on the stride grid (for audits with ``grid_only``).
    """
    if stride < 1:
        raise UsageError(f"--stride must be 1 or more, got {stride}")
    analyser = analyser or FaceAnalyser()
    info = probe(original)
    n_hint = info.n_frames or 10**9
    if max_frames is not None:
        n_hint = min(n_hint, max_frames)
    enrolled = enrol(analyser, info, n_hint, enrol_frames, stride) if n_hint < 10**9 else {}
    faces: dict[int, FaceRecord | None] = {}
    for frame in read_frames(info.path, info, max_frames=max_frames):
        if grid_only and frame.index % stride:
            continue
        if frame.index in enrolled:
            faces[frame.index] = enrolled[frame.index]
        else:
            faces[frame.index] = _patient_face(
                analyser, frame.image, want_dlib=frame.index % stride == 0
            )
    return OriginalFaces(str(original), stride, max_frames, enrolled, faces, grid_only)
