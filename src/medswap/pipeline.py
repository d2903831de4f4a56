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
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, closing
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from medswap import __version__, video
from medswap.errors import DonorError, ReleaseGateError, UsageError
from medswap.evaluate.stream import DLIB_STRIDE, StreamAuditor
from medswap.faces.mesh import (
    FaceDetector,
    FaceMesher,
    HandFinder,
    head_yaw_ratio,
    occluding_hands,
)
from medswap.faces.track import FaceTracker
from medswap.gate import ReleaseGate, Rendered
from medswap.models import AUDIT_MODELS, DEIDENTIFY_MODELS, TEXT_MODELS, model_manifest
from medswap.models import require as require_models
from medswap.outputs import check_new_output, discard, json_safe, publish, stage_text
from medswap.swap import obscure as obs
from medswap.swap.donors import (
    DEFAULT_DONOR,
    Donor,
    assign_donor,
    builtin_donor,
    choose_donor,
    donor_margin,
    load_donor,
)
from medswap.swap.engine import MeshSwapper, SwapSettings
from medswap.text import TEXT_METHODS, TEXT_MODES, TextFrame, TextStage, key_frame_stride
from medswap.types import METHODS, FaceOutcome, FaceStatus, FrameOutcome, TextOutcome

log = logging.getLogger(__name__)

#: Swap engines: the landmark-driven mesh warp, or a model trained with ``medswap train``.
ENGINES = ("mesh", "learned")
#: Beyond this head turn (0 frontal .. 1 profile) the warp folds: obscure instead.
MAX_YAW = 0.75
#: Faces narrower than this many pixels are obscured: too few pixels for a faithful swap.
MIN_SWAP_WIDTH = 24
#: A track not seen for up to this many frames is bridged (obscured where it was heading).
MAX_GAP = 8

Progress = Callable[[int, int], None]
#: Image files taken from a ``--donor`` folder.
DONOR_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass
class DeidentifyResult:
    """What a run did: the output, its frame-by-frame record and totals."""

    input: str
    output: str
    method: str
    info: video.VideoInfo
    frames: list[FrameOutcome]
    totals: dict
    settings: dict
    donors: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    audit: object | None = None  # medswap.evaluate.privacy.AuditResult when audited
    text_audit: object | None = None  # medswap.text.audit.TextAuditResult when audited
    #: Where the run's time went, stage by stage (busy seconds), and the release gate's record.
    stages: dict = field(default_factory=dict)
    gate: dict | None = None
    #: per track with several donors: the donor chosen and every donor's distances (see
    #: :class:`DonorChooser`)
    donor_choice: list[dict] = field(default_factory=list)

    @property
    def face_found(self) -> bool:
        """A face was found by the face mesh (not only a possible face from the safety net)."""
        return self.totals["frames_with_mesh_face"] > 0

    def to_json(self, include_models: bool = True) -> dict:
        info = self.info
        return {
            "tool": "medswap",
            "version": __version__,
            # No input name or path: a file named after the patient must not reach the
            # report. The output is named by its file name only, not the path as typed.
            "input": {
                "width": info.width,
                "height": info.height,
                "fps": float(info.fps),
                "rotation": info.rotation,
                "codec": info.codec,
                "video_streams": info.video_streams,
            },
            "output": Path(self.output).name,
            "method": self.method,
            "settings": self.settings,
            "donors": self.donors,
            "donor_choice": self.donor_choice,
            "elapsed_s": round(self.elapsed_s, 3),
            "stages": self.stages,
            "totals": self.totals,
            "release_gate": self.gate,
            "models": model_manifest(_models_used(self.method, self.settings))
            if include_models
            else {},
            "audit": self.audit.to_json() if self.audit is not None else None,
            "text_audit": self.text_audit.to_json() if self.text_audit is not None else None,
            "frames": [f.to_json() for f in self.frames],
        }


def _models_used(method: str, settings: dict) -> list[str]:
    """The models a run of ``method`` used: the text detector too unless text was kept."""
    text = settings.get("text", "keep")
    return [*DEIDENTIFY_MODELS[method], *(() if text == "keep" else TEXT_MODELS)]


