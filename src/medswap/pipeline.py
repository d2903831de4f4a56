"""De-identify one video: decode, find and track faces, swap or hide each, encode, report.

The privacy rule is enforced here, in one place: every face region that the tracker reports in
a frame (mesh face, safety-net detection, or a track bridged over a short gap) leaves this
module swapped, obscured or (for the baseline methods) blurred / pixelated / masked. A face
that the swap cannot handle (extreme pose, too small, an error in the warp) is obscured and
flagged with the reason; it is never written as it was.
"""

from __future__ import annotations

import json
import logging
import resource
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, closing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from threadpoolctl import threadpool_limits

from medswap import video
from medswap.config import ENGINES, DeidentifyConfig
from medswap.donor_choice import (
    DonorChooser,
    fallback_donors,
    near_donor_margin,
    resolve_donors,
)
from medswap.errors import ReleaseGateError
from medswap.evaluate.stream import AuditProcess, StreamAuditor, dlib_stride_for
from medswap.faces.mesh import FaceDetector, FaceMesher, HandFinder
from medswap.faces.track import MAX_GAP, FaceTracker
from medswap.gate import DonorTooClose, ReleaseGate, Rendered, audit_of_the_file
from medswap.models import AUDIT_MODELS, DEIDENTIFY_MODELS, TEXT_MODELS
from medswap.models import require as require_models
from medswap.outputs import check_new_output, discard, json_safe, publish, stage_text
from medswap.perceive import look_ahead
from medswap.render import FaceRenderer, renderer_for
from medswap.result import DeidentifyResult, totals_of
from medswap.swap.donors import Donor, measure_fades_beside
from medswap.swap.engine import MeshSwapper, SwapSettings
from medswap.text import TextFrame, TextStage, key_frame_stride
from medswap.text.audit import TextCheckInStream
from medswap.text.models import TextDetector, TextRecogniser
from medswap.types import METHODS, FaceOutcome, FaceTrackState, FrameOutcome, TextOutcome

log = logging.getLogger(__name__)

__all__ = ["DEIDENTIFY_MODELS", "ENGINES", "METHODS", "DeidentifyResult", "deidentify"]

#: A ``(done, total)`` callback, called after each frame.
Progress = Callable[[int, int], None]


def deidentify(
    input: str | Path,
    output: str | Path,
    config: DeidentifyConfig | None = None,
    *,
    report: str | Path | None = None,
    quarantine: str | Path | None = None,
    overwrite: bool = True,
    progress: Progress | None = None,
    **options: Any,
) -> DeidentifyResult:
    """De-identify ``input`` into ``output``; the Python twin of ``medswap deidentify``.

    How is said by ``config`` (:class:`~medswap.config.DeidentifyConfig`, which documents
    every option); keyword ``options`` change single fields of it, so
    ``deidentify(a, b, method="blur")`` reads as before. Where the files go is said here:
    ``report`` is the JSON report's path, ``quarantine`` a folder to keep a refused run's video
    and report in, ``overwrite`` allows replacing existing outputs, and ``progress`` is a
    ``(done, total)`` callback; the audit runs in the same pass.

    Every face region the tracker reports leaves swapped, obscured or (for the baseline
    methods) blurred / pixelated / masked (:mod:`medswap.render`). With ``audit`` every output
    frame is judged before it is encoded (:mod:`medswap.evaluate.stream`) and the release is
    gated (:mod:`medswap.gate`): a face either recogniser takes for the patient is re-rendered
    stronger or obscured before it is written, and if the finished audit is still not clean
    nothing is published and :class:`ReleaseGateError` (exit 20) is raised. The CLI audits
    by default, the API only when asked. The learned engine refuses a video of another person.
    """
    t_start = time.perf_counter()
    cfg = (config or DeidentifyConfig()).with_options(**options)
    with ExitStack() as audit_process:
        run = _prepare(Path(input), Path(output), cfg, report, quarantine, overwrite, audit_process)
        return _run(run, t_start, progress)


