"""Plan a dataset into per-video jobs, run them on Dask (or in-process), and write the manifests.

The client (the process running ``medswap batch``) validates the input, derives pseudonyms
with the private key, skips what an earlier run finished (``--resume``), submits one task per
remaining video, reports progress as tasks complete, and finally writes the output manifest
(in the output folder, no original names) and the mapping table (beside the key, private).

Engines: ``workers=0`` runs the videos one after another in this process (debugging, tiny
jobs); ``workers=N`` (default: one per CPU core, at most one per 2 GiB of memory) starts a
Dask ``LocalCluster`` of N single-threaded worker processes; ``scheduler="tcp://host:port"``
(or a scheduler JSON file) connects to an existing Dask cluster whose workers can import
medswap and see the input and output paths under the same names.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import logging
import os
import shutil
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from medswap import __version__
from medswap.batch import pseudonyms as ps
from medswap.batch.jobs import (
    DONE,
    FAILED,
    SKIPPED,
    VideoJob,
    VideoOutcome,
    evaluation_function,
    finished_outcome,
    record_path,
    run_video,
    state_dir,
)
from medswap.batch.manifest import ManifestReport, RowProblem, load_input
from medswap.config import DeidentifyConfig
from medswap.errors import InputNotFoundError, ManifestError, OutputError, UsageError
from medswap.models import DEIDENTIFY_MODELS, KEYPOINT_MODELS
from medswap.models import require as require_models

log = logging.getLogger(__name__)

MANIFEST_FIELDS = (
    "pseudonym",
    "task",
    "file",
    "status",
    "frames",
    "sha256",
    "seconds",
    "audit",
    "error",
    "metrics",
    "evaluation",
)


@dataclass(frozen=True)
class Progress:
    """A progress snapshot, handed to the caller's callback after each finished video."""

    videos_done: int  # including videos finished by an earlier run
    videos_total: int
    videos_failed: int
    frames_done: int  # frames de-identified by this run
    elapsed_s: float
    fps: float  # frames per second over this run so far, all workers together
    eta_s: float | None
    last: VideoOutcome | None


@dataclass
class BatchResult:
    """What a batch run did; ``outcomes`` are sorted by job id."""

    output_dir: Path
    outcomes: list[VideoOutcome]
    problems: list[RowProblem]
    manifest_csv: Path
    manifest_json: Path
    map_file: Path
    key_file: Path
    elapsed_s: float
    engine: str
    evaluation: dict = field(default_factory=dict)

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def failed(self) -> list[VideoOutcome]:
        return [o for o in self.outcomes if o.status == FAILED]

    def summary(self) -> str:
        """One line: what was done, skipped, failed and rejected."""
        frames = sum(o.frames for o in self.outcomes if o.status == DONE)
        fps = frames / self.elapsed_s if self.elapsed_s > 0 else 0.0
        return (
            f"{len(self.outcomes)} videos: {self.count(DONE)} done, {self.count(SKIPPED)} "
            f"already done, {self.count(FAILED)} failed; "
            f"{sum(p.skipped for p in self.problems)} manifest rows skipped; "
            f"{frames} frames in {self.elapsed_s:.1f} s "
            f"({fps:.1f} fps) on {self.engine}"
        )


