"""The audit's child process: dlib's descriptors of the frames, and the lineup at start-up.

dlib's shape model and chip hold Python's lock (a thread beside them got a tenth of its
share), so the in-stream audit (:mod:`medswap.evaluate.stream`) runs dlib in a process of its
own, fed small crops. The process also builds the lineup: the gallery, with the donors
described by both recognisers.
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from medswap.evaluate.privacy import (
    FaceAnalyser,
    FaceRecord,
    Gallery,
    _identity,
    default_gallery,
    load_donors,
    load_gallery,
)
from medswap.faces.independent import DlibFaces, IndependentFace

_CHILD: dict = {}


def _child_analyser() -> FaceAnalyser:
    """The audit process's recognisers: one set serves the lineup's donors and every frame's
    descriptor, so dlib's landmark model (the slowest file to load) is read once."""
    if "analyser" not in _CHILD:
        _CHILD["analyser"] = FaceAnalyser(hog_upsample=0)
    return _CHILD["analyser"]


def _child_dlib() -> DlibFaces:
    return _child_analyser().dlib


def _warm_up() -> None:
    """Load dlib's models in the audit process as soon as it starts, while the main process
    loads its own: the gate's first frames wait for dlib's first descriptor."""
    _child_dlib()._load()


def dlib_descriptor(crop: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, float]:
    """dlib's descriptor of the face at ``box`` in ``crop``, and the CPU seconds it took."""
    t0 = time.process_time()
    desc = _child_dlib().descriptor(crop, IndependentFace(box, 1.0))
    return desc, time.process_time() - t0


class AuditProcess:
    """The process that computes the audit's dlib descriptors, started and warmed up at once.

    A run starts it before loading its own models, so that dlib's imports and model load
    overlap them instead of holding the gate's first frames; a run that starts again behind
    another donor keeps the same process. Inside a Dask worker (daemonic, which may not start
    processes) dlib runs on a thread instead: slower, as its shape model holds Python's lock,
    but the same judgement.
    """

    def __init__(self) -> None:
        self.pool: ProcessPoolExecutor | ThreadPoolExecutor | None = None
        self._workers: list[multiprocessing.process.BaseProcess] = []

    def __enter__(self) -> AuditProcess:
        if multiprocessing.current_process().daemon:
            self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="medswap-dlib")
            self.pool.submit(_warm_up)
        else:
            ctx = multiprocessing.get_context("spawn")
            before = set(multiprocessing.active_children())
            self.pool = ProcessPoolExecutor(max_workers=1, mp_context=ctx)
            self.pool.submit(_warm_up)  # the executor starts its worker here
            self._workers = [p for p in multiprocessing.active_children() if p not in before]
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if self.pool is None:
            return
        if exc_type is not None:
            # A run that failed (a bad donor image, say) answers at once instead of after
            # dlib's warm-up: the worker is stopped, not waited for. (The executor does not
            # name its workers; they are the children that appeared as it started.)
            for proc in self._workers:
                proc.terminate()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.pool = None
        self._workers = []


def gallery_and_donors(
    gallery: str | None, donors: list[tuple[str, np.ndarray]]
) -> tuple[Gallery, dict[str, FaceRecord], float]:
    """The lineup (default or a folder) with the donors described; CPU seconds it took."""
    t0 = time.process_time()
    analyser = _child_analyser()
    gal = default_gallery() if gallery is None else load_gallery(gallery, analyser)
    records = load_donors([_NamedImage(n, im) for n, im in donors], analyser)
    for name, rec in records.items():
        gal = gal.with_identity(_identity(name, [rec]))
    return gal, records, time.process_time() - t0


@dataclass
class _NamedImage:
    """A donor as :func:`load_donors` reads one (``name`` and ``image``), picklable."""

    name: str
    image: np.ndarray