def _run(run: _Run, t_start: float, progress: Progress | None) -> DeidentifyResult:
    """:func:`deidentify` once its inputs are checked: stream, audit and release, starting
    again behind the next donor while the first is too near the patient or not clean."""
    cfg = run.cfg
    retries: list[dict] = []
    fallbacks = fallback_donors(cfg, run.donors, run.learned is not None)
    while True:
        try:
            streamed = _stream(run, progress)
        except DonorTooClose as near:  # found on the first frames: the next donor at once
            donor = next(fallbacks)  # the gate measures only where there is a next
            retries.append({"donor": near.donor, "audit": str(near)})
            log.debug("%s: %s; again with %s", run.src.name, near, donor.name)  # routine: -v
            run = replace(run, donors=[donor], chooser=DonorChooser([donor], cfg.donor_seed))
            continue
        try:  # the file's audit may fail: its partial goes too
            result = _record(run, streamed, t_start)
        except BaseException:
            discard([streamed.writer.partial])
            raise
        if result.audit is None or result.audit.clean or not (donor := next(fallbacks, None)):
            break
        # Not clean behind the default donor: all again behind the next, nothing of it kept.
        why, first = result.audit.failure_message(), run.donors[0].name
        retries.append({"donor": first, "audit": why})
        log.warning("notice: %s: %s with %s; again with %s", run.src.name, why, first, donor.name)
        discard([streamed.writer.partial])
        run = replace(run, donors=[donor], chooser=DonorChooser([donor], cfg.donor_seed))
    result.donor_retries = retries
    _release(run, streamed, result)
    t = result.totals  # the CLI prints its own summary line
    counts = (run.dst.name, t.frames, t.frames_with_face, t.faces_swapped, t.faces_obscured)
    counts += (result.elapsed_s,)
    log.debug("%s: %d frames, %d with a face, %d swapped, %d obscured in %.1fs", *counts)
    return result


@dataclass
class _Run:
    """One run's inputs, checked: the video, where its outputs go, the donors and engine."""

    src: Path
    dst: Path
    cfg: DeidentifyConfig
    info: video.VideoInfo
    report_path: Path | None
    quarantine: str | Path | None
    overwrite: bool
    learned: Any
    donors: list[Donor]
    chooser: DonorChooser
    audit_process: AuditProcess | None = None


@dataclass
class _Streamed:
    """What the frame loop leaves: the frames' record, obscure reasons, timings, the audit."""

    cpu0: Any
    outcomes: list[FrameOutcome] = field(default_factory=list)
    reasons: Counter = field(default_factory=Counter)
    timers: Counter = field(default_factory=Counter)
    writer: video.VideoWriter | None = None
    gate: ReleaseGate | None = None
    audit: Any = None
    text_audit: Any = None  # medswap.text.audit.TextAuditResult, when checked


def _prepare(
    src: Path,
    dst: Path,
    cfg: DeidentifyConfig,
    report: str | Path | None,
    quarantine: str | Path | None,
    overwrite: bool,
    stack: ExitStack,
) -> _Run:
    """Check every model, the input and every output path, and load the donors, before the
    first frame is read: a missing or altered model or an unwritable path must not cost a
    whole video and leave an unaudited output. An audited run's dlib process starts (on
    ``stack``) once the paths are checked, so that it loads while the donors do."""
    require_models(
        [
            *DEIDENTIFY_MODELS[cfg.method],
            *(AUDIT_MODELS if cfg.audit else ()),
            *(TEXT_MODELS if cfg.text != "keep" else ()),
        ]
    )
    info = video.probe(src)
    if info.video_streams > 1:
        log.warning(
            "notice: %s has %d video streams; only the first is de-identified and written, "
            "the others are left out of the output",
            src.name,
            info.video_streams,
        )
    video.check_output_path(dst, overwrite=overwrite, inputs=[src])
    report_path = Path(report) if report else None
    if report_path is not None:
        check_new_output(
            report_path, overwrite=overwrite, inputs=[src], others=[dst], what="report"
        )
    process = stack.enter_context(AuditProcess()) if cfg.audit else None
    learned = _learned_swapper(cfg.model, src, cfg.swap) if cfg.engine == "learned" else None
    if learned is not None:
        donors = [learned.donor]
    else:
        donors = resolve_donors(cfg.donors, cfg.audit) if cfg.method == "swap" else []
    if cfg.swap.blink and learned is None:  # the learned engine draws no shut-eye texture
        measure_fades_beside(donors)
    chooser = DonorChooser(donors, cfg.donor_seed)
    if chooser.measures:
        chooser.probe(src, info, cfg.max_frames)
    if quarantine is not None:
        check_new_output(Path(quarantine) / dst.name, overwrite=overwrite, inputs=[src])
    return _Run(
        src, dst, cfg, info, report_path, quarantine, overwrite, learned, donors, chooser, process
    )