def _timed(model: Callable[[np.ndarray], object], timers: Counter) -> Callable:
    """``model`` with the seconds spent in it added to ``timers[its class name]``."""
    name = f"perceive: {type(model).__name__}"

    def call(image: np.ndarray) -> object:
        t0 = time.perf_counter()
        try:
            return model(image)
        finally:
            timers[name] += time.perf_counter() - t0

    return call


def _look_ahead(
    frames: Iterable[video.Frame],
    models: Sequence[Callable[[np.ndarray], object] | None],
    timers: Counter | None = None,
) -> Iterator[tuple[video.Frame, list[Future | None]]]:
    """Each frame with every model already running on it, one frame ahead of the caller.

    The swap of frame N (the caller's thread) overlaps the models on frame N+1, so on two
    cores neither waits for the other. Each model gets a thread of its own: MediaPipe graphs
    must not be called concurrently, and the tracking ones (mesh, hands) must see frames in
    order. Two frames are in flight at most, so memory stays flat. A model that is None
    (hands, when occlusion is off) gets no job.
    """
    threads = [
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="medswap-model")
        if m is not None
        else None
        for m in models
    ]
    models = [_timed(m, timers) if m is not None and timers is not None else m for m in models]
    pending: tuple[video.Frame, list[Future | None]] | None = None
    try:
        for frame in frames:
            jobs = [
                t.submit(m, frame.image) if t is not None else None
                for t, m in zip(threads, models, strict=True)
            ]
            if pending is not None:
                yield pending
            pending = frame, jobs
        if pending is not None:
            yield pending
    finally:
        for t in threads:
            if t is not None:
                t.shutdown(wait=True, cancel_futures=True)


def _resolve_donors(donors: Sequence[str | Path | Donor] | None) -> list[Donor]:
    """Donor objects from names, image paths and folders of images (sorted by file name)."""
    if not donors:
        return [builtin_donor(DEFAULT_DONOR)]
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


