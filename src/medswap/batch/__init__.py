"""Whole-dataset de-identification: manifests, keyed pseudonyms, resumable jobs on Dask.

See :func:`run_batch`; the pieces live in :mod:`.manifest` (inputs and their validation),
:mod:`.pseudonyms` (the private key and mapping), :mod:`.jobs` (one video, on a worker) and
:mod:`.runner` (planning, engines, progress, output manifests).
"""

from medswap.batch.jobs import VideoJob, VideoOutcome, run_video
from medswap.batch.manifest import ManifestReport, RowProblem, VideoItem, load_input
from medswap.batch.runner import BatchResult, Progress, default_workers, run_batch

__all__ = [
    "BatchResult",
    "ManifestReport",
    "Progress",
    "RowProblem",
    "VideoItem",
    "VideoJob",
    "VideoOutcome",
    "default_workers",
    "load_input",
    "run_batch",
    "run_video",
]