def _stream(run: _Run, progress: Progress | None) -> _Streamed:
    """Decode, perceive, render, (audit) and encode every frame, the models closed after."""
    with ExitStack() as audit_stack:
        out = _Streamed(cpu0=None)
        # The gate first: its lineup is built in the audit's process (started in _prepare)
        # while this process loads its own models.
        out.gate = _make_gate(audit_stack, run) if run.cfg.audit else None
        _stream_through(run, out, progress)
    out.timers["encode"] = out.writer.busy_s
    return out


def _stream_through(run: _Run, out: _Streamed, progress: Progress | None) -> None:
    """:func:`_stream` with the audit (if any) started: the models, the loop, the models closed."""
    cfg, info = run.cfg, run.info
    mesher = FaceMesher(max_faces=4, video=True)
    detector = FaceDetector(min_confidence=0.4)
    hands = HandFinder() if cfg.keeps_hands else None
    # Burned-in text: detected at key frames on a thread of its own; frames wait in the stage
    # until their regions are known, then leave redacted (medswap.text.stage).
    stride = key_frame_stride(info.fps)
    # The text audit looks at frames midway between scheduled key frames, where the stage
    # covered text it never saw; it reads them as they are encoded.
    # One detector and one reader serve both (each guards its session with a lock).
    detector_t, reader_t = TextDetector(), TextRecogniser()
    check = (
        TextCheckInStream(stride, stride // 2, detector_t, reader_t)
        if cfg.audit and cfg.text != "keep"
        else None
    )
    text_stage = TextStage(
        cfg.text, cfg.text_method, info.display_size, stride, detector_t, reader_t, check
    )
    swapper = run.learned if run.learned is not None else MeshSwapper(cfg.swap)
    renderer = renderer_for(
        cfg.method, cfg.strength_used, cfg.mask_shape, swapper, run.chooser.donor
    )
    # One BLAS thread: the stages already run in parallel, and BLAS's own threads spin-wait
    # between the many small products of a frame (measured: 9 s of 27 s CPU on a 10 s clip).
    blas = threadpool_limits(limits=1, user_api="blas")
    cv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    out.cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    try:
        _frame_loop(run, out, renderer, [mesher, detector, hands], text_stage, progress)
    finally:
        text_stage.close()
        blas.restore_original_limits()
        cv2.setNumThreads(cv_threads)
        mesher.close()
        detector.close()
        if hands is not None:
            hands.close()


def _frame_loop(
    run: _Run,
    out: _Streamed,
    renderer: FaceRenderer,
    models: list,
    text_stage: TextStage,
    progress: Progress | None,
) -> None:
    """The loop that only wires the stages, each overlapping the others.

    The models look at frame N+1 on their own threads while this one renders frame N; the
    audit's face search starts on each rendered frame at once, on a thread of its own; the gate
    judges frames N-1 and before on its own thread (dlib's descriptors arrive from their
    process a few frames later), fixes what fails and hands each on to the text stage and the
    encoder, which have threads of their own too. The safety net looks at every frame: a face
    the mesh misses is obscured from the first frame it appears in, never passed through until
    a later check. Closing the look-ahead stops its threads before the models are closed.
    """
    cfg = run.cfg
    tracker = FaceTracker(max_gap=MAX_GAP)
    n_total = _frames_to_read(run)
    frames = video.read_frames(run.src, run.info, max_frames=cfg.max_frames)
    audio_src = run.src if cfg.audio == "keep" else None
    with ExitStack() as stack:
        writer = out.writer = stack.enter_context(
            video.VideoWriter(run.dst, run.info, audio_from=audio_src, publish=False)
        )
        ahead = stack.enter_context(closing(look_ahead(frames, models, out.timers)))
        gate, finder = out.gate, None
        # The frames leave on a thread of their own, through the gate (if any), the text stage
        # and the encoder's queue, so that the render thread only renders.
        sender = stack.enter_context(
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="medswap-send")
        )
        if gate is not None:
            # The audit's face search on each rendered frame starts at once, on a thread of
            # its own, so the gate's thread only describes and judges.
            finder = stack.enter_context(
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="medswap-find")
            )
        in_flight: deque[Future] = deque()
        t_wait = time.perf_counter()
        for frame, jobs in ahead:
            image, states, hand_pts, outcome = _render_frame(
                frame, jobs, tracker, run.chooser, renderer, out, t_wait
            )
            in_flight.append(
                _hand_on(out, sender, finder, text_stage, frame, image, states, hand_pts, outcome)
            )
            while len(in_flight) > GATE_QUEUE:  # bounded: memory stays flat
                in_flight.popleft().result()
            if frame.index == 0:
                log.debug("%s: first frame de-identified", run.dst.name)
            if progress is not None:
                progress(frame.index + 1, n_total)
            t_wait = time.perf_counter()
        while in_flight:
            in_flight.popleft().result()
        if gate is not None:
            sender.submit(_gate_and_write, gate, None, writer, out.timers, text_stage).result()
        for done in text_stage.flush():
            _write_text_frame(writer, done)
        if text_stage.check is not None:
            out.text_audit = text_stage.check.result()
        if gate is not None:
            audit = gate.auditor.result(len(out.outcomes))
            out.audit = replace(audit, deidentified=str(run.dst))