def default_workers() -> int:
    """One worker per core, but no more than one per 2 GiB of memory (a swap worker's need)."""
    cores = os.cpu_count() or 1
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return cores
    return max(1, min(cores, memory // (2 << 30)))


def _donor_spec(donor: str | Path) -> str:
    """A built-in donor name as it is, an image as its absolute path (workers resolve it)."""
    from medswap.swap.donors import BUILTIN_DONORS

    if str(donor) in BUILTIN_DONORS:
        return str(donor)
    path = Path(donor)
    if not path.is_file():
        raise InputNotFoundError(
            f"no such donor image (built-in donors: {', '.join(BUILTIN_DONORS)})", donor
        )
    return str(path.resolve())


def plan_jobs(
    report: ManifestReport,
    key: bytes,
    output_dir: Path,
    *,
    config: DeidentifyConfig,
    evaluate: bool,
    require_approval: bool = False,
) -> list[tuple[str, str, VideoJob]]:
    """One job per video: (subject, source path, job), numbered per subject and task.

    Videos of one subject and task are numbered 1, 2, ... in the order of their paths, so the
    names are the same in every run over the same dataset. Each subject gets one donor: with
    several donors in ``config``, the one its keyed donor seed picks; the seed is passed on
    too. With ``require_approval`` each output gets its staging name (``<job>.unreviewed.mp4``).
    """
    ext = ".unreviewed.mp4" if require_approval else ".mp4"  # release review (issue 24)
    # An unaudited output is redone when audited, and any changed setting redoes the videos.
    fingerprint = config.fingerprint()
    by_subject_task: dict[tuple[str, str], list] = defaultdict(list)
    for item in report.items:
        by_subject_task[(item.subject, item.task)].append(item)
    names: dict[str, str] = {}
    planned = []
    for (subject, task), items in sorted(by_subject_task.items()):
        pseudo = ps.pseudonym(key, subject)
        if names.setdefault(pseudo, subject) != subject:
            raise ManifestError(f"two subjects share the pseudonym {pseudo}; use another key")
        seed = ps.donor_seed(key, subject)
        donors = config.donors
        subject_config = replace(
            config, donors=(donors[seed % len(donors)],) if donors else (), donor_seed=seed
        )
        for n, item in enumerate(sorted(items, key=lambda i: i.rel_path), start=1):
            job_id = f"{pseudo}_{task}_{n}"
            job = VideoJob(
                job_id=job_id,
                source=str(item.source),
                source_id=ps.source_id(key, item.rel_path),
                output_dir=str(output_dir),
                output_rel=f"sub-{pseudo}/{job_id}{ext}",
                pseudonym=pseudo,
                task=task,
                config=subject_config,
                evaluate=evaluate,
                fingerprint=fingerprint,
                review=require_approval,
            )
            planned.append((subject, item.rel_path, job))
    return planned


def _prepare_output(output_dir: Path, resume: bool, overwrite: bool) -> None:
    if resume and overwrite:
        raise UsageError("--resume and --overwrite exclude each other")
    if output_dir.exists() and not output_dir.is_dir():
        raise OutputError("output path exists and is not a folder", output_dir)
    if output_dir.is_dir() and any(output_dir.iterdir()) and not (resume or overwrite):
        raise OutputError(
            "output folder exists and is not empty (pass --resume to finish an "
            "earlier run, or --overwrite to redo every video)",
            output_dir,
        )
    if not output_dir.parent.is_dir():
        raise OutputError(
            "the folder that should hold the output folder does not exist", output_dir
        )
    output_dir.mkdir(exist_ok=True)
    # Temporary files of a killed run are never complete outputs; drop them.
    shutil.rmtree(state_dir(output_dir) / "work", ignore_errors=True)


@contextlib.contextmanager
def _dask_client(workers: int, scheduler: str | None) -> Iterator[tuple[object, str]]:
    from distributed import Client, LocalCluster

    if scheduler:
        kwargs = (
            {"scheduler_file": scheduler}
            if scheduler.endswith(".json") and Path(scheduler).is_file()
            else {"address": scheduler}
        )
        try:
            client = Client(timeout="20s", **kwargs)
        except (OSError, TimeoutError) as exc:
            raise UsageError(f"cannot connect to the Dask scheduler {scheduler} ({exc})") from None
        with client:
            n = len(client.scheduler_info().get("workers", {}))
            yield client, f"Dask cluster {client.scheduler.address} ({n} workers)"
        return
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client, f"Dask LocalCluster ({workers} worker processes)"


def _run_dask(jobs: list[VideoJob], client) -> Iterator[VideoOutcome]:
    from distributed import as_completed

    token = hashlib.sha256(f"{time.time_ns()}{os.getpid()}".encode()).hexdigest()[:8]
    futures = {
        client.submit(run_video, job, key=f"medswap-{job.job_id}-{token}", pure=False): job
        for job in jobs
    }
    for future in as_completed(futures):
        job = futures[future]
        try:
            yield future.result()
        except Exception as exc:  # KilledWorker, a lost scheduler...: this video is not done
            yield VideoOutcome(
                job.job_id,
                job.pseudonym,
                job.task,
                job.output_rel,
                FAILED,
                error=f"the task did not finish on the cluster "
                f"({type(exc).__name__}: {exc})".replace(job.source, "<input>"),
                error_type=type(exc).__name__,
                source_id=job.source_id,
                fingerprint=job.fingerprint,
            )
        finally:
            future.release()


def _aggregate(outcomes: list[VideoOutcome]) -> dict:
    """Mean, median, min and max of every numeric evaluation field over the finished videos."""
    import numpy as np

    values: dict[str, list[float]] = defaultdict(list)

    def walk(prefix: str, data: dict) -> None:
        for key, value in data.items():
            if isinstance(value, dict):
                walk(f"{prefix}{key}.", value)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                values[prefix + key].append(float(value))

    for outcome in outcomes:
        if outcome.status in (DONE, SKIPPED):
            walk("", outcome.evaluation)
    return {
        k: {
            "n": len(v),
            "mean": float(np.mean(v)),
            "median": float(np.median(v)),
            "min": float(np.min(v)),
            "max": float(np.max(v)),
        }
        for k, v in sorted(values.items())
    }


def _write_manifests(
    output_dir: Path, outcomes: list[VideoOutcome], meta: dict
) -> tuple[Path, Path]:
    rows = []
    for o in outcomes:
        rows.append(
            {
                "pseudonym": o.pseudonym,
                "task": o.task,
                "file": o.output,
                "status": DONE if o.status == SKIPPED else o.status,
                "frames": o.frames,
                "sha256": o.sha256,
                "seconds": o.seconds,
                "audit": o.audit,
                "error": o.error,
                "metrics": o.metrics,
                "evaluation": o.evaluation,
            }
        )
    csv_path, json_path = output_dir / "manifest.csv", output_dir / "manifest.json"
    tmp = csv_path.with_name(".manifest.csv.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {
                    **row,
                    "metrics": json.dumps(row["metrics"], sort_keys=True),
                    "evaluation": json.dumps(row["evaluation"], sort_keys=True),
                }
            )
    os.replace(tmp, csv_path)
    tmp = json_path.with_name(".manifest.json.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump({**meta, "videos": rows}, fh, indent=1, sort_keys=True)
    os.replace(tmp, json_path)
    return csv_path, json_path


def run_batch(
    input_path: str | Path,
    output_dir: str | Path,
    config: DeidentifyConfig | None = None,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    evaluate: bool = False,
    key_file: str | Path | None = None,
    input_root: str | Path | None = None,
    progress: Callable[[Progress], None] | None = None,
    require_approval: bool = False,
    **options: Any,
) -> BatchResult:
    """De-identify a dataset (a folder or a CSV manifest) into ``output_dir``.

    Every video is de-identified as ``config`` says (default: the command line's defaults,
    with the audit and its release gate on); keyword ``options`` change single fields of it
    (``method="blur"``). Raises :class:`ManifestError` if no video is usable,
    :class:`OutputError` if the output folder exists and is not empty without ``resume`` or
    ``overwrite``. Failed videos do not raise: they are in the result (``result.failed``) and
    in the output manifest.
    """
    start = time.perf_counter()
    config = (config or DeidentifyConfig(audit=True)).with_options(**options)
    if require_approval:  # the review page reads the audit
        config = replace(config, audit=True)
    config = replace(config, donors=tuple(_donor_spec(d) for d in config.donors))
    _check_request(config, workers, scheduler, evaluate)
    output_dir = Path(output_dir).resolve()
    report = load_input(input_path, input_root)
    if Path(input_path).is_dir():  # a rescan would pick up the outputs as inputs
        with contextlib.suppress(ValueError):
            output_dir.relative_to(report.root)
            raise UsageError(
                f"the output folder {output_dir} must not be inside the input folder {report.root}"
            )
    for problem in report.problems:
        log.warning("%s: %s", input_path, problem)
    _prepare_output(output_dir, resume, overwrite)
    key_path = Path(key_file).resolve() if key_file else ps.default_key_file(output_dir)
    key = ps.load_or_create_key(key_path, output_dir)
    map_path = ps.map_file(key_path, output_dir)
    planned = plan_jobs(
        report,
        key,
        output_dir,
        config=config,
        evaluate=evaluate,
        require_approval=require_approval,
    )
    jobs = [job for _, _, job in planned]
    outcomes, todo = _split_done(jobs, output_dir, resume, overwrite)
    log.info("%d videos: %d already done, %d to process", len(jobs), len(outcomes), len(todo))
    _write_map(map_path, planned, outcomes)
    tally = _Tally(outcomes, len(jobs), len(todo), progress)
    engine = _execute(todo, workers, scheduler, tally.note)
    shutil.rmtree(state_dir(output_dir) / "work", ignore_errors=True)

    ordered = [outcomes[job.job_id] for job in jobs]
    evaluation = _aggregate(ordered) if evaluate else {}
    elapsed = time.perf_counter() - start
    meta = _manifest_meta(config, engine, ordered, evaluation, require_approval)
    csv_path, json_path = _write_manifests(output_dir, ordered, meta)
    _write_map(map_path, planned, outcomes)
    return BatchResult(
        output_dir,
        ordered,
        report.problems,
        csv_path,
        json_path,
        map_path,
        key_path,
        elapsed,
        engine,
        evaluation,
    )


def _manifest_meta(
    config: DeidentifyConfig,
    engine: str,
    ordered: list[VideoOutcome],
    evaluation: dict,
    require_approval: bool,
) -> dict:
    """The run's settings and counts at the head of manifest.json (names only, no paths)."""
    return {
        "medswap_version": __version__,
        "method": config.method,
        "audio": config.audio,
        "donors": [Path(d).name for d in config.donors],
        "engine": engine,
        "videos": len(ordered),
        "evaluation": evaluation,
        "counts": {s: sum(o.status == s for o in ordered) for s in (DONE, SKIPPED, FAILED)},
        "require_approval": require_approval,
        "audit": config.audit,
    }


def _check_request(
    config: DeidentifyConfig, workers: int | None, scheduler: str | None, evaluate: bool
) -> None:
    """Refuse a request that cannot run, before anything is read or written."""
    if workers is not None and workers < 0:
        raise UsageError(f"--workers must be 0 or more, got {workers}")
    if workers and scheduler:
        raise UsageError("--workers and --scheduler exclude each other")
    if evaluate and evaluation_function() is None:
        raise UsageError(
            "--evaluate needs medswap.studies (evaluate_pair), which this build does not have"
        )
    require_models([*DEIDENTIFY_MODELS[config.method], *(KEYPOINT_MODELS if evaluate else ())])


def _split_done(
    jobs: list[VideoJob], output_dir: Path, resume: bool, overwrite: bool
) -> tuple[dict[str, VideoOutcome], list[VideoJob]]:
    """The outcomes an earlier run finished (with ``resume``) and the jobs still to do."""
    outcomes: dict[str, VideoOutcome] = {}
    todo: list[VideoJob] = []
    for job in jobs:
        earlier = finished_outcome(job) if resume else None
        if earlier is not None:
            outcomes[job.job_id] = earlier
            continue
        if overwrite:
            for status in (DONE, FAILED):
                with contextlib.suppress(FileNotFoundError):
                    record_path(output_dir, job.job_id, status).unlink()
        todo.append(job)
    return outcomes, todo


def _write_map(
    map_path: Path, planned: list[tuple[str, str, VideoJob]], outcomes: dict[str, VideoOutcome]
) -> None:
    """The private mapping table: each subject and file to its pseudonym, output and state."""
    rows = []
    for subject, rel, job in planned:
        o = outcomes.get(job.job_id)
        cfg = job.config
        donor = Path(cfg.donors[0]).name if cfg.donors else f"seed:{cfg.donor_seed}"
        rows.append(
            ps.MapRow(
                subject,
                rel,
                job.pseudonym,
                job.task,
                job.output_rel,
                donor,
                (DONE if o.status == SKIPPED else o.status) if o else "pending",
                o.error if o else "",
            )
        )
    ps.write_map(map_path, rows)


class _Tally:
    """Counts finished videos and frames, and reports progress after each video."""

    def __init__(
        self,
        outcomes: dict[str, VideoOutcome],
        total: int,
        n_todo: int,
        progress: Callable[[Progress], None] | None,
    ) -> None:
        self.outcomes, self.total, self.n_todo, self.progress = outcomes, total, n_todo, progress
        self.frames_done, self.failed, self.start = 0, 0, time.perf_counter()

    def note(self, outcome: VideoOutcome) -> None:
        self.outcomes[outcome.job_id] = outcome
        self.frames_done += outcome.frames if outcome.status == DONE else 0
        self.failed += outcome.status == FAILED
        if outcome.status == FAILED:
            log.warning("%s failed: %s", outcome.job_id, outcome.error)
        if self.progress is None:
            return
        elapsed = time.perf_counter() - self.start
        done = len(self.outcomes)
        processed = done - (self.total - self.n_todo)
        remaining = self.total - done
        self.progress(
            Progress(
                done,
                self.total,
                self.failed,
                self.frames_done,
                elapsed,
                self.frames_done / elapsed if elapsed > 0 else 0.0,
                elapsed / processed * remaining if processed else None,
                outcome,
            )
        )


def _execute(
    todo: list[VideoJob],
    workers: int | None,
    scheduler: str | None,
    note: Callable[[VideoOutcome], None],
) -> str:
    """Run the jobs in this process or on Dask, noting each outcome; the engine's name."""
    engine = "this process"
    if not todo:
        return engine
    n_workers = default_workers() if workers is None else workers
    if n_workers == 0 and not scheduler:
        for job in todo:
            note(run_video(job))
        return engine
    with _dask_client(min(n_workers, len(todo)), scheduler) as (client, engine):
        log.info("running on %s", engine)
        for outcome in _run_dask(todo, client):
            note(outcome)
    return engine
