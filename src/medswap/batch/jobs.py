"""One video, end to end, on whichever process runs it: de-identify, verify, publish, record.

This is the unit of work shipped to a Dask worker. A :class:`VideoJob` carries paths and the
run's :class:`~medswap.config.DeidentifyConfig`, never frames and never the pseudonym key, so it
is a few hundred bytes however long the video. The worker reads the input from and writes the
output to storage that it shares with the client (a local disk, or NFS/Lustre/S3-fuse on a
cluster).

The publishing order makes every step safe to kill:

1. ``deidentify`` writes to a uniquely named temporary file in ``OUT/.medswap-batch/work``;
2. the temporary file is verified: its decoded frame count must equal the input's, and its
   SHA-256 is computed;
3. it is renamed to its final name (an atomic ``os.replace`` on one file system);
4. only then is the done-record ``OUT/.medswap-batch/done/<job>.json`` written (atomically).

A job killed before 3 leaves only a temporary file (removed by the next run); killed between
3 and 4, it leaves an output without a record, which ``--resume`` redoes. So an output with a
matching record is always complete, and a rerun never duplicates: the name is fixed by the job.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import math
import os
import socket
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from medswap.config import DeidentifyConfig
from medswap.errors import MedswapError, OutputError, UsageError
from medswap.outputs import scrub, sha256_file, write_json_durable
from medswap.video import count_frames

log = logging.getLogger(__name__)

STATE_DIR = ".medswap-batch"
DONE, SKIPPED, FAILED = "done", "skipped", "failed"


@dataclass(frozen=True)
class VideoJob:
    """Everything a worker needs for one video: paths and settings (picklable, small)."""

    job_id: str  # "<pseudonym>_<task>_<n>", also the output file stem
    source: str  # absolute input path, readable by the worker
    source_id: str  # keyed identity of the input, recorded instead of its path
    output_dir: str
    output_rel: str  # "sub-<pseudonym>/<job_id>.mp4"
    pseudonym: str
    task: str
    #: How to de-identify this video: the batch's settings with this subject's donor and seed.
    config: DeidentifyConfig
    evaluate: bool
    fingerprint: str  # of the settings that change the output; a resume redoes on a change
    review: bool = False  # --require-approval: audit, and a scrubbed report beside the output

    @property
    def output(self) -> Path:
        return Path(self.output_dir) / self.output_rel


@dataclass
class VideoOutcome:
    """What became of one video. Holds no original name, so it may go into the output folder."""

    job_id: str
    pseudonym: str
    task: str
    output: str  # relative to the output folder
    status: str  # done | skipped (done by an earlier run) | failed
    frames: int = 0
    input_frames: int = 0
    sha256: str = ""
    seconds: float = 0.0
    error: str = ""
    error_type: str = ""
    audit: str = ""
    metrics: dict = field(default_factory=dict)
    evaluation: dict = field(default_factory=dict)
    worker: str = ""
    source_id: str = ""
    fingerprint: str = ""

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> VideoOutcome:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})


def state_dir(output_dir: str | Path) -> Path:
    return Path(output_dir) / STATE_DIR


def record_path(output_dir: str | Path, job_id: str, status: str = DONE) -> Path:
    return state_dir(output_dir) / status / f"{job_id}.json"


def read_record(path: Path) -> dict | None:
    """A record's contents, or None if it is missing or unreadable (a torn write is none)."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def finished_outcome(job: VideoJob) -> VideoOutcome | None:
    """The earlier outcome of ``job`` if its record, settings and output checksum all hold."""
    data = read_record(record_path(job.output_dir, job.job_id))
    if data is None:
        return None
    if (data.get("source_id"), data.get("fingerprint"), data.get("output")) != (
        job.source_id,
        job.fingerprint,
        job.output_rel,
    ):
        return None
    output = job.output
    if not output.is_file() or sha256_file(output) != data.get("sha256"):
        return None
    outcome = VideoOutcome.from_json(data)
    outcome.status = SKIPPED
    return outcome


# -- what a worker runs --------------------------------------------------------------------


def _scalars(data: object, drop: tuple[str, ...] = ()) -> dict:
    """JSON-safe numbers and short labels from a mapping; anything holding a path is dropped."""
    if not isinstance(data, dict):
        return {}
    out = {}
    for key, value in data.items():
        if isinstance(value, bool) or value is None:
            out[str(key)] = value
        elif isinstance(value, (int, float)):
            out[str(key)] = value if math.isfinite(value) else None
        elif isinstance(value, str) and len(value) <= 64 and "/" not in value and "\\" not in value:
            if not any(d and d in value for d in drop):
                out[str(key)] = value
        elif isinstance(value, dict):
            nested = _scalars(value, drop)
            if nested:
                out[str(key)] = nested
    return out