def _hand_on(
    out: _Streamed,
    thread: ThreadPoolExecutor,
    finder: ThreadPoolExecutor | None,
    text_stage: TextStage,
    frame: video.Frame,
    image: np.ndarray,
    states: list[FaceTrackState],
    hand_pts: list[np.ndarray],
    outcome: FrameOutcome,
) -> Future:
    """Send a rendered frame on its way on the frames' own thread: through the gate when the
    run is audited (its face search started at once on the finder's thread), then the text
    stage and the encoder's queue. The render thread only renders."""
    gate = out.gate
    if gate is None:
        hidden = [st.box for st in states]
        return thread.submit(
            _to_text_stage, text_stage, out.writer, frame.index, frame.image, image, outcome, hidden
        )
    found = finder.submit(gate.auditor.find, image)
    item = Rendered(
        frame.index, frame.pts, frame.time_s, frame.image, image, states, hand_pts, outcome, found
    )
    return thread.submit(_gate_and_write, gate, item, out.writer, out.timers, text_stage)


def _render_frame(
    frame: video.Frame,
    jobs: list[Future | None],
    tracker: FaceTracker,
    chooser: DonorChooser,
    renderer: FaceRenderer,
    out: _Streamed,
    t_wait: float,
) -> tuple[np.ndarray, list[FaceTrackState], list[np.ndarray], FrameOutcome]:
    """Track the faces the models found in one frame and render each; record what was done."""
    mesh_job, detect_job, hands_job = jobs
    meshes = mesh_job.result()
    boxes, scores = detect_job.result()
    hand_pts = hands_job.result() if hands_job is not None else []
    t_render = time.perf_counter()
    out.timers["wait for decode and models"] += t_render - t_wait
    image = frame.image.copy()
    states = tracker.update(frame.index, frame.time_s, meshes, boxes, scores)
    chooser.see(frame.index, frame.image, states)
    faces: list[FaceOutcome] = []
    for st in states:
        done = renderer.render(image, st, hand_pts)
        out.reasons[done.reason] += bool(done.reason)
        faces.append(
            FaceOutcome(
                st.track_id,
                st.box.tolist(),
                st.score,
                done.status,
                done.reason,
                done.donor,
                done.hands_in_front,
            )
        )
    outcome = FrameOutcome(frame.index, frame.pts, frame.time_s, faces)
    out.outcomes.append(outcome)
    out.timers["render"] += time.perf_counter() - t_render
    return image, states, hand_pts, outcome


