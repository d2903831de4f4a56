"""Every file medswap writes goes through here: checked before the work, renamed when complete.

A clinical user must never find a file that looks like a result but is not one, and must never
lose a file they gave. So each output is

- checked before any work starts (:func:`check_new_output`): its folder exists and is
  writable, it is not a folder, it is not one of the run's inputs or another output of the
  same run, and it does not exist unless ``overwrite`` is set;
- written under a hidden partial name beside it and renamed over the final name only when it
  is complete (:func:`atomic_path`); on any error or interrupt the partial file is removed.

Partial files that are open are also remembered in :data:`OPEN_PARTIALS`, so that a signal
handler can remove them even if the process is torn down before the stack unwinds.

The helpers every writer shares live here too, once: :func:`write_atomic` (text or bytes),
:func:`write_json_atomic`, :func:`json_safe` (NaN and infinities as null, NumPy made plain),
:func:`sha256_file`, :func:`scrub` and batch's synced records (:func:`write_json_durable`).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from medswap.errors import OutputError

#: Suffix of a file that is still being written. Nothing with it is ever a result.
PARTIAL_SUFFIX = ".medswap-partial"

#: Partial files being written right now (removed by :func:`remove_open_partials`).
OPEN_PARTIALS: set[Path] = set()


def partial_path(path: Path) -> Path:
    """Where an output is written until it is complete; the name says it is not."""
    return path.with_name(f".{path.name}{PARTIAL_SUFFIX}")


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name the same file (resolved, or the same inode when both exist)."""
    a, b = Path(a), Path(b)
    try:
        if a.resolve() == b.resolve():
            return True
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_new_output(
    path: str | Path,
    *,
    overwrite: bool,
    inputs: Sequence[str | Path] = (),
    others: Sequence[str | Path | None] = (),
    what: str = "output",
) -> Path:
    """Refuse, before any work, an output that cannot or must not be written.

    ``inputs`` are the files the run reads (never replaced, whatever ``overwrite`` says);
    ``others`` are the other outputs of the same run (two outputs may not share a path).
    """
    path = Path(path)
    for src in inputs:
        if same_file(src, path):
            raise OutputError(f"{what} would overwrite the input", path)
    for other in others:
        if other is not None and same_file(other, path):
            raise OutputError(f"{what} is the same file as another output of this run", path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"{what} folder does not exist", path)
    if not _can_create_in(parent):
        raise OutputError(f"{what} folder is not writable", path)
    if path.is_dir():
        raise OutputError(f"{what} path is a folder", path)
    if path.exists() and not overwrite:
        raise OutputError(f"{what} exists (pass --overwrite to replace it)", path)
    return path


def _can_create_in(folder: Path) -> bool:
    """Whether a file can be created in ``folder``, tried for real.

    ``os.access`` says yes to root on a read-only mount's files and on /proc; creating and
    removing an empty hidden file is the only answer that holds everywhere.
    """
    try:
        fd, probe = tempfile.mkstemp(prefix=".medswap-probe-", dir=folder)
    except OSError:
        return False
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return True


def _os_problem(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "permission denied"
    return exc.strerror or str(exc)


@contextlib.contextmanager
def atomic_path(path: str | Path, what: str = "output") -> Iterator[Path]:
    """Yield a hidden partial path to write; rename it to ``path`` only if the block succeeds.

    An ``OSError`` while writing or renaming (disk full, folder gone read-only) becomes an
    :class:`OutputError` naming ``path``; any failure removes the partial file.
    """
    path = Path(path)
    tmp = partial_path(path)
    OPEN_PARTIALS.add(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"cannot write the {what} ({_os_problem(exc)})", path) from None
    finally:
        OPEN_PARTIALS.discard(tmp)
        with contextlib.suppress(OSError):
            tmp.unlink()


def write_atomic(path: str | Path, data: str | bytes, what: str = "output") -> Path:
    """Write ``data`` (text in the default encoding, or bytes) through a partial file."""
    with atomic_path(path, what) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data)
    return Path(path)


def write_text_atomic(path: str | Path, text: str, what: str = "output") -> Path:
    """Write ``text`` to ``path`` through a partial file."""
    return write_atomic(path, text, what)


def write_json_atomic(path: str | Path, payload: object, what: str = "report") -> Path:
    """Write ``payload`` as JSON (NaN and infinities as null) through a partial file."""
    return write_text_atomic(path, json.dumps(json_safe(payload), indent=1), what)


def write_json_durable(path: Path, data: dict) -> None:
    """Write JSON to a uniquely named temporary sibling, flush it to disk, then rename it.

    For batch's job records: workers on other machines may write beside each other, so the
    temporary name is unique rather than :func:`partial_path`, and the record is synced
    before the rename because a resumed batch trusts it. Keys are sorted, NaN is not cleaned.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def json_safe(obj: object) -> object:
    """``obj`` with NumPy scalars and arrays made plain, NaN and infinities as None."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def scrub(obj: object, replace: dict[str, str]) -> object:
    """``obj`` with every string that holds one of ``replace``'s keys rewritten (longest first)."""
    if isinstance(obj, dict):
        return {k: scrub(v, replace) for k, v in obj.items()}
    if isinstance(obj, list):
        return [scrub(v, replace) for v in obj]
    if isinstance(obj, str):
        for old in sorted(replace, key=len, reverse=True):
            if old:
                obj = obj.replace(old, replace[old])
    return obj


def stage_text(path: str | Path, text: str, what: str = "output") -> Path:
    """Write ``text`` to ``path``'s partial file and return it, for :func:`publish` later."""
    tmp = partial_path(Path(path))
    OPEN_PARTIALS.add(tmp)
    try:
        tmp.write_text(text)
    except OSError as exc:
        discard([tmp])
        raise OutputError(f"cannot write the {what} ({_os_problem(exc)})", path) from None
    return tmp


def discard(partials: Sequence[Path | None]) -> None:
    """Remove partial files that will not be published (a failed or interrupted run)."""
    for tmp in partials:
        if tmp is not None:
            OPEN_PARTIALS.discard(tmp)
            with contextlib.suppress(OSError):
                tmp.unlink()


def publish(pairs: Sequence[tuple[Path, Path]]) -> None:
    """Rename each complete partial file to its final name, all or none.

    The files of one run (a video and its report) appear together: if a rename fails, the
    ones already renamed are removed again and the rest discarded, so no half of a result
    is left that looks complete.
    """
    done: list[Path] = []
    try:
        for tmp, final in pairs:
            os.replace(tmp, final)
            OPEN_PARTIALS.discard(tmp)
            done.append(final)
    except OSError as exc:
        for final in done:
            with contextlib.suppress(OSError):
                final.unlink()
        discard([tmp for tmp, _ in pairs])
        failed = pairs[len(done)][1]
        raise OutputError(f"cannot write the output ({_os_problem(exc)})", failed) from None


def remove_open_partials() -> None:
    """Remove every partial file still open (called on SIGTERM before the process ends)."""
    for tmp in list(OPEN_PARTIALS):
        with contextlib.suppress(OSError):
            tmp.unlink()
    OPEN_PARTIALS.clear()