def deidentify(
    input: str | Path,
    output: str | Path,
    *,
    method: str = "swap",
    donors: Sequence[str | Path | Donor] | None = None,
    donor_seed: int = 0,
    audio: str = "drop",
    report: str | Path | None = None,
    shape: float | None = None,
    strength: float | None = None,
    mask_shape: str = "ellipse",
    occlusion: bool = True,
    swap_settings: SwapSettings | None = None,
    audit: bool = False,
    audit_stride: int | None = None,
    gallery: str | Path | None = None,
    quarantine: str | Path | None = None,
    overwrite: bool = True,
    max_frames: int | None = None,
    progress: Progress | None = None,
    engine: str = "mesh",
    model: str | Path | None = None,
    text: str = "redact",
    text_method: str = "box",
) -> DeidentifyResult:
    """De-identify ``input`` into ``output``; the Python twin of ``medswap deidentify``.

    ``method`` is ``swap`` (default) or a baseline: ``blur``, ``pixelate``, ``mask``, applied
    to the same tracked face regions at ``strength`` (relative to face size). ``donors`` are
    image paths or built-in names (default: ``DEFAULT_DONOR``); each face track gets
    one donor, reproducibly from ``donor_seed``. ``audio`` is ``drop`` (default: a voice
    identifies) or ``keep``. ``shape`` moves face geometry toward the donor (0..1);
    ``swap_settings`` sets every blending parameter (for sweeps and experiments).
    ``mask_shape`` is the ``mask`` baseline's shape: ``ellipse`` (default), ``box``, ``eyes``.
    ``audit`` judges every output frame before it is encoded (:mod:`medswap.evaluate.stream`:
    YuNet and SFace on every frame, dlib on every ``audit_stride``-th and wherever SFace is
    suspicious; ``gallery`` is the lineup folder) and gates the release (:mod:`medswap.gate`):
    a face either recogniser takes for the patient is re-rendered stronger or obscured before
    it is written, and if the finished audit is still not clean (a leak frame, or the lineup
    rank-1 above its bound) nothing is published and :class:`ReleaseGateError` (exit 20) is
    raised; ``quarantine`` is a folder to keep that run's video and report in. The CLI audits
    by default, the API only when asked.
    ``max_frames`` stops early (for previews and tests); the output then has that many frames.
    ``progress`` is a ``(done, total)`` callback; the audit runs in the same pass.
    ``engine`` is ``mesh`` (default) or ``learned``, which needs ``model``, a ``.medswap`` file
    from ``medswap train`` (its donor is baked in); it refuses a video of another person.
    ``text`` is what happens to text burned into the pixels (:mod:`medswap.text`): ``redact``
    (default) every line, ``keep`` it, or ``phi``: only lines that read as a date, time, long
    number or name. ``text_method`` is ``box`` (solid fill) or ``blur``. With ``audit`` the
    output is also checked for text left readable (``result.text_audit``).
    """
    t_start = time.perf_counter()
    src, dst = Path(input), Path(output)
    if method not in METHODS:
        raise UsageError(f"unknown method '{method}'; choose one of {', '.join(METHODS)}")
    if audio not in ("drop", "keep"):
        raise UsageError(f"--audio must be 'drop' or 'keep', got '{audio}'")
    if mask_shape not in obs.MASK_SHAPES:
        raise UsageError(
            f"unknown mask shape '{mask_shape}'; choose one of {', '.join(obs.MASK_SHAPES)}"
        )
    strength = obs.check_strength(method, strength)
    if shape is not None and not 0.0 <= shape <= 1.0:
        raise UsageError(f"--shape must be between 0 and 1, got {shape}")
    if engine not in ENGINES:
        raise UsageError(f"unknown engine '{engine}'; choose one of {', '.join(ENGINES)}")
    if engine == "learned":
        if method != "swap":
            raise UsageError("--engine learned swaps faces; it does not combine with --method")
        if model is None:
            raise UsageError("--engine learned needs --model MODEL.medswap (from medswap train)")
        if donors or shape:
            raise UsageError(
                "--engine learned: the donor and shape are in the model; drop --donor and --shape"
            )
    elif model is not None:
        raise UsageError("--model is used by --engine learned only")
    if text not in TEXT_MODES:
        raise UsageError(f"--text must be one of {', '.join(TEXT_MODES)}, got '{text}'")
    if text_method not in TEXT_METHODS:
        raise UsageError(
            f"--text-method must be one of {', '.join(TEXT_METHODS)}, got '{text_method}'"
        )
    # Every model this run will use, the audit's included, before the first frame is read:
    # a missing or altered file must not cost a whole video and leave an unaudited output.
    require_models(
        [
            *DEIDENTIFY_MODELS[method],
            *(AUDIT_MODELS if audit else ()),
            *(TEXT_MODELS if text != "keep" else ()),
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
    settings = swap_settings or SwapSettings()
    if shape is not None:
        settings = replace(settings, shape=shape)
    learned = _learned_swapper(model, src, settings) if engine == "learned" else None
    if learned is not None:
        donor_list = [learned.donor]
    else:
        donor_list = _resolve_donors(donors) if method == "swap" else []
    strength_used = strength if strength is not None else obs.DEFAULT_STRENGTH.get(method, 0.0)
    chooser = DonorChooser(donor_list, donor_seed)
    if chooser.measures:
        chooser.probe(src, info, max_frames)

    mesher = FaceMesher(max_faces=4, video=True)
    detector = FaceDetector(min_confidence=0.4)
    hands = HandFinder() if (method == "swap" and occlusion) else None
    tracker = FaceTracker(max_gap=MAX_GAP)
    # Burned-in text: detected at key frames on a thread of its own; frames wait in the stage
    # until their regions are known, then leave redacted (medswap.text.stage).
    text_stage = TextStage(text, text_method, info.display_size, key_frame_stride(info.fps))
    swapper = learned if learned is not None else MeshSwapper(settings)
    outcomes: list[FrameOutcome] = []
    reasons: Counter[str] = Counter()
    n_total = max_frames or info.n_frames
    audio_src = src if audio == "keep" else None
    # One BLAS thread: the stages already run in parallel, and BLAS's own threads spin-wait
    # between the many small products of a frame (measured: 9 s of 27 s CPU on a 10 s clip).
    blas = threadpool_limits(limits=1, user_api="blas")
    timers: Counter[str] = Counter()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    if quarantine is not None:
        check_new_output(Path(quarantine) / dst.name, overwrite=overwrite, inputs=[src])
    gate = None
    try:
        frames = video.read_frames(src, info, max_frames=max_frames)
        # The models look at frame N+1 on their own threads while this one swaps frame N;
        # the gate judges (and if need be fixes) frame N-1 on its own thread and hands it to
        # the encoder, which has a thread of its own too: every stage overlaps the others.
        # The safety net looks at every frame: a face the mesh misses is obscured from the
        # first frame it appears in, never passed through until a later check. Closing the
        # look-ahead stops its threads before the models are closed below.
        with ExitStack() as stack:
            writer = stack.enter_context(
                video.VideoWriter(dst, info, audio_from=audio_src, publish=False)
            )
            ahead = stack.enter_context(
                closing(_look_ahead(frames, [mesher, detector, hands], timers))
            )
            if audit:
                gate = _make_gate(
                    stack,
                    src,
                    dst,
                    method,
                    settings,
                    donor_list,
                    chooser.donor,
                    gallery,
                    audit_stride,
                    can_rerender=learned is None,
                )
                gate_thread = stack.enter_context(
                    ThreadPoolExecutor(max_workers=1, thread_name_prefix="medswap-gate")
                )
            in_flight: deque[Future] = deque()
            t_wait = time.perf_counter()
            for frame, (mesh_job, detect_job, hands_job) in ahead:
                meshes = mesh_job.result()
                boxes, scores = detect_job.result()
                hand_pts = hands_job.result() if hands_job is not None else []
                t_render = time.perf_counter()
                timers["wait for decode and models"] += t_render - t_wait
                image = frame.image.copy()
                states = tracker.update(frame.index, frame.time_s, meshes, boxes, scores)
                chooser.see(frame.index, frame.image, states)
                faces: list[FaceOutcome] = []
                for st in states:
                    status, reason, donor_name, n_hands = _process_face(
                        image,
                        st,
                        method,
                        strength_used,
                        chooser,
                        swapper,
                        hand_pts,
                        mask_shape,
                    )
                    reasons[reason] += bool(reason)
                    faces.append(
                        FaceOutcome(
                            st.track_id,
                            st.box.tolist(),
                            st.score,
                            status,
                            reason,
                            donor_name,
                            n_hands,
                        )
                    )
                outcome = FrameOutcome(frame.index, frame.pts, frame.time_s, faces)
                outcomes.append(outcome)
                timers["render"] += time.perf_counter() - t_render
                faces_hidden = [st.box for st in states]
                if gate is None:
                    _to_text_stage(
                        text_stage, writer, frame.index, frame.image, image, outcome, faces_hidden
                    )
                else:
                    item = Rendered(
                        frame.index,
                        frame.pts,
                        frame.time_s,
                        frame.image,
                        image,
                        states,
                        hand_pts,
                        outcome,
                    )
                    in_flight.append(
                        gate_thread.submit(
                            _gate_and_write, gate, item, writer, timers, text_stage, faces_hidden
                        )
                    )
                    while len(in_flight) > GATE_QUEUE:  # bounded: memory stays flat
                        in_flight.popleft().result()
                if frame.index == 0:
                    log.debug("%s: first frame de-identified", dst.name)
                if progress is not None:
                    progress(frame.index + 1, n_total)
                t_wait = time.perf_counter()
            while in_flight:
                in_flight.popleft().result()
            for done in text_stage.flush():
                _write_text_frame(writer, done)
            if gate is not None:
                audit_result = replace(gate.auditor.result(len(outcomes)), deidentified=str(dst))
    finally:
        text_stage.close()
        blas.restore_original_limits()
        mesher.close()
        detector.close()
        if hands is not None:
            hands.close()
    timers["encode"] = writer.busy_s
    totals = _totals(outcomes, reasons)
    result = DeidentifyResult(
        input=str(src),
        output=str(dst),
        method=method,
        info=info,
        frames=outcomes,
        totals=totals,
        settings={
            "method": method,
            "engine": engine if method == "swap" else None,
            "model": Path(model).name if model is not None else None,
            "shape": settings.shape,
            "detail": settings.detail,
            "strength": strength_used,
            **({"mask_shape": mask_shape} if method == "mask" else {}),
            "occlusion": hands is not None,
            "audio": audio,
            "donor_seed": donor_seed,
            "max_frames": max_frames,
            "text": text,
            "text_method": text_method,
        },
        donors=[f"{d.name}:{d.fingerprint}" for d in donor_list],
        elapsed_s=time.perf_counter() - t_start,
        donor_choice=chooser.report(),
    )
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    result.stages = {
        "busy_s": {k: round(v, 3) for k, v in sorted(timers.items())},
        "cpu_s": round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 3),
        "wall_s": round(result.elapsed_s, 3),
        **({"audit": gate.auditor.stats()} if gate is not None else {}),
    }
    if gate is not None:
        result.gate = gate.to_json()
        for reason, n in gate.reasons.items():
            reasons[reason] += n
        result.totals = totals = _totals(outcomes, reasons)
        result.audit = audit_result
    # The output stays hidden until its audit and report are done: an interrupted or failed
    # audit or report leaves nothing that looks like a checked result.
    try:
        if audit and text != "keep":
            from medswap.text.audit import audit_text

            stride = key_frame_stride(info.fps)
            # Midway between scheduled key frames: where the stage covered text it never saw.
            result.text_audit = audit_text(
                src,
                writer.partial,
                frames=outcomes,
                stride=stride,
                offset=stride // 2,
                max_frames=max_frames,
            )
        if result.audit is not None and not result.audit.clean:
            kept = _quarantine(writer.partial, dst, quarantine, result, overwrite)
            err = ReleaseGateError(
                f"release refused, nothing published: {result.audit.failure_message()}"
                + (f"; kept in {kept}" if kept else ""),
                dst,
            )
            err.audit, err.quarantine = result.audit, kept
            raise err
        _publish(writer.partial, dst, report_path, result)
    except BaseException:
        discard([writer.partial])
        raise
    log.debug(  # the CLI prints its own summary line
        "%s: %d frames, %d with a face, %d swapped, %d obscured in %.1fs",
        dst.name,
        totals["frames"],
        totals["frames_with_face"],
        totals["faces_swapped"],
        totals["faces_obscured"],
        result.elapsed_s,
    )
    return result


#: Frames the gate may hold beside the renderer: two rendered frames and their originals.
GATE_QUEUE = 2


def _make_gate(
    stack: ExitStack,
    src: Path,
    dst: Path,
    method: str,
    settings: SwapSettings,
    donors: list[Donor],
    track_donor: Callable[[int], Donor],
    gallery: str | Path | None,
    dlib_stride: int | None,
    can_rerender: bool,
) -> ReleaseGate:
    """The in-stream auditor (its child process starts now) and the gate around it."""
    auditor = stack.enter_context(
        StreamAuditor(
            src,
            dst,
            donors=[(d.name, d.image) for d in donors],
            gallery=gallery,
            dlib_stride=dlib_stride or DLIB_STRIDE,
        )
    )
    return ReleaseGate(auditor, method, settings, donors, track_donor, can_rerender)


def _gate_and_write(
    gate: ReleaseGate,
    item: Rendered,
    writer: video.VideoWriter,
    timers: Counter,
    text_stage: TextStage,
    faces_hidden: list[np.ndarray],
) -> None:
    """On the gate's thread: judge and fix one frame, then pass it on to the text stage."""
    t0 = time.perf_counter()
    image = gate.process(item)
    timers["audit and gate"] += time.perf_counter() - t0
    _to_text_stage(text_stage, writer, item.index, item.original, image, item.outcome, faces_hidden)


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


# --------------------------------------------------------------------------------------------
# Donor choice: with several donors, each track gets the one farthest from its patient
# --------------------------------------------------------------------------------------------

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


def _process_face(
    image, st, method, strength, chooser, swapper, hands, mask_shape="ellipse"
) -> tuple[FaceStatus, str, str | None, int]:
    """Swap, obscure or apply a baseline to one tracked face, in place on ``image``.

    The last value counts the hands kept in front of the swapped face (for the review page).
    """
    if method != "swap":
        obs.apply_in_region(
            image, st.box, method, strength, shape=mask_shape, landmarks=st.landmarks
        )
        return FaceStatus.BASELINE, "", None, 0
    reason = ""
    if st.landmarks is None:
        reason = {
            "bridged": "face lost for a few frames (track bridged)",
            "detector": "face seen by the safety-net detector only",
        }[st.source]
    elif st.box[2] - st.box[0] < MIN_SWAP_WIDTH:
        reason = f"face narrower than {MIN_SWAP_WIDTH} px"
    elif head_yaw_ratio(st.landmarks) > MAX_YAW:
        reason = "head turned too far for the swap"
    if not reason:
        donor = chooser.donor(st.track_id)
        try:
            in_front = occluding_hands(hands, st.landmarks) if hands else hands
            swapper.swap(image, st.track_id, st.landmarks, donor, in_front)
            return FaceStatus.SWAPPED, "", donor.name, _hands_over_box(in_front, st.box)
        except (ValueError, np.linalg.LinAlgError) as exc:  # geometry the warp cannot use
            # swap() writes the frame only as its last step, so nothing half-done is left.
            reason = f"swap failed ({exc})"
    obs.obscure(image, st.box)
    return FaceStatus.OBSCURED, reason, None, 0


def _hands_over_box(hands: list[np.ndarray] | None, box: np.ndarray) -> int:
    """How many hands have a point inside the face box (the frames a reviewer should see)."""
    x0, y0, x1, y1 = box
    return sum(
        bool(np.any((h[:, 0] >= x0) & (h[:, 0] <= x1) & (h[:, 1] >= y0) & (h[:, 1] <= y1)))
        for h in hands or []
    )


_NOT_MESH_REASONS = (
    "face lost for a few frames (track bridged)",
    "face seen by the safety-net detector only",
)


def _totals(outcomes: list[FrameOutcome], reasons: Counter) -> dict:
    status = Counter(o.status for o in outcomes)
    faces = Counter(f.status.value for o in outcomes for f in o.faces)
    return {
        "frames": len(outcomes),
        "frames_with_face": sum(1 for o in outcomes if o.faces),
        "frames_with_mesh_face": sum(
            1 for o in outcomes if any(f.reason not in _NOT_MESH_REASONS for f in o.faces)
        ),
        "frames_swapped": status.get("swapped", 0),
        "frames_obscured": status.get("obscured", 0),
        "frames_baseline": status.get("baseline", 0),
        "frames_no_face": status.get("no_face", 0),
        "faces_swapped": faces.get("swapped", 0),
        "faces_obscured": faces.get("obscured", 0),
        "faces_baseline": faces.get("baseline", 0),
        "tracks": len({f.track_id for o in outcomes for f in o.faces}),
        "obscured_reasons": dict(reasons),
        "text": _text_totals(outcomes),
    }


def _text_totals(outcomes: list[FrameOutcome]) -> dict:
    """Burned-in text over the run: frames and regions redacted or kept, and why."""
    redacted = [t for o in outcomes for t in o.text if t.status == "redacted"]
    return {
        "frames_redacted": sum(1 for o in outcomes if any(t.status == "redacted" for t in o.text)),
        "regions_redacted": len(redacted),
        "regions_kept": sum(1 for o in outcomes for t in o.text if t.status == "kept"),
        "tracks": len({t.track_id for o in outcomes for t in o.text}),
        "reasons": dict(Counter(t.reason for t in redacted)),
    }