def _record(run: _Run, out: _Streamed, t_start: float) -> DeidentifyResult:
    """The run's result: totals, settings, donors, where the time went, the gate's record."""
    result = DeidentifyResult(
        input=str(run.src),
        output=str(run.dst),
        method=run.cfg.method,
        info=run.info,
        frames=out.outcomes,
        totals=totals_of(out.outcomes, out.reasons),
        settings=run.cfg.report_settings(),
        config=run.cfg.to_json(),
        donors=[f"{d.name}:{d.fingerprint}" for d in run.donors],
        elapsed_s=time.perf_counter() - t_start,
        donor_choice=run.chooser.report(),
    )
    cpu1, cpu0 = resource.getrusage(resource.RUSAGE_SELF), out.cpu0
    result.stages = {
        "busy_s": {k: round(v, 3) for k, v in sorted(out.timers.items())},
        "cpu_s": round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 3),
        "wall_s": round(result.elapsed_s, 3),
        **({"audit": out.gate.auditor.stats()} if out.gate is not None else {}),
    }
    if out.gate is not None:
        result.gate = out.gate.to_json()
        for reason, n in out.gate.reasons.items():
            out.reasons[reason] += n
        result.totals = totals_of(out.outcomes, out.reasons)
        result.audit = out.audit
        if out.audit.clean and out.gate.auditor.near_readings:  # judge the file itself
            written, cap = out.writer.partial, run.cfg.max_frames
            result.audit = audit_of_the_file(run.src, written, run.donors, cap, out.audit)
            result.elapsed_s = result.stages["wall_s"] = time.perf_counter() - t_start
    return result


def _release(run: _Run, out: _Streamed, result: DeidentifyResult) -> None:
    """Publish the video and its report together, or refuse the release and publish nothing.

    The output stays hidden until its audit and report are done: an interrupted or failed
    audit or report leaves nothing that looks like a checked result.
    """
    partial = out.writer.partial
    try:
        result.text_audit = out.text_audit
        if result.audit is not None and not result.audit.clean:
            kept = _quarantine(partial, run.dst, run.quarantine, result, run.overwrite)
            err = ReleaseGateError(
                f"release refused, nothing published: {result.audit.failure_message()}"
                + (f"; kept in {kept}" if kept else ""),
                run.dst,
            )
            err.audit, err.quarantine = result.audit, kept
            raise err
        _publish(partial, run.dst, run.report_path, result)
    except BaseException:
        discard([partial])
        raise


#: Frames the gate may hold beside the renderer: two rendered frames and their originals.
GATE_QUEUE = 2


def _make_gate(stack: ExitStack, run: _Run) -> ReleaseGate:
    """The in-stream auditor (on the run's audit process, or one of its own) and the gate."""
    cfg = run.cfg
    auditor = stack.enter_context(
        StreamAuditor(
            run.src,
            run.dst,
            donors=[(d.name, d.image) for d in run.donors],
            gallery=cfg.gallery,
            dlib_stride=cfg.audit_stride or dlib_stride_for(_frames_to_read(run)),
            process=run.audit_process,
        )
    )
    learned = run.learned is not None
    return ReleaseGate(
        auditor,
        cfg.method,
        cfg.swap,
        run.donors,
        run.chooser.donor,
        not learned,
        near_donor_margin(cfg, run.donors, learned),
    )