def _audit_verdict(audit: object | None) -> str:
    """The manifest's ``audit`` column: the release gate's verdict and its headline figures."""
    if audit is None:
        return "not audited"
    if audit.nothing_to_protect:
        return "nothing to protect"
    lu = audit.lineup()
    rank1 = ", ".join(
        f"{r} {100 * v:.1f}%" for r, v in lu.get("rank1", {}).items() if v is not None
    )
    figures = f"{len(audit.leak_frames)} leak frames; rank-1 {rank1 or 'n/a'}" + (
        f" (chance {100 * lu['chance']:.1f}%)" if lu else ""
    )
    return f"{'clean' if audit.clean else 'refused'}: {figures}"


def evaluation_function():
    """The per-video evaluation of ``medswap.studies`` (issue 3), or None if this build lacks it.

    The hook looks for ``evaluate_pair(original, deidentified)`` or
    ``evaluate_video(original, deidentified)`` returning a mapping (or an object with
    ``to_json()``) of numbers; those numbers go into the video's record and are aggregated
    over the dataset.
    """
    try:
        module = importlib.import_module("medswap.studies")
    except ModuleNotFoundError:
        return None
    for name in ("evaluate_pair", "evaluate_video"):
        fn = getattr(module, name, None)
        if callable(fn):
            return fn
    return None


def _evaluate(job: VideoJob, output: Path) -> dict:
    fn = evaluation_function()
    if fn is None:
        raise UsageError("--evaluate needs medswap.studies, which this build does not have")
    result = fn(job.source, str(output))
    data = result.to_json() if hasattr(result, "to_json") else result
    return _scalars(data, drop=(job.source,))


def _clean_message(message: str, job: VideoJob, tmp: Path) -> str:
    """An error message with the original path (which may hold a patient name) taken out."""
    return message.replace(str(tmp), job.output_rel).replace(job.source, "<input>")


def _write_review_report(job: VideoJob, result: object, tmp: Path) -> None:
    """The run's report beside the output, with the input's path and name taken out."""
    from medswap.outputs import write_json_atomic as write_report

    replace = {
        str(tmp): job.output_rel,
        tmp.name: job.output.name,
        job.source: "<input>",
        Path(job.source).name: "<input>",
    }
    report = scrub(result.to_json(), replace)
    write_report(job.output.with_suffix(".json"), report, what="review report")


def run_video(job: VideoJob) -> VideoOutcome:
    """De-identify one video, verify it, publish it and record it; never raises for bad input.

    A :class:`MedswapError` (corrupt input, no face where one is required...) becomes a failed
    outcome with its message, written to ``.medswap-batch/failed/``; an unexpected exception is
    recorded the same way, as an internal error, so one video never stops a dataset.
    """
    start = time.perf_counter()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    work = state_dir(job.output_dir) / "work"
    work.mkdir(parents=True, exist_ok=True)
    tmp = work / f"{job.job_id}.{uuid.uuid4().hex[:12]}.mp4"
    base = dict(
        job_id=job.job_id,
        pseudonym=job.pseudonym,
        task=job.task,
        output=job.output_rel,
        worker=worker,
        source_id=job.source_id,
        fingerprint=job.fingerprint,
    )
    try:
        from medswap.pipeline import deidentify

        result = deidentify(job.source, tmp, job.config, report=None)
        input_frames = count_frames(job.source)
        frames = count_frames(tmp)
        if frames != input_frames:
            raise OutputError(f"output has {frames} frames but the input has {input_frames}")
        digest = sha256_file(tmp)
        evaluation = _evaluate(job, tmp) if job.evaluate else {}
        job.output.parent.mkdir(parents=True, exist_ok=True)
        if job.review:  # release review (issue 24): the report the review page reads
            _write_review_report(job, result, tmp)
        os.replace(tmp, job.output)
        outcome = VideoOutcome(
            **base,
            status=DONE,
            frames=frames,
            input_frames=input_frames,
            sha256=digest,
            audit=_audit_verdict(result.audit),
            metrics=_scalars(result.totals.to_json(), drop=(job.source,)),
            evaluation=evaluation,
            seconds=round(time.perf_counter() - start, 3),
        )
        write_json_durable(record_path(job.output_dir, job.job_id), outcome.to_json())
        with contextlib.suppress(FileNotFoundError):
            record_path(job.output_dir, job.job_id, FAILED).unlink()
        log.debug("%s: %d frames in %.1f s", job.job_id, frames, outcome.seconds)
        return outcome
    except MedswapError as exc:
        outcome = VideoOutcome(
            **base,
            status=FAILED,
            error=_clean_message(exc.message, job, tmp),
            error_type=type(exc).__name__,
            audit=_audit_verdict(getattr(exc, "audit", None)) if job.config.audit else "",
        )
    except Exception as exc:  # a bug must not stop the other videos; it is recorded as one
        log.exception("%s: internal error", job.job_id)
        outcome = VideoOutcome(
            **base,
            status=FAILED,
            error_type="InternalError",
            error=_clean_message(f"internal error: {type(exc).__name__}: {exc}", job, tmp),
        )
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    outcome.seconds = round(time.perf_counter() - start, 3)
    write_json_durable(record_path(job.output_dir, job.job_id, FAILED), outcome.to_json())
    return outcome