def _frames_to_read(run: _Run) -> int:
    """Frames this run will read: the header's count, or fewer with ``max_frames`` (0: unknown)."""
    n, cap = run.info.n_frames, run.cfg.max_frames
    if cap:
        return min(n, cap) if n else cap
    return n


def _gate_and_write(
    gate: ReleaseGate,
    item: Rendered | None,
    writer: video.VideoWriter,
    timers: Counter,
    text_stage: TextStage,
) -> None:
    """On the gate's thread: start judging one frame; pass those finished to the text stage.

    ``item`` None: the end of the video, every frame still in the gate is finished.
    """
    t0 = time.perf_counter()
    done = gate.flush() if item is None else gate.push(item)
    timers["audit and gate"] += time.perf_counter() - t0
    for d in done:
        _to_text_stage(
            text_stage, writer, d.index, d.original, d.image, d.outcome, [st.box for st in d.states]
        )


def _to_text_stage(
    text_stage: TextStage,
    writer: video.VideoWriter,
    index: int,
    original: np.ndarray,
    image: np.ndarray,
    outcome: FrameOutcome,
    faces_hidden: list[np.ndarray],
) -> None:
    """Hand a finished frame to the text stage and encode the frames it releases, in order.

    Called from one thread at a time (the gate's, or the renderer's without a gate), so the
    stage sees frames in order.
    """
    for done in text_stage.push(index, original, image, outcome, faces_hidden):
        _write_text_frame(writer, done)


def _quarantine(
    partial: Path, dst: Path, folder: str | Path | None, result: DeidentifyResult, overwrite: bool
) -> str | None:
    """Keep a refused run's video and report in ``folder`` (``--quarantine``), named as such."""
    if folder is None:
        return None
    folder = Path(folder)
    video_out = folder / f"{dst.stem}.quarantined{dst.suffix}"
    report_out = folder / f"{dst.stem}.quarantined.json"
    for path in (video_out, report_out):
        check_new_output(path, overwrite=overwrite)
    text = json.dumps(json_safe(result.to_json()), indent=1)
    staged = stage_text(report_out, text, what="quarantine report")
    publish([(partial, video_out), (staged, report_out)])
    return str(folder)


def _publish(partial: Path, dst: Path, report_path: Path | None, result: DeidentifyResult) -> None:
    """The finished video and its report appear together, or neither does."""
    pairs = [(partial, dst)]
    try:
        if report_path is not None:
            text = json.dumps(json_safe(result.to_json()), indent=1)
            pairs.append((stage_text(report_path, text, what="report"), report_path))
        publish(pairs)
    finally:
        discard([tmp for tmp, _ in pairs])


def _write_text_frame(writer: video.VideoWriter, done: TextFrame) -> None:
    """Encode a frame leaving the text stage and record its text regions in its outcome."""
    outcome: FrameOutcome = done.payload
    outcome.text = [
        TextOutcome(r.track_id, r.box.tolist(), "redacted" if r.redact else "kept", r.reason.value)
        for r in done.regions
    ]
    writer.write(done.image, outcome.pts)


def _learned_swapper(model: str | Path, src: Path, settings: SwapSettings):
    """Load and validate a ``.medswap`` model, and refuse a video of another person."""
    from medswap.learned import require_torch

    require_torch()
    from medswap.learned.engine import LearnedSwapper
    from medswap.learned.identity import check_subject
    from medswap.learned.modelfile import read_model_file

    mf = read_model_file(model)
    check_subject(model, mf.subject_fingerprint, src)
    return LearnedSwapper(mf, settings)
